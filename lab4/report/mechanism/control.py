"""The positive control: the lab's three KL schedules on SynthDance control, where z is worth nats.

On the lab's own data collapse is the optimum of the loss, so no schedule can show what annealing is for. The
control's light and wall change in ways the pose does not determine (lab4.datasets.synth.look), and its runs
price a nat at a KL weight under what that content is worth (lab4.datasets.synth.worth measures it). Per
schedule: the active latent units and the KL per frame at the end, the short-rollout score with drawn z, its
best draw at each start (best-of-K), and the MSE between two draws (the samples' diversity); each annealed
schedule against None with the report's test, Holm across the two. Macros are prefixed ``Ctl``; main.tex
holds the sentences. Without results/control/ the section is one sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lab4 import plots
from lab4.report.format import NA, check_cases, display_name, fmt, range_text
from lab4.report.loss.dynamics import frames_per_clip, latent_units
from lab4.report.mechanism.macros import sci
from lab4.report.stats import detectable, holm_family, interval_text, seed_diff
from lab4.report.study.figures import epoch_series
from lab4.run.folder import RunDir, load_runs
from lab4.run.questions import LAB_QUESTIONS

QUESTION = LAB_QUESTIONS[0]  # each annealed schedule against None, Holm across the two
STEM = "control"
VERDICTS = ("higher", "lower", "notdist", "untested", "missing")
# measure key -> (Measures field, how its test prints: unit, digits)
TESTED = {
    "Active": ("active", "~units", 1),
    "KL": ("kl", "~nats", 3),
    "Diversity": ("diversity", "~$\\times 10^{-6}$", 1),  # tested in millionths: an MSE between draws
    "Best": ("best", "~dB", 2),
}
SHOWN = {**TESTED, "Score": ("short", "~dB", 2)}  # the one-draw score is shown beside best-of-two, not tested
CASES = {
    "CtlCase": ("present", "absent"),
    "CtlUseCase": ("used", "collapsed", "unknown"),
    "CtlAnnealCase": ("more", "fewer", "notdist", "untested", "collapsed"),
    "CtlFlickerCase": ("below", "above"),  # SynthDance's first nat against the control's price of a nat
    "CtlCopyCase": ("beats", "loses", "unknown"),  # the runs' mean short score against the copy's
    "CtlUnitsPanelCase": ("drawn", "omitted"),  # the figure's active-units panel: left out when all are 0
    **{f"Ctl{display_name(a)}{k}Case": VERDICTS for a in QUESTION.compare for k in TESTED},
}


@dataclass(frozen=True)
class Measures:
    """One control run at its end; NaN where the run does not record a number."""

    strategy: str
    seed: object
    active: float  # active latent units at the last validation
    units: int  # latent units of a frame
    kl: float  # KL per predicted frame, the last epoch's mean (nats)
    short: float  # short-rollout score with drawn z (dB)
    best: float  # its best draw at each start, averaged over the starts (dB)
    z0: float  # the same rollouts with z = 0 (dB)
    diversity: float  # MSE between two draws' frames
    baseline: float  # the copy of the start frame on the same short rollouts (dB)


def _last(run: RunDir, col: str) -> float:
    ep = run.epoch_metrics()
    if col not in ep:
        return math.nan
    v = pd.to_numeric(ep[col], errors="coerce").dropna()
    return float(v.iloc[-1]) if len(v) else math.nan


def measure(run: RunDir) -> Measures:
    cfg = run.config()
    return Measures(
        run.strategy,
        cfg.get("seed", run.name),
        _last(run, "active_units"),
        latent_units(run),
        _last(run, "kl") / frames_per_clip(run),
        run.number("short_psnr"),
        run.number("short_psnr_best"),
        run.number("short_psnr_z0"),
        _unrounded(run, "short_diversity"),
        run.number("short_baseline_psnr"),
    )


def _unrounded(run: RunDir, key: str) -> float:
    """val_summary.json's value: summary.json's kept four decimals before it kept small numbers' digits,
    which turned a diversity of 1e-5 into 0."""
    v = run.val_summary().get(key)
    return float(v) if isinstance(v, (int, float)) else run.number(key)


def control_runs(folder) -> list[RunDir]:
    """The runs of results/control/ (none where the folder is missing)."""
    return load_runs(folder) if folder and Path(folder).is_dir() else []


def by_schedule(runs) -> dict[str, list[Measures]]:
    names = (QUESTION.reference, *QUESTION.compare)
    out = {s: [measure(r) for r in runs if r.strategy == s] for s in names}
    return {s: ms for s, ms in out.items() if ms}


def _values(ms: list[Measures], field: str) -> np.ndarray:
    v = np.asarray([float(getattr(m, field)) for m in ms], dtype=float)
    return v[np.isfinite(v)]


def _shown(key: str, v: float) -> str:
    if key == "Diversity":
        return sci(v)
    if key == "KL" and math.isfinite(v) and 0 < abs(v) < 0.01:
        return sci(v)
    return fmt(v, SHOWN[key][2] if key != "Active" else 1)


def schedule_macros(name: str, ms: list[Measures]) -> dict[str, str]:
    s = display_name(name)
    m = {f"Ctl{s}Runs": str(len(ms))}
    for key, (field, _, _) in SHOWN.items():
        v = _values(ms, field)
        m[f"Ctl{s}{key}"] = _shown(key, float(v.mean())) if len(v) else NA
        m[f"Ctl{s}{key}Min"] = _shown(key, float(v.min())) if len(v) else NA
        m[f"Ctl{s}{key}Max"] = _shown(key, float(v.max())) if len(v) else NA
    z0 = _values(ms, "z0")
    m[f"Ctl{s}ZeroScore"] = fmt(float(z0.mean())) if len(z0) else NA
    return m


def tests(groups: dict[str, list[Measures]], field: str) -> dict:
    """{annealed schedule: its interval against None or None}, Holm across the annealed schedules."""
    ref = groups.get(QUESTION.reference, [])

    scale = 1e6 if field == "diversity" else 1.0  # the diversity in millionths, as TESTED prints it

    def scores(ms):
        values = {m.seed: scale * float(getattr(m, field)) for m in ms}
        return {seed: v for seed, v in values.items() if math.isfinite(v)}

    sides = [scores(groups[a]) if a in groups else {} for a in QUESTION.compare]
    raw = [seed_diff(side, scores(ref)) if side and scores(ref) else None for side in sides]
    return dict(zip(QUESTION.compare, holm_family(raw)))


def test_macros(groups: dict[str, list[Measures]]) -> dict[str, str]:
    m = {}
    for key, (field, unit, digits) in TESTED.items():
        for a, iv in tests(groups, field).items():
            s = display_name(a)
            present = a in groups and QUESTION.reference in groups
            m[f"Ctl{s}{key}Case"] = (
                "missing"
                if not present
                else "untested"
                if iv is None
                else {"above": "higher", "below": "lower"}.get(iv.verdict, "notdist")
            )
            m[f"Ctl{s}{key}Test"] = interval_text(iv, unit, digits) if iv is not None else NA
            d = detectable(iv) if iv is not None else math.nan
            m[f"Ctl{s}{key}Detect"] = fmt(d, digits) if math.isfinite(d) else NA
    return m


def anneal_case(m: dict, use: str) -> str:
    """Whether annealing kept more units in use than None, from the tests of active units."""
    if use == "collapsed":
        return "collapsed"
    verdicts = [m[f"Ctl{display_name(a)}ActiveCase"] for a in QUESTION.compare]
    for case, v in (("more", "higher"), ("fewer", "lower")):
        if v in verdicts:
            return case
    return "notdist" if "notdist" in verdicts else "untested"


def worth_macros(weight: float) -> dict[str, str]:
    """What the control's content is worth against the price of a nat (lab4.datasets.synth.worth): a
    Gaussian step of MSE m loses m * exp(-2R) at R nats a frame, so the first nat buys 2m."""
    from lab4.datasets.synth.worth import FRAMES, worth

    w = worth()
    first = 2 * w["control_innovation"]
    return {
        "CtlWorthFrames": str(FRAMES),
        "CtlInnovation": sci(w["control_innovation"]),
        "CtlFlickerInnovation": sci(w["flicker_innovation"]),
        "CtlGap": sci(w["control_gap"]),
        "CtlFlickerGap": sci(w["flicker_gap"]),
        "CtlFirstNat": sci(first),
        "CtlPriceRatio": f"{first / weight:.0f}" if weight > 0 else NA,
        "CtlFlickerFirstNat": sci(2 * w["flicker_innovation"]),
        "CtlPaysNats": fmt(0.5 * math.log(first / weight), 1) if weight > 0 and first > weight else "0",
        "CtlFlickerCase": "below" if 2 * w["flicker_innovation"] < weight else "above",
    }


def control_macros(runs) -> dict[str, str]:
    """Every ``Ctl*`` macro from the control's run folders; only CtlCase without runs of the schedules."""
    groups = by_schedule(runs)
    if not groups:
        return {"CtlCase": "absent"}
    every = [x for ms in groups.values() for x in ms]
    cfg = runs[0].config()
    weight, clip = float(cfg.get("kl_weight", math.nan)), float(cfg.get("clip_grad", 0) or 0)
    active = _values(every, "active")
    use = "unknown" if not len(active) else "used" if active.max() > 0 else "collapsed"
    m = {
        "CtlCase": "present",
        "CtlRuns": str(len(every)),
        "CtlSeeds": range_text(len(ms) for ms in groups.values()),
        "CtlEpochs": str(int(cfg.get("num_epoch", 0) or 0)),
        "CtlKLWeight": sci(weight),
        "CtlKLWeightInverse": f"{1 / weight:.0f}" if weight > 0 else NA,
        "CtlClip": f"{clip:g}",
        "CtlUnits": f"{every[0].units:,}".replace(",", "{,}"),
        "CtlUseCase": use,
        "CtlUnitsPanelCase": "drawn" if units_in_use(runs) > 0 else "omitted",
        "CtlMaxActive": fmt(float(active.max()), 0) if len(active) else NA,
        **worth_macros(weight),
    }
    for name in (QUESTION.reference, *QUESTION.compare):
        m.update(schedule_macros(name, groups.get(name, [])))
    m.update(test_macros(groups))
    if use == "collapsed":  # no unit in any run: nothing to test, and no sentence says a difference of 0
        for a in QUESTION.compare:
            s = display_name(a)
            m[f"Ctl{s}ActiveCase"], m[f"Ctl{s}ActiveTest"], m[f"Ctl{s}ActiveDetect"] = "missing", NA, NA
    m["CtlAnnealCase"] = anneal_case(m, use)
    score, copy = _values(every, "short"), _values(every, "baseline")
    m["CtlScore"] = fmt(float(score.mean())) if len(score) else NA
    m["CtlBaseline"] = fmt(float(copy.mean())) if len(copy) else NA
    m["CtlCopyCase"] = (
        "unknown" if not (len(score) and len(copy)) else "beats" if score.mean() > copy.mean() else "loses"
    )
    check_cases(m, CASES)
    return m


def units_in_use(runs) -> float:
    """The most active latent units any run had after any epoch: 0 leaves the figure's units panel out."""
    series = [epoch_series(r, "active_units") for r in runs]
    return max((float(u.max()) for u in series if u is not None and len(u)), default=0.0)


def control_figure(runs, figures_dir) -> list[Path]:
    """``control.pdf`` and ``.png``: per schedule the KL per frame and the active units after every epoch,
    and each run's diversity of samples; [] without runs."""
    groups = by_schedule(runs)
    if not groups:
        return []
    units = {s: [epoch_series(r, "active_units") for r in runs if r.strategy == s] for s in groups}
    units_max = units_in_use(runs)  # 0: a flat zero panel says less than the report's sentence: left out
    fig, axes = plots.figure(
        1, 3 if units_max > 0 else 2, height=1.8, width=plots.TEXT_WIDTH_IN * plots.SHOWN["control"]
    )
    a, b, c = (axes[0], axes[1], axes[2]) if units_max > 0 else (axes[0], None, axes[1])
    kl_all = []
    for i, s in enumerate(groups):
        rs = [r for r in runs if r.strategy == s]
        color, label = plots.color_for(s, i), display_name(s)
        kl = [epoch_series(r, "kl", frames_per_clip(r)) for r in rs]
        kl_all += [v for x in kl if x is not None for v in x]
        plots.band_plot(a, kl, color, label, marker="o", ms=2.5)
        if b is not None:
            plots.band_plot(b, units[s], color, label, marker="o", ms=2.5)
        div = _values(groups[s], "diversity")
        c.scatter(np.full(len(div), i), div, color=color, s=12, zorder=3)
        if len(div):
            c.bar(i, div.mean(), color=color, alpha=0.35, width=0.6)
    plots.log_if_wide(a, kl_all)
    a.set(xlabel="epoch", ylabel="KL per predicted frame (nats)", title="KL, epoch mean")
    if b is not None:
        b.set(xlabel="epoch", ylabel="active latent units", title="units in use")
    c.set_xticks(range(len(groups)), [display_name(s) for s in groups], fontsize=7, rotation=20)
    c.set(ylabel="MSE between two draws", title="diversity of samples")
    a.legend(fontsize=6)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / STEM)
