"""The extra grid's section (study-extra.yaml, results/study-extra/): each template quirk against its own
Monotonic, paired by seed with Holm across the three, and real footage against repeat-the-first-frame. Every
macro is prefixed ``Study`` (``ExtraCase`` switches the section); which run is which comes from the grid
(lab4.report.study.roles).
"""

from __future__ import annotations

import math

import numpy as np

from lab4.report import numbers as report_numbers, stats
from lab4.report.format import NA, fmt
from lab4.report.study.roles import QUIRK_KEYS, Roles
from lab4.run.folder import RunDir, group

FIRST_FRAMES = 10  # the start of the real-footage rollout, against the copy
QUIRK_CASES = ("better", "worse", "same", "untested", "missing")

# the extra grid's section (study-extra.yaml: the template's quirks and real footage)
EXTRA_CASES = {
    "ExtraCase": ("present", "absent"),
    "StudyQuirkZeroCase": ("tested", "untested"),  # the quirks' tests again with z = 0
    **{f"Study{k}Case": QUIRK_CASES for k in QUIRK_KEYS.values()},
    "StudyRealLabCase": ("finished", "diverged", "absent"),  # the lab's loss on real footage
    "StudyRealRunCase": ("lab", "mean", "none"),  # which loss the real-footage verdict below is from
    # real footage against repeat-the-first-frame, whole rollout
    "StudyRealCase": ("beats", "loses", "absent"),
    "StudyRealFirstCase": ("beats", "loses", "absent"),  # the same over the first FIRST_FRAMES frames
}


def quirk_settings(g: dict, roles: Roles) -> dict[str, str]:
    """What each quirk run set, from its config: the late milestone, the slope, the held ramp's epochs."""

    def cfg(s):
        return g[s][0].config() if g.get(s) else {}

    late, leaky, held = (cfg(roles.quirks[key][0]) for key in ("LrLate", "Leaky", "Held"))
    ramp = (
        float(held.get("kl_anneal_cycle", math.nan)) * float(held.get("kl_anneal_ratio", math.nan))
        if held
        else math.nan
    )
    return {
        "StudyQuirkEpochs": str(leaky.get("num_epoch") or held.get("num_epoch") or NA),
        "StudyLrLateDrop": " and ".join(str(m) for m in late.get("milestones") or ()) or NA,
        "StudyLeakySlope": f"{leaky['leaky_true_slope']:g}" if "leaky_true_slope" in leaky else NA,
        "StudyHeldRamp": f"{ramp:g}" if np.isfinite(ramp) else NA,
    }


def quirk_macros(runs, roles: Roles) -> dict[str, str]:
    """Each quirk's runs against Monotonic's as long, paired by seed, Holm across the three comparisons."""
    g = group(runs)

    def score(s, key="mean_psnr"):
        return stats.by_seed(g.get(s, []), lambda r: r.number(key))

    def tests(key):
        return stats.holm_family(
            [
                stats.seed_diff(score(q, key), score(ref, key)) if score(q, key) and score(ref, key) else None
                for q, ref in roles.quirks.values()
            ]
        )

    ivs = tests("mean_psnr")
    m = quirk_settings(g, roles)
    # the same tests with z = 0 instead of one drawn z: how much of a verdict the draw decides
    zero = tests("mean_psnr_z0")
    for key, iv in zip(roles.quirks, zero):
        m[f"Study{key}TestZero"] = stats.interval_text(iv) if iv is not None else NA
    m["StudyQuirkZeroCase"] = "tested" if zero and all(iv is not None for iv in zero) else "untested"
    # a drawn z against z = 0 on the same weights, over every study run
    shifts = [abs(r.number("mean_psnr") - r.number("mean_psnr_z0")) for r in runs]
    shifts = [x for x in shifts if np.isfinite(x)]
    m["StudyZeroShift"] = fmt(float(np.median(shifts))) if shifts else NA
    for (key, (q, ref_name)), iv in zip(roles.quirks.items(), ivs):
        mine, ref = score(q), score(ref_name)
        m[f"Study{key}PSNR"] = fmt(np.mean(list(mine.values()))) if mine else NA
        m[f"Study{key}RefPSNR"] = fmt(np.mean(list(ref.values()))) if ref else NA
        m[f"Study{key}Test"] = stats.interval_text(iv) if iv is not None else NA
        m[f"Study{key}Case"] = (
            "missing"
            if not mine or not ref
            else "untested"
            if iv is None
            else {"above": "better", "below": "worse"}.get(iv.verdict, "same")
        )
    return m


def real_macros(runs, roles: Roles) -> dict[str, str]:
    """The real-footage run against repeat-the-first-frame: the whole rollout, the first frames, the end; from
    the lab's loss where that run finished, else from the report's loss balance; and whether the lab's
    diverged."""
    by = {r.name: r for r in runs if r.name in (roles.real, roles.real_mean)}
    lab = by.get(roles.real)
    m = {
        "StudyRealLabCase": "absent" if lab is None else "diverged" if lab.diverged() else "finished",
        "StudyRealEpochs": str(next(iter(by.values())).config().get("num_epoch", NA)) if by else NA,
    }
    if lab is not None and lab.diverged():
        d, val = lab.diverged(), lab.epoch_metrics().get("val_psnr")
        val = val.dropna() if val is not None else []
        m.update(
            StudyRealDivergedEpoch=str(d.get("epoch", NA)),
            StudyRealDivergedOf=str(d.get("num_epoch", NA)),
            StudyRealDivergedPSNR=fmt(val.iloc[-1]) if len(val) else NA,
        )
    run = next((by[n] for n in (roles.real, roles.real_mean) if n in by and by[n].psnr() is not None), None)
    m["StudyRealRunCase"] = "none" if run is None else "lab" if run.name == roles.real else "mean"
    if run is None:
        return {**m, "StudyRealCase": "absent", "StudyRealFirstCase": "absent"}
    psnr = run.psnr()
    p, b = psnr["psnr"].to_numpy(float), psnr["baseline_psnr"].to_numpy(float)
    first, last = slice(0, FIRST_FRAMES), slice(-100, None)
    below = np.flatnonzero(p < b)  # the sentence before already says whether the first frame is below
    below = below if len(below) and below[0] > 0 else []
    return {
        **m,
        "StudyRealCase": "beats" if p.mean() > b.mean() else "loses",
        "StudyRealFirstCase": "beats" if p[first].mean() > b[first].mean() else "loses",
        "StudyRealPSNR": fmt(p.mean()),
        "StudyRealBaseline": fmt(b.mean()),
        "StudyRealGap": fmt(abs(p.mean() - b.mean())),
        "StudyRealFirstPSNR": fmt(p[first].mean()),
        "StudyRealFirstBaseline": fmt(b[first].mean()),
        "StudyRealFirstFrames": str(FIRST_FRAMES),
        "StudyRealFrameOne": fmt(p[0]),
        "StudyRealFrameOneBase": fmt(b[0]),
        "StudyRealBelowFrame": str(int(psnr["frame"].iloc[below[0]])) if len(below) else NA,
        "StudyRealLastPSNR": fmt(p[last].mean()),
        "StudyRealLastBaseline": fmt(b[last].mean()),
        "StudyRealFrames": str(len(p)),
    }


def extra_of(extra_runs, roles: Roles) -> list[RunDir]:
    """The extra grid's runs that the study section reads: each quirk, its reference and the real footage."""
    keep = {s for pair in roles.quirks.values() for s in pair if s} | {roles.real, roles.real_mean}
    return [r for r in extra_runs if r.strategy in keep or r.name in keep]


def extra_macros(extra_runs, roles: Roles) -> dict[str, str]:
    """The extra grid's section (results/study-extra/): each quirk against its own Monotonic, and real
    footage; only ExtraCase without any of their runs."""
    extra = extra_of(extra_runs, roles)
    if not extra:
        return {"ExtraCase": "absent"}
    return {
        "ExtraCase": "present",
        "StudyExtraRuns": str(len(extra)),
        **quirk_macros(extra, roles),
        **real_macros(extra, roles),
    }


def extra_rows(extra_runs, roles: Roles) -> str | None:
    """The extra grid's table: each quirk and its reference (None without quirk runs)."""
    extra = [r for r in extra_of(extra_runs, roles) if r.name not in (roles.real, roles.real_mean)]
    return report_numbers.results_rows(extra, roles.label) if extra else None
