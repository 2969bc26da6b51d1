"""Every ranking the report states, each decided by the tests of lab4.report.stats.

The ranking functions are ``runs -> {macro name: text}``, like lab4.report.numbers: they write numbers, names
and case macros, and report/main.tex picks the sentence. A claim is one of: the best strategy against each
other one (all strategies, and the KL annealing group alone), each teacher-forcing variant against its
decaying-ratio reference (the Cyclical run), and each strategy against the repeat-first-frame baseline.
Where the test does not reject equal means at the 5% level the report says the two are not
distinguishable at this budget; where a side has a single seed it says the pair is not tested.
"""

from __future__ import annotations

import numpy as np

from lab4.report.format import NA, display_name, tex_escape
from lab4.report.stats import (
    ALPHA,
    LEVEL,
    MIN_SEEDS,
    by_seed,
    finite,
    holm,
    interval_text,
    seed_diff,
    values,
    welch_diff,
)
from lab4.run.folder import group
from lab4.schedules import KL_STRATEGIES

RANK_CASES = ("clear", "partial", "tied", "single", "none")
CASES = {
    "RankCase": RANK_CASES,  # best strategy vs every other: all distinct, some, none, untested, no scores
    "KLRankCase": RANK_CASES,  # the same within the KL annealing group
    "TFOffTestCase": ("better", "worse", "same", "untested", "missing"),  # tf-off vs the decaying ratio
    "TFHalfTestCase": ("better", "worse", "same", "untested", "missing"),  # tf-half vs the decaying ratio
    "BaselineTestCase": ("above", "below", "mixed", "single", "unknown"),  # strategies vs the copy baseline
}
TF_REFERENCE = "cyclical"  # the decaying-ratio run the teacher-forcing variants share their KL schedule with


def _names(strategies) -> str:
    return ", ".join(tex_escape(display_name(s)) for s in strategies) or NA


def psnr_by_strategy(runs) -> dict[str, dict]:
    """Validation PSNR of each strategy, ``{seed: value}`` (NaN-free; a strategy without scores is left
    out)."""
    out = {s: by_seed(rs, lambda r: r.number("mean_psnr")) for s, rs in group(runs).items()}
    return {s: v for s, v in out.items() if v}


def rank_macros(scores: dict[str, dict], prefix: str) -> dict[str, str]:
    """The best strategy by mean, and the test of its lead over each other strategy (seed_diff), Holm across
    them."""
    p = prefix
    m = {
        f"{p}RankBest": NA,
        f"{p}RankBestPSNR": NA,
        f"{p}RankBestSeeds": "0",
        f"{p}RankAboveList": NA,
        f"{p}RankSpanList": NA,
        f"{p}RankUntestedList": NA,
        f"{p}RankTests": NA,
    }
    if len(scores) < 2:
        return {**m, f"{p}RankCase": "none"}
    best = max(scores, key=lambda s: np.mean(values(scores[s])))
    rivals = [s for s in scores if s != best]
    above, span, untested, tests = [], [], [], []
    for s, iv in zip(rivals, holm([seed_diff(scores[best], scores[s]) for s in rivals])):
        if iv is None:
            untested.append(s)
            continue
        (above if iv.verdict == "above" else span).append(s)
        tests.append(f"{tex_escape(display_name(s))} {interval_text(iv)}")
    others = len(scores) - 1
    case = (
        "single"
        if len(untested) == others
        else "clear"
        if len(above) == others
        else "tied"
        if not above
        else "partial"
    )
    m.update(
        {
            f"{p}RankCase": case,
            f"{p}RankBest": tex_escape(display_name(best)),
            f"{p}RankBestPSNR": f"{np.mean(values(scores[best])):.2f}",
            f"{p}RankBestSeeds": str(len(scores[best])),
            f"{p}RankAboveList": _names(above),
            f"{p}RankSpanList": _names(span),
            f"{p}RankUntestedList": _names(untested),
            f"{p}RankTests": "; ".join(tests) or NA,
        }
    )
    return m


def ranking_macros(runs) -> dict[str, str]:
    """The best strategy of all, and of the KL annealing group, each tested against the others."""
    scores = psnr_by_strategy(runs)
    kl = {s: v for s, v in scores.items() if s in KL_STRATEGIES}
    return {
        **rank_macros(scores, ""),
        **rank_macros(kl, "KL"),
        "TestLevel": f"{100 * LEVEL:g}",
        "TestAlpha": f"{ALPHA:.2g}",
        "TestMinSeeds": str(MIN_SEEDS),
    }


def teacher_forcing_test_macros(runs) -> dict[str, str]:
    """Each teacher-forcing variant against the decaying ratio (Holm across the two): better, worse or not
    distinguishable."""
    scores = psnr_by_strategy(runs)
    variants = (("tf-off", "TFOff"), ("tf-half", "TFHalf"))
    have = TF_REFERENCE in scores
    tests = holm(
        [seed_diff(scores[s], scores[TF_REFERENCE]) if s in scores and have else None for s, _ in variants]
    )
    m = {}
    for (s, key), iv in zip(variants, tests):
        case = (
            "missing"
            if s not in scores or not have
            else "untested"
            if iv is None
            else {"above": "better", "below": "worse", "spans": "same"}[iv.verdict]
        )
        m.update({f"{key}TestCase": case, f"{key}Test": interval_text(iv) if iv else NA})
    return m


def baseline_test_macros(runs) -> dict[str, str]:
    """Each strategy's margin over the repeat-first-frame baseline (per seed), tested against zero."""
    lists = {"above": [], "below": [], "spans": [], "untested": []}
    margins = {
        s: finite([r.number("mean_psnr") - r.number("baseline_mean_psnr") for r in rs])
        for s, rs in group(runs).items()
    }
    margins = {s: v for s, v in margins.items() if len(v)}
    tests = []
    for s, iv in zip(margins, holm([welch_diff(v) for v in margins.values()])):
        lists["untested" if iv is None else iv.verdict].append(s)
        if iv is not None:
            tests.append(f"{tex_escape(display_name(s))} {interval_text(iv)}")
    tested = [s for k in ("above", "below", "spans") for s in lists[k]]
    case = (
        "unknown"
        if not tested and not lists["untested"]
        else "single"
        if not tested
        else "above"
        if len(lists["above"]) == len(tested)
        else "below"
        if len(lists["below"]) == len(tested)
        else "mixed"
    )
    return {
        "BaselineTestCase": case,
        "BaselineTests": "; ".join(tests) or NA,
        **{f"Baseline{k.capitalize()}List": _names(v) for k, v in lists.items()},
    }


def kl_order(runs) -> list[str]:
    """The KL annealing strategies with a score, best mean validation PSNR first."""
    scores = {s: v for s, v in psnr_by_strategy(runs).items() if s in KL_STRATEGIES}
    return sorted(scores, key=lambda s: -np.mean(values(scores[s])))


AGREE_CASES = ("same", "best", "differ", "unknown")


def order_agreement(runs, other_runs) -> tuple[str, list[str], list[str]]:
    """(case, order of ``runs``, order of ``other_runs``) over the KL annealing strategies both scored: the
    "same" order, only the "best" agrees, they "differ" down to the best, or "unknown" below two shared."""
    a, b = kl_order(runs), kl_order(other_runs)
    common = set(a) & set(b)
    a, b = [s for s in a if s in common], [s for s in b if s in common]
    case = "unknown" if len(common) < 2 else "same" if a == b else "best" if a[0] == b[0] else "differ"
    return case, a, b
