"""The tests behind every ranking the report states: a paired t-test over seeds (Welch's t where the two
sides ran different seeds), Holm across the comparisons of one claim (scipy.stats), and a test as the report
prints it. lab4.report.rankings states the rankings.

Why not the percentile bootstrap this replaces: with 3-5 seeds a side, the resampled means take few values
and the bootstrap interval of a difference of means is far too narrow. Simulated on normal seeds with no
true difference (2,000 trials), it covered zero in 79% of trials at n=3 and 87% at n=5, against a nominal
95%, so a report making ten comparisons almost surely claims a difference that is not there. Welch's
interval, which does not assume equal spreads, covered it in 96% and 95% (tests/test_report_stats.py runs
that simulation).

A claim that rests on several comparisons (the best strategy against each other one, every strategy
against the baseline) is decided by Holm's step-down correction across them, so the chance of any false
"differs" in that claim stays at 5%. A side with fewer than two seeds has no spread: such a pair is
*untested*, never called different.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import stats

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
    if spread == 0:  # no spread on any side: the difference is exact, and t is undefined
        return Interval(diff, diff, diff, 1.0 if diff == 0 else 0.0, math.inf)
    with warnings.catch_warnings():  # "precision loss" for seeds that agree to many digits: t is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_1samp(a, 0.0) if b is None else stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence_level=level)
    return Interval(diff, float(ci.low), float(ci.high), float(res.pvalue), float(res.df))


def paired_diff(a: Mapping, b: Mapping, level: float = LEVEL) -> Interval | None:
    """mean over seeds of a[seed] - b[seed], with the paired t interval and p-value (the one-sample t of the
    differences, as scipy.stats.ttest_rel), over the seeds both sides scored; None below MIN_SEEDS of them."""
    d = finite([a[s] - b[s] for s in a if s in b and a[s] is not None and b[s] is not None])
    iv = welch_diff(d, level=level)
    return None if iv is None else replace(iv, test="paired")


def seed_diff(a, b, level: float = LEVEL) -> Interval | None:
    """The report's test of two strategies. Given ``{seed: value}`` on both sides with the same seeds, it is
    paired by seed: a seed fixes the initial weights and the order of the clips whatever the strategy
    (tests/test_train.py checks it), so the seed's own luck cancels in each difference. Otherwise (other
    seeds, or plain lists) it is Welch's t."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) == set(b):
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


def interval_text(iv: Interval, unit: str = "~dB", digits: int = 2, spelled: bool = False) -> str:
    """A test as the report prints it, with the p-value that decides (Holm's, marked so, where the claim has
    several comparisons): '$+$0.52~dB [0.10, 0.90], $p = 0.03$'; ``spelled``, for a sentence that has already
    given the difference: '95\\% interval +0.10 to +0.90 dB, $p = 0.03$' (``unit`` " dB")."""
    p = (
        f"$p_{{\\mathrm{{Holm}}}} = {p_text(iv.p_holm)}$"
        if iv.p_holm is not None
        else f"$p = {p_text(iv.p)}$"
    )
    if spelled:
        lo, hi = (signed(v, digits, plus="+") for v in (iv.lo, iv.hi))
        return f"{100 * LEVEL:g}\\% interval {lo} to {hi}{unit}, {p}"
    lo, hi = (f"{v:.{digits}f}".replace("-", "$-$") for v in (iv.lo, iv.hi))
    return f"{signed(iv.diff, digits, plus='$+$')}{unit} [{lo}, {hi}], {p}"


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
