"""The tests behind every ranking the report states: a paired t-test over seeds (Welch's t where the two
sides ran different seeds), Holm across the comparisons of one claim (scipy.stats), and a test as the report
prints it. lab4.report.rankings states the rankings.

Why not the percentile bootstrap this replaces: with 3-5 seeds a side, the resampled means take few values
and the bootstrap interval of a difference of means is far too narrow. Simulated on normal seeds with no
true difference (2,000 trials), it covered zero in 79% of trials at n=3 and 87% at n=5, against a nominal
95%, so a report making ten comparisons almost surely claims a difference that is not there. Welch's
interval, which does not assume equal spreads, covered it in 96% and 95% (tests/test_report_stats.py runs
that simulation).

A claim that rests on several comparisons (each annealed schedule against None, every strategy against the
baseline) is decided by Holm's step-down test across them (holm_family), with each interval drawn at the level
of its step, so the chance of any false "differs" in that claim stays at 5% and an interval excludes zero
exactly when its verdict is a difference. A side with fewer than two seeds has no spread: such a pair is
*untested*, never called different.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from lab4.report.format import NA, signed

LEVEL = 0.95
ALPHA = 1 - LEVEL
MIN_SEEDS = 2  # a strategy needs this many scored seeds before it is tested


@dataclass(frozen=True)
class Interval:
    """The observed difference of means, the test's interval [lo, hi] for it and its p-value; ``p_holm``
    is the p-value after Holm's correction across the comparisons of one claim (None: a claim of one)."""

    diff: float
    lo: float
    hi: float
    p: float
    df: float
    p_holm: float | None = None
    test: str = "Welch"  # or "paired": by seed, where both sides ran the same seeds
    se: float = (
        math.nan
    )  # the standard error of ``diff``: intervals at other levels, the detectable difference
    n: int = 0  # pairs (paired) or the smaller side's seeds (Welch)
    level: float = LEVEL  # the interval's level: lower inside a family (holm_family)

    @property
    def p_decisive(self) -> float:
        return self.p if self.p_holm is None else self.p_holm

    @property
    def verdict(self) -> str:
        """ "above" (mean a > mean b at the 5% level, after Holm where it applies), "below", or "spans"."""
        if self.p_decisive < ALPHA:
            return "above" if self.diff > 0 else "below"
        return "spans"


def finite(values) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return v[np.isfinite(v)]


def welch_diff(a, b=None, level: float = LEVEL) -> Interval | None:
    """mean(a) - mean(b) with Welch's t interval and two-sided p-value (for ``b`` None: mean(a) against 0,
    a one-sample t); None when a side has fewer than MIN_SEEDS finite values."""
    a = finite(a)
    b = None if b is None else finite(b)
    if len(a) < MIN_SEEDS or (b is not None and len(b) < MIN_SEEDS):
        return None
    diff = float(a.mean() - (0.0 if b is None else b.mean()))
    spread = a.var(ddof=1) + (0.0 if b is None else b.var(ddof=1))
    n = len(a) if b is None else min(len(a), len(b))
    if spread == 0:  # no spread on any side: the difference is exact, and t is undefined
        return Interval(diff, diff, diff, 1.0 if diff == 0 else 0.0, math.inf, se=0.0, n=n, level=level)
    with warnings.catch_warnings():  # "precision loss" for seeds that agree to many digits: t is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_1samp(a, 0.0) if b is None else stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence_level=level)
    se = math.sqrt(a.var(ddof=1) / len(a) + (0.0 if b is None else b.var(ddof=1) / len(b)))
    return Interval(
        diff, float(ci.low), float(ci.high), float(res.pvalue), float(res.df), se=se, n=n, level=level
    )


def paired_diff(a: Mapping, b: Mapping, level: float = LEVEL) -> Interval | None:
    """mean over seeds of a[seed] - b[seed], with the paired t interval and p-value (the one-sample t of the
    differences, as scipy.stats.ttest_rel), over the seeds both sides scored; None below MIN_SEEDS of them."""
    d = finite([a[s] - b[s] for s in a if s in b and a[s] is not None and b[s] is not None])
    iv = welch_diff(d, level=level)
    return None if iv is None else replace(iv, test="paired")


def seed_diff(a, b, level: float = LEVEL) -> Interval | None:
    """The report's test of two strategies. Given ``{seed: value}`` on both sides, it is paired by seed over
    the seeds both sides scored (at least MIN_SEEDS of them): a seed fixes the initial weights and the order
    of the clips whatever the strategy (tests/test_train.py checks it), so whatever the seed does to both
    sides alike drops out of the difference. Otherwise (too few shared seeds, or plain lists) it is Welch's
    t over all values."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if len(set(a) & set(b)) >= MIN_SEEDS:
            return paired_diff(a, b, level)
        a, b = list(a.values()), list(b.values())
    return welch_diff(
        list(a.values()) if isinstance(a, Mapping) else a,
        list(b.values()) if isinstance(b, Mapping) else b,
        level,
    )


def values(scores) -> list[float]:
    """The values of ``{seed: value}`` (or of a plain list)."""
    return list(scores.values()) if isinstance(scores, Mapping) else list(scores)


def by_seed(runs, value) -> dict:
    """``{seed: value(run)}`` over ``runs`` (one strategy's), finite values only; a run without a seed in its
    config is keyed by its name, so it is never paired."""
    out = {}
    for r in runs:
        v = value(r)
        if v is not None and np.isfinite(v):
            out[r.config().get("seed", r.name)] = float(v)
    return out


def holm(intervals: list[Interval | None]) -> list[Interval | None]:
    """The same intervals with ``p_holm`` set: Holm's step-down adjustment across the tested ones
    (adjusted p_(i) = max over j <= i of (m - j + 1) p_(j), capped at 1; untested entries stay None)."""
    tested = sorted((iv.p, i) for i, iv in enumerate(intervals) if iv is not None)
    m, out, running = len(tested), list(intervals), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = replace(intervals[i], p_holm=running)
    return out


def at_level(iv: Interval, level: float) -> Interval:
    """The same test with its interval at ``level``: diff -/+ the t quantile times its standard error."""
    if not math.isfinite(iv.se) or iv.se == 0:
        return replace(iv, level=level)
    half = float(stats.t.ppf(0.5 + level / 2, iv.df)) * iv.se
    return replace(iv, lo=iv.diff - half, hi=iv.diff + half, level=level)


def holm_family(intervals: list[Interval | None], alpha: float = ALPHA) -> list[Interval | None]:
    """Holm's step-down test across one question's comparisons, with intervals that agree with it.

    The k-th smallest p-value of m is tested at alpha / (m - k + 1) while every smaller one was rejected;
    its interval is drawn at that level, so it excludes zero exactly when the comparison is rejected. Once
    one is not rejected, it and every later one get the interval at that same level, which then contains
    zero. ``p_holm`` is Holm's adjusted p-value, which is below alpha exactly for the rejected ones."""
    adjusted = holm(intervals)
    order = sorted((iv.p, i) for i, iv in enumerate(intervals) if iv is not None)
    out, m, stopped = list(adjusted), len(order), None
    for k, (p, i) in enumerate(order):
        step = alpha / (m - k)
        if stopped is None and not p < step:
            stopped = step
        out[i] = at_level(adjusted[i], 1 - (stopped or step))
    return out


def power(delta: float, se: float, df: float, alpha: float) -> float:
    """The chance that a two-sided t-test at ``alpha`` rejects when the true difference is ``delta``."""
    crit, nc = stats.t.ppf(1 - alpha / 2, df), delta / se
    upper = stats.nct.sf(crit, df, nc)
    lower = stats.nct.sf(crit, df, -nc)  # the other tail, written so that it stays finite
    return float(np.nan_to_num(upper) + np.nan_to_num(lower))


def detectable(iv: Interval, target: float = 0.8) -> float:
    """The smallest true difference that this design (its standard error and degrees of freedom, at the
    interval's level) finds with ``target`` power: what a "not distinguishable" could have found. NaN
    without spread or degrees of freedom."""
    alpha = 1 - iv.level
    if not (math.isfinite(iv.se) and iv.se > 0 and math.isfinite(iv.df) and iv.df >= 1):
        return math.nan
    hi = iv.se
    while power(hi, iv.se, iv.df, alpha) < target:
        hi *= 2
    return float(optimize.brentq(lambda d: power(d, iv.se, iv.df, alpha) - target, 0.0, hi, xtol=1e-6))


def p_text(p: float) -> str:
    """A p-value as the report prints it: three significant digits below 0.1, where the 5% line is drawn
    (0.0503 must not print as 0.05), two decimals above; '<0.001' below that."""
    return "<0.001" if p < 0.001 else f"{p:.3g}" if p < 0.1 else f"{p:.2f}"


class MeanStd(NamedTuple):
    """The mean and sample standard deviation of a strategy's seeds and how many there are: None and NaN
    values are left out, the mean is NaN without values and the std NaN below two."""

    mean: float
    std: float
    n: int

    def text(self, digits: int = 2, tex: bool = True, none: str = "--") -> str:
        """'25.10 $\\pm$ 0.10' (a plain '±' with ``tex=False``, for the README), the value alone for one seed,
        ``none`` for no value."""
        if not self.n:
            return none
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        pm = "$\\pm$" if tex else "±"
        return f"{self.mean:.{digits}f} {pm} {self.std:.{digits}f}"


def mean_std(values) -> MeanStd:
    """The report's one mean and spread over seeds (tables, verdicts, the loss balance)."""
    v = finite(values)
    if not len(v):
        return MeanStd(math.nan, math.nan, 0)
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))


def interval_text(
    iv: Interval, unit: str = "~dB", digits: int = 2, spelled: bool = False, detect: bool = True
) -> str:
    """A test as the report prints it, with its interval's level and the p-value that decides (Holm's, marked
    so, where the claim has several comparisons): '$+$0.52~dB, 95\\% interval [0.10, 0.90], $p = 0.03$';
    ``spelled``, for a sentence that has already given the difference: '95\\% interval +0.10 to +0.90 dB,
    $p = 0.03$' (``unit`` " dB"). A test that does not reject adds the smallest difference it would have
    found with 80% power (:func:`detectable`), unless ``detect`` is off (the caller's sentence says it)."""
    value = iv.p_holm if iv.p_holm is not None else iv.p
    name = "p_{\\mathrm{Holm}}" if iv.p_holm is not None else "p"
    p = f"${name} < 0.001$" if value < 0.001 else f"${name} = {p_text(value)}$"
    level = f"{100 * iv.level:.3g}\\%"
    # a test that finds no difference says what it could have found (``detect``), in the difference's unit
    mde = detectable(iv) if detect and iv.verdict == "spans" else math.nan
    if math.isfinite(mde):
        p += f", detectable at 80\\% power: {mde:.{digits}f}{unit}"
    if spelled:
        lo, hi = (signed(v, digits, plus="+") for v in (iv.lo, iv.hi))
        return f"{level} interval {lo} to {hi}{unit}, {p}"
    lo, hi = (f"{v:.{digits}f}".replace("-", "$-$") for v in (iv.lo, iv.hi))
    return f"{signed(iv.diff, digits, plus='$+$')}{unit}, {level} interval [{lo}, {hi}], {p}"


PAIR_CASES = ("distinct", "spans", "untested", "unknown")


def pair_test(winner, other, higher_wins: bool, unit: str = "", digits: int = 2) -> tuple[str, str]:
    """(case, interval text) for the claim that ``winner``'s values beat ``other``'s: "distinct" when
    the test (seed_diff) finds mean(winner) - mean(other) on the winning side at the 5% level, "spans" when it
    does not, "untested" below two seeds a side, "unknown" when a side is missing."""
    if winner is None or other is None:
        return "unknown", NA
    iv = seed_diff(winner, other)
    if iv is None:
        return "untested", NA
    won = iv.verdict == ("above" if higher_wins else "below")
    return ("distinct" if won else "spans"), interval_text(iv, unit, digits)
