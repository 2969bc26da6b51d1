"""Each run's training mechanism from its metrics.csv, and the schedules' measures tested against None.

Units, as model.clip_loss and Trainer.step log them (lab4.report.loss.dynamics has the same): ``kl`` is
summed over the latents and the clip's T-1 predicted frames and averaged over the batch, ``mse`` the mean
over pixel values summed over the T-1 frames; both are divided by T-1 here, per predicted frame.
``grad_norm`` is the value torch.nn.utils.clip_grad_norm_ returns, the total norm *before* clipping (after
fp16's unscale), so a step was clipped exactly when it exceeds the config's clip_grad > 0. The row of
iteration i is computed on the weights after i optimizer steps, so its position in the run is the number
of steps taken before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lab4.report.loss.dynamics import frames_per_clip
from lab4.report.stats import Interval, holm_family, seed_diff
from lab4.run.folder import RunDir
from lab4.run.questions import LAB_QUESTIONS

# The KL counts as collapsed below 1 nat per predicted frame: z then tells apart fewer than e outcomes of a
# frame, over all 16,384 latent units, less than the 1.5 nats the control's light step alone is worth
# (lab4.datasets.synth.look), and far below the 1,300-2,800 nats a clip that every run starts from.
KL_NATS = 1.0
FIRST_EPOCH = 0  # metrics.csv's epochs are 0-based
QUESTION = LAB_QUESTIONS[0]  # the lab's KL question: each annealed schedule against None, Holm across them


@dataclass(frozen=True)
class Mechanism:
    """One run's measures; NaN where its log cannot give one (no iteration of epoch 1 was written: a run
    that diverged in epoch 1 keeps no rows of it)."""

    name: str
    strategy: str
    seed: object  # the config's seed (the name where it has none, so that it is never paired)
    iterations: int  # iterations logged in epoch 1
    kl_steps: float  # optimizer steps before the first iteration whose KL per frame is below KL_NATS
    kl_beta: float  # beta at that iteration
    clipped: float  # share of epoch 1's steps whose gradient norm exceeded clip_grad (0 without a clip)
    peak_grad: float  # largest gradient norm in epoch 1 (before clipping)
    mse: float  # mean MSE per predicted frame over epoch 1
    diverged: bool  # diverged.json: the loss became non-finite
    clip: float  # the config's clip_grad (0: no clipping)


def _column(rows: pd.DataFrame, col: str) -> np.ndarray:
    if col not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float)


def measure(run: RunDir) -> Mechanism:
    """The mechanism measures of one run folder."""
    cfg, it = run.config(), run.iter_metrics()
    t = frames_per_clip(run)
    kl = _column(it, "kl") / t
    below = np.flatnonzero(kl < KL_NATS)  # NaN compares False: a lost row never counts as collapsed
    first = int(below[0]) if len(below) else None
    e1 = it[_column(it, "epoch") == FIRST_EPOCH] if len(it) else it
    grad = _column(e1, "grad_norm")
    grad = grad[~np.isnan(grad)]  # an infinite norm stays: it was clipped, and it is the peak
    clip = float(cfg.get("clip_grad") or 0.0)
    mse = _column(e1, "mse") / t
    return Mechanism(
        name=run.name,
        strategy=run.strategy,
        seed=cfg.get("seed", run.name),
        iterations=len(e1),
        kl_steps=float(first) if first is not None else math.nan,
        kl_beta=float(_column(it, "beta")[first]) if first is not None else math.nan,
        clipped=(float(np.mean(grad > clip)) if clip > 0 else 0.0) if len(grad) else math.nan,
        peak_grad=float(grad.max()) if len(grad) else math.nan,
        mse=float(np.nanmean(mse)) if np.isfinite(mse).any() else math.nan,
        diverged=bool(run.diverged()),
        clip=clip,
    )


def mechanism_runs(folder) -> list[RunDir]:
    """Every run folder under ``folder`` (lab4.run.folder.load_runs skips a run without iteration rows, which
    is what a run that diverged in its first epoch leaves, and a divergence is one of the measures here)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [RunDir(p) for p in sorted(folder.iterdir()) if p.is_dir()]
    return [r for r in runs if r.holds_run() or r.diverged()]


# the measures the schedules are compared on: (Mechanism field, what the test is taken on)
TESTED = {
    "KLSteps": ("kl_steps", "steps"),
    "Clipped": ("clipped", "share"),
    "PeakGrad": ("peak_grad", "log10"),  # it spans decades between schedules: tested as a ratio
    "MSE": ("mse", "mse"),
    "Diverged": ("diverged", "share"),  # 1 for a run that diverged: the paired difference of the rates
}


def tested_value(m: Mechanism, key: str) -> float:
    """The value of measure ``key`` that the test takes: log10 of the peak, 0/1 for a divergence."""
    field, scale = TESTED[key]
    v = float(getattr(m, field))
    if scale == "log10":
        return math.log10(v) if v > 0 and math.isfinite(v) else math.nan
    return v


def by_seed(ms: list[Mechanism], key: str) -> dict:
    """``{seed: value}`` of measure ``key`` over one schedule's runs, finite values only."""
    out = {}
    for m in ms:
        v = tested_value(m, key)
        if math.isfinite(v):
            out[m.seed] = v
    return out


def by_schedule(runs) -> dict[str, list[Mechanism]]:
    """The question's schedules' measures, reference first ({} without any of their runs)."""
    names = (QUESTION.reference, *QUESTION.compare)
    ms = [measure(r) for r in runs if r.strategy in names]
    return {s: [m for m in ms if m.strategy == s] for s in names if any(m.strategy == s for m in ms)}


def tests(groups: dict[str, list[Mechanism]], key: str) -> dict[str, Interval | None]:
    """Each compared schedule minus None on measure ``key``, paired on shared seeds (stats.seed_diff) and
    Holm across the comparisons (stats.holm_family); None where a side is missing or too small."""
    ref = by_seed(groups.get(QUESTION.reference, []), key)
    sides = [by_seed(groups[c], key) if c in groups else {} for c in QUESTION.compare]
    ivs = holm_family([seed_diff(side, ref) if side and ref else None for side in sides])
    return dict(zip(QUESTION.compare, ivs))
