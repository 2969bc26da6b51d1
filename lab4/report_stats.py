"""The test behind every ranking the report states: a percentile bootstrap over seeds, numpy only.

Two strategies differ at this budget when the 95% interval of the difference of their mean validation
PSNRs excludes zero. The interval resamples each strategy's seeds with replacement (10,000 times, a
fixed random seed, so the report's numbers are reproducible) and takes the 2.5th and 97.5th percentiles
of the resampled differences. With few seeds the resampled means take few values, so the interval is
rough and rather too narrow than too wide; the report says how many seeds it rests on. A side with
fewer than two seeds has no spread to resample: such a pair is *untested*, never called different.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 10_000
LEVEL = 0.95
RNG_SEED = 0
MIN_SEEDS = 2  # a strategy needs this many scored seeds before it is tested


@dataclass(frozen=True)
class Interval:
    """The observed difference of means and its bootstrap interval [lo, hi]."""
    diff: float
    lo: float
    hi: float

    @property
    def verdict(self) -> str:
        """"above" (the interval lies above zero), "below", or "spans" (not distinguishable)."""
        return "above" if self.lo > 0 else "below" if self.hi < 0 else "spans"


def finite(values) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return v[np.isfinite(v)]


def _resampled_means(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    idx = rng.integers(0, len(x), size=(n, len(x)))  # (n, seeds): one resample of the seeds per row
    return x[idx].mean(axis=1)


def bootstrap_diff(a, b=None, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                   seed: int = RNG_SEED) -> Interval | None:
    """Interval of mean(a) - mean(b) (of mean(a) alone when ``b`` is None), resampling each side's
    values within itself; None when a side has fewer than MIN_SEEDS finite values."""
    a = finite(a)
    b = None if b is None else finite(b)
    if len(a) < MIN_SEEDS or (b is not None and len(b) < MIN_SEEDS):
        return None
    rng = np.random.default_rng(seed)
    d = _resampled_means(a, rng, n_resamples)
    observed = float(a.mean())
    if b is not None:
        d = d - _resampled_means(b, rng, n_resamples)
        observed -= float(b.mean())
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(d, [tail, 100 - tail])
    return Interval(observed, float(lo), float(hi))


def mean_std(values) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the finite values; std is NaN below two values."""
    v = finite(values)
    if not len(v):
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v)
