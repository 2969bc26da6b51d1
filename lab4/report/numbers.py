"""The report's numbers on the runs themselves: the results table, the strategies, the best run, gradient
norms and drift along the rollout, as the LaTeX macros that report/main.tex quotes (the setup's are
lab4.report.experimental_setup's).

Python writes numbers and *case* macros only; report/main.tex holds every sentence and picks the one
that a case macro names, e.g. ``\\IfStrEqCase{\\DriftCase}{{flat}{...}{falls}{...}...}``. CASES lists
every value each case macro here can take, and a test checks that main.tex has a sentence for each.
Each function ``runs -> {macro name: text}`` is listed in lab4.report.sections (docs/adding-a-number.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lab4.report.format import NA, display_name, fmt, range_text, signed, tex_escape
from lab4.report.loss import dynamics
from lab4.report.stats import mean_std
from lab4.run.folder import RunDir, best_run, group
from lab4.schedules import KL_STRATEGIES

CASES = {
    "SeedCountCase": ("one", "several", "mixed"),  # seeds per strategy: all one, all several, or both
    "BaselineCase": ("all", "some", "no", "unknown"),  # how many runs end above repeat-the-first-frame
    "GradNormPeakCase": ("first", "later", "unknown"),  # is every run's gradient norm largest in epoch 1
    "GradClipActsCase": ("acts", "never", "unknown"),  # would the lab's clip at 1 have scaled any step
    "TFBestCase": ("off", "half", "decay", "none"),  # which teacher-forcing variant scored best
    "DriftCase": ("flat", "falls", "rises", "none"),  # PSNR from the first to the last frames
}
TF_VARIANTS = {"tf-off": ("TFOff", "off"), "tf-half": ("TFHalf", "half"), "cyclical": ("TFDecay", "decay")}


# -- per strategy -------------------------------------------------------------------------------
def strategy_stats(runs) -> pd.DataFrame:
    """One row per strategy: its seeds' numbers as lists (KL: nats per frame at the last epoch), and the
    mean and std of validation PSNR."""
    rows = []
    for s, rs in group(runs).items():
        psnr = [r.number("mean_psnr") for r in rs]
        spread = mean_std(psnr)
        rows.append(
            dict(
                strategy=s,
                n=len(rs),
                psnr=psnr,
                short=[r.number("short_psnr") for r in rs],
                ssim=[r.number("mean_ssim") for r in rs],
                baseline=[r.number("baseline_mean_psnr") for r in rs],
                public=[r.number("public") for r in rs],
                private=[r.number("private") for r in rs],
                one_step=[r.number("one_step_psnr") for r in rs],
                wall=[r.number("wall_seconds") for r in rs],
                cpu=[r.number("cpu_seconds") for r in rs],
                gain=[dynamics.last_epoch_gain(r) for r in rs],
                kl=[float(k.iloc[-1]) if len(k := dynamics.kl_per_frame(r)) else math.nan for r in rs],
                active=[dynamics.active_units_of(r) for r in rs],
                mean_psnr=spread.mean,
                std_psnr=spread.std if spread.n > 1 else 0.0,
            )
        )
    return pd.DataFrame(rows)


def results_rows(runs, name=display_name) -> str:
    """The body rows of the results table, a strategy as ``name`` calls it; its header and rules are in
    main.tex."""
    lines = []
    for _, row in strategy_stats(runs).iterrows():

        def pm(key, digits=2):
            return mean_std(row[key]).text(digits)

        lines.append(
            " & ".join(
                [
                    tex_escape(name(row["strategy"])),
                    str(row["n"]),
                    pm("short"),
                    pm("psnr"),
                    pm("one_step"),
                    pm("ssim", 3),
                    pm("baseline"),
                    pm("public"),
                    pm("private"),
                    pm("kl", 3),
                    mean_std([c / 60 for c in row["cpu"]]).text(1),
                ]
            )
            + r" \\"
        )
    return "\n".join(lines) + "\n"


def strategy_macros(runs) -> dict[str, str]:
    """Best and worst strategy by mean validation PSNR and their gap (lab4.report.stats tests the ranking)."""
    st = strategy_stats(runs)
    by = dict(zip(st["strategy"], st["mean_psnr"])) if len(st) else {}
    m = {f"{display_name(s)}ValPSNR": fmt(by.get(s, math.nan)) for s in KL_STRATEGIES}
    finite = st[np.isfinite(st["mean_psnr"])] if len(st) else st
    seeds = range_text(int(n) for n in st["n"]) if len(st) else "0"
    m.update(NumStrategies=str(len(st)), SeedsPerStrategy=seeds)
    counts = {int(n) > 1 for n in st["n"]} if len(st) else {False}
    m["SeedCountCase"] = "mixed" if len(counts) == 2 else "several" if counts == {True} else "one"
    if not len(finite):
        return {
            **m,
            "BestStrategy": NA,
            "WorstStrategy": NA,
            "BestStrategyValPSNR": NA,
            "StrategyGap": NA,
            "MaxSeedStd": NA,
        }
    best = finite.loc[finite["mean_psnr"].idxmax()]
    worst = finite.loc[finite["mean_psnr"].idxmin()]
    gap = float(best["mean_psnr"] - worst["mean_psnr"])
    spread = float(finite["std_psnr"].max())
    multi = int(st["n"].max()) > 1
    return {
        **m,
        "BestStrategy": tex_escape(display_name(best["strategy"])),
        "WorstStrategy": tex_escape(display_name(worst["strategy"])),
        "BestStrategyValPSNR": fmt(best["mean_psnr"]),
        "StrategyGap": fmt(gap),
        "MaxSeedStd": fmt(spread) if multi else NA,
    }


def teacher_forcing_macros(runs) -> dict[str, str]:
    """Validation PSNR of the teacher-forcing variants (the cyclical run is the decaying one), and the
    best."""
    st = strategy_stats(runs)
    by = dict(zip(st["strategy"], st["mean_psnr"])) if len(st) else {}
    m, scored = {}, {}
    for s, (key, case) in TF_VARIANTS.items():
        v = by.get(s, math.nan)
        m[f"{key}ValPSNR"] = fmt(v)
        if np.isfinite(v):
            scored[case] = v
    m["TFBestCase"] = max(scored, key=scored.get) if scored else "none"
    m["NumTFVariants"] = str(sum(s in by for s in TF_VARIANTS if s.startswith("tf")))
    return m


# -- over all runs ------------------------------------------------------------------------------
def _label(run: RunDir | None) -> str:
    """A run as prose names it: its strategy and seed, not its folder."""
    if run is None:
        return NA
    return f"{tex_escape(display_name(run.strategy))}, seed {int(run.config().get('seed', 0) or 0)}"


def best_run_macros(runs) -> dict[str, str]:
    """The single best run, the baseline it is measured against, and how many runs beat that baseline."""
    best = best_run(runs)
    m = {"BestRun": _label(best)}
    for key, field_, digits in (("BestValPSNR", "mean_psnr", 2), ("BestValSSIM", "mean_ssim", 3)):
        m[key] = fmt(best.number(field_), digits) if best else NA
    # the test scores: of the best run among those that rolled the test set out (a grid's first seeds)
    sub = best_run([r for r in runs if np.isfinite(r.number("public"))])
    m["SubmissionRun"] = _label(sub)
    for key, field_ in (
        ("SubmissionValPSNR", "mean_psnr"),
        ("SubmissionPublic", "public"),
        ("SubmissionPrivate", "private"),
    ):
        m[key] = fmt(sub.number(field_)) if sub else NA
    bases = [r.number("baseline_mean_psnr") for r in runs]
    bases = [b for b in bases if np.isfinite(b)]
    m["BaselinePSNR"] = fmt(float(np.mean(bases))) if bases else NA
    margins = [r.number("mean_psnr") - r.number("baseline_mean_psnr") for r in runs]
    margins = [x for x in margins if np.isfinite(x)]
    m["NumAboveBaseline"] = str(sum(x > 0 for x in margins))
    m["NumScoredRuns"] = str(len(margins))
    above = sum(x > 0 for x in margins)
    m["BaselineCase"] = (
        "unknown" if not margins else "all" if above == len(margins) else "some" if above else "no"
    )
    m["MinBaselineMargin"] = signed(min(margins)) if margins else NA
    m["MaxBaselineMargin"] = signed(max(margins)) if margins else NA
    return m


def grad_norm_macros(runs) -> dict[str, str]:
    """How often the lab's clip at norm 1 would have scaled a step, from the logged pre-clip norms."""
    norms = np.concatenate(
        [
            pd.to_numeric(r.iter_metrics()["grad_norm"], errors="coerce").to_numpy(float)
            for r in runs
            if "grad_norm" in r.metrics()
        ]
        or [np.array([])]
    )
    norms = norms[np.isfinite(norms)]
    peaks = [
        int(pd.to_numeric(r.epoch_metrics()["grad_norm"], errors="coerce").to_numpy(float).argmax())
        for r in runs
        if "grad_norm" in r.metrics() and r.epoch_metrics()["grad_norm"].notna().any()
    ]
    m = {
        "GradNormPeakCase": "unknown" if not peaks else "first" if not any(peaks) else "later",
        "GradNormLaterCount": str(sum(p > 0 for p in peaks)),
        "GradNormRunCount": str(len(peaks)),
    }
    if not len(norms):
        return {
            **m,
            "GradNormMedian": NA,
            "GradNormAboveOnePct": NA,
            "GradNormMedianScale": NA,
            "GradClipActsCase": "unknown",
        }
    above = norms[norms > 1]
    return {
        **m,
        "GradClipActsCase": "acts" if len(above) else "never",
        "GradNormMedian": fmt(float(np.median(norms))),
        "GradNormAboveOnePct": fmt(100 * len(above) / len(norms), 0),
        # the factor clip_grad_norm_(max_norm=1) multiplies a clipped step by
        "GradNormMedianScale": fmt(float(np.median(1 / above)), 3) if len(above) else NA,
    }


def drift_macros(runs, window_frac: float = 0.1, tolerance_db: float = 1.0) -> dict[str, str]:
    """Does the model drift along the rollout? Per run, the mean PSNR of the last frames minus that of the
    first, less the same change of the repeat-the-first-frame baseline on the same frames.

    The video itself changes along its length (the dancer moves away from the first frame's pose), and
    that moves every curve, the baseline's too; what is left after subtracting the baseline's change is
    the model's own drift. DriftCase says what that measure shows, not what autoregressive models usually do.
    """
    curves = [r.psnr().sort_values("frame") for r in runs if r.psnr() is not None and len(r.psnr()) >= 2]
    curves = [p for p in curves if "baseline_psnr" in p]
    # one window for all runs, so that "the last n frames" means the same frames in every run
    n = max(1, int(round(window_frac * min(map(len, curves))))) if curves else 0
    changes, base = [], None

    def change(col):
        return float(p[col].tail(n).mean() - p[col].head(n).mean())

    for p in curves:
        changes.append(change("psnr") - change("baseline_psnr"))
        base = change("baseline_psnr") if base is None else base
    m = {
        "DriftTolerance": f"{tolerance_db:g}",
        "DriftRunCount": str(len(changes)),
        "DriftFallCount": str(sum(c < -tolerance_db for c in changes)),
        "DriftRiseCount": str(sum(c > tolerance_db for c in changes)),
    }
    if not changes:
        return {
            **m,
            "DriftWindow": NA,
            "MinDrift": NA,
            "MaxDrift": NA,
            "BaselineDrift": NA,
            "DriftCase": "none",
        }
    lo, hi = min(changes), max(changes)
    case = "falls" if lo < -tolerance_db else "rises" if hi > tolerance_db else "flat"
    return {
        **m,
        "DriftWindow": str(n),
        "MinDrift": signed(lo),
        "MaxDrift": signed(hi),
        "BaselineDrift": signed(base),
        "DriftCase": case,
    }


def readme_table(runs) -> str:
    """The README's results table (markdown): one row per strategy, mean ± std over its seeds."""

    def md(values, digits=2):
        return mean_std(values).text(digits, tex=False, none="–")

    lines = [
        "| Strategy | Seeds | Score (dB) | 630-frame PSNR (dB) | One-step PSNR (dB) | Public (dB) "
        "| Private (dB) | KL (nats/frame) | Active units | CPU (min) |",
        "|---|" + "---:|" * 9,
    ]
    for _, row in strategy_stats(runs).iterrows():
        lines.append(
            "| "
            + " | ".join(
                [
                    display_name(row["strategy"]),
                    str(row["n"]),
                    md(row["short"]),
                    md(row["psnr"]),
                    md(row["one_step"]),
                    md(row["public"]),
                    md(row["private"]),
                    md(row["kl"], 3),
                    md(row["active"], 0),
                    md([c / 60 for c in row["cpu"]], 1),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
