"""Where each score's noise comes from, and what that noise lets a comparison over seeds find.

Rows of the appendix's table (standard deviations in dB, per score): one z draw on the same weights, z = 0
against a drawn z, one start point, the seed (the run's score as the grid records it), the epoch at which
training stops, and the paired difference between strategies, whose spread sets the detectable difference.
The within-run rows come from the noise record (lab4.run.noise), the seed and paired rows from the grid's
runs, the epoch row from the study's per-epoch validation (the 630-frame score only).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lab4.report.comparisons.scores import LAB, PRIMARY, pooled_sd, scores_by_strategy
from lab4.report.format import NA
from lab4.report.stats import Interval, detectable
from lab4.run.folder import group
from lab4.run.noise import NOISE_FILE
from lab4.short_rollouts import EARLY, HORIZON

COLUMNS = ("early", "short", "long")  # the first EARLY frames, the primary HORIZON frames, the lab's 630
SEEDS_PLANNED = (3, 4, 5, 8)


def load_noise(noise_dir) -> dict:
    """results/noise/noise.json ({} without it)."""
    path = Path(noise_dir) / NOISE_FILE if noise_dir else None
    return json.loads(path.read_text()) if path and path.is_file() else {}


def _short(run: dict, frames: int) -> np.ndarray:
    return np.asarray(run["short_psnr"], float)[:, :, :frames].mean(2)  # (starts, draws + 1)


def within_run(record: dict) -> dict[str, dict[str, float]]:
    """{row: {column: sd}} of the rows measured on the same weights."""
    runs = record.get("runs", [])
    rows: dict[str, dict[str, float]] = {"draw": {}, "z0": {}, "start": {}}
    for col, frames in (("early", EARLY), ("short", HORIZON)):
        per = [_short(r, frames) for r in runs]
        rows["draw"][col] = pooled_sd([p[:, :-1].mean(0) for p in per])  # one draw over all starts
        rows["z0"][col] = _median([abs(x - p[:, -1].mean()) for p in per for x in p[:, :-1].mean(0)])
        rows["start"][col] = pooled_sd([p[:, :-1].mean(1) for p in per])  # one start, its draws averaged
    rows["draw"]["long"] = pooled_sd([r["long_draws"] for r in runs])
    rows["z0"]["long"] = _median([abs(x - r["long_z0"]) for r in runs for x in r["long_draws"]])
    rows["start"]["long"] = math.nan  # the lab's rollout has one start
    return rows


def _median(values) -> float:
    return float(np.median(values)) if len(values) else math.nan


def seed_sd(runs) -> dict[str, float]:
    """The spread over seeds of each score as a run records it, pooled over strategies."""
    keys = {"early": "short_psnr_early", "short": PRIMARY, "long": LAB}
    return {c: pooled_sd([[r.number(k) for r in rs] for rs in group(runs).values()]) for c, k in keys.items()}


def epoch_sd(study_runs, first: int = 3) -> float:
    """The spread of the change in the 630-frame validation score from one epoch to the next, from epoch
    ``first`` on, over the study's runs that validate every epoch."""
    changes = []
    for r in study_runs:
        ep = r.epoch_metrics()
        if "val_psnr" in ep:
            v = ep["val_psnr"].to_numpy(float)[first - 1 :]
            changes += [x for x in np.diff(v) if math.isfinite(x)]
    return float(np.std(changes, ddof=1)) if len(changes) > 1 else math.nan


def paired_sd(runs, questions, key: str) -> tuple[float, int]:
    """(the pooled sd of the paired differences of the questions' comparisons on ``key``, the most pairs)."""
    scores, _ = scores_by_strategy(runs, key)
    diffs, n = [], 0
    for q in questions:
        for c in q.compare:
            if c in scores and q.reference in scores:
                shared = set(scores[c]) & set(scores[q.reference])
                diffs.append([scores[c][s] - scores[q.reference][s] for s in shared])
                n = max(n, len(shared))
    return pooled_sd(diffs), n


def planned_detectable(sd: float, seeds: int, alpha: float) -> float:
    """The difference a paired design of ``seeds`` seeds finds with 80% power at ``alpha``, for paired
    differences of spread ``sd``."""
    if not math.isfinite(sd) or sd <= 0:
        return math.nan
    iv = Interval(0.0, 0.0, 0.0, 1.0, seeds - 1, se=sd / math.sqrt(seeds), n=seeds, level=1 - alpha)
    return detectable(iv)


def _cell(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "--"


def noise_rows(runs, study_runs, record: dict, questions) -> str | None:
    """The table of noise sources' body: its header is in main.tex."""
    if not record.get("runs"):
        return None
    w, seeds = within_run(record), seed_sd(runs)
    paired = {c: paired_sd(runs, questions, k)[0] for c, k in (("short", PRIMARY), ("long", LAB))}
    rows = [
        ("One $z$ draw, same weights", w["draw"]),
        ("$z = 0$ against a drawn $z$ (median)", w["z0"]),
        ("One start point, same weights", w["start"]),
        ("Seed, the run's score as recorded", seeds),
        ("Epoch to epoch (the study, from epoch 3)", {"long": epoch_sd(study_runs)}),
        ("Paired difference between strategies", paired),
    ]
    return "".join(
        f"{label} & " + " & ".join(_cell(vals.get(c, math.nan)) for c in COLUMNS) + r" \\" + "\n"
        for label, vals in rows
    )


def power_rows(runs, questions) -> str | None:
    """The power calculation's body: the detectable difference of each score at 3-8 seeds, at the 5% level
    and at Holm's first step of a two-comparison question (2.5%)."""
    lines = []
    for label, key in (("Short-rollout score", PRIMARY), ("630-frame score", LAB)):
        sd, _ = paired_sd(runs, questions, key)
        if not math.isfinite(sd):
            continue
        cells = [_cell(planned_detectable(sd, n, a)) for n in SEEDS_PLANNED for a in (0.05, 0.025)]
        lines.append(f"{label} & {_cell(sd)} & " + " & ".join(cells) + r" \\")
    return "\n".join(lines) + "\n" if lines else None


def noise_macros(runs, study_runs, record: dict, questions) -> dict[str, str]:
    """The numbers the appendix's text quotes about the noise record."""
    m = {"NoiseCase": "measured" if record.get("runs") else "absent"}
    if not record.get("runs"):
        return m
    mach = record.get("machine", {})
    sd_short, n = paired_sd(runs, questions, PRIMARY)
    sd_long, _ = paired_sd(runs, questions, LAB)
    m.update(
        NoiseRuns=str(len(record["runs"])),
        NoiseDraws=str(record.get("draws", NA)),
        NoiseStarts=str(record.get("starts", NA)),
        NoiseProcessor=str(mach.get("processor") or mach.get("cpu_model_name") or NA),
        NoiseCPUMinutes=f"{record.get('cpu_seconds', math.nan) / 60:.0f}",
        NoisePairedShort=_cell(sd_short),
        NoisePairedLong=_cell(sd_long),
        NoisePairs=str(n),
        NoiseSDRatio=_cell(sd_long / sd_short) if sd_short > 0 else NA,
    )
    return m
