"""Every ranking the report states, with its test over seeds (lab4.report_stats), as report macros.

Like report_numbers.py, each function is ``runs -> {macro name: text}`` and writes numbers, names and
case macros; report/main.tex picks the sentence. A ranking claim is one of: the best strategy against
each other one (all strategies, and the KL annealing group alone), each teacher-forcing variant against
its decaying-ratio reference (the Cyclical run), and each strategy against the repeat-first-frame
baseline. Each is Welch's t over seeds, with Holm's correction across the comparisons of one claim
(lab4.report_stats). Where the test does not reject equal means at the 5% level the report says the two
are not distinguishable at this budget; where a side has a single seed it says the pair is not tested.
"""
from __future__ import annotations

import numpy as np

from . import report_stats as S
from .report_format import NA, signed, tex_escape
from .report_runs import KL_STRATEGIES, display_name, group

RANK_CASES = ("clear", "partial", "tied", "single", "none")
CASES = {
    "RankCase": RANK_CASES,  # best strategy vs every other: all distinct, some, none, untested, no scores
    "KLRankCase": RANK_CASES,  # the same within the KL annealing group
    "TFOffTestCase": ("better", "worse", "same", "untested", "missing"),  # tf-off vs the decaying ratio
    "TFHalfTestCase": ("better", "worse", "same", "untested", "missing"),  # tf-half vs the decaying ratio
    "BaselineTestCase": ("above", "below", "mixed", "single", "unknown"),  # strategies vs the copy baseline
}
TF_REFERENCE = "cyclical"  # the decaying-ratio run the teacher-forcing variants share their KL schedule with






def interval_text(iv: S.Interval, unit: str = "~dB", digits: int = 2) -> str:
    """'$+$0.52~dB [0.10, 0.90], $p = 0.03$': the difference, its 95% Welch interval and the p-value that
    decides (Holm's, marked so, where the claim has several comparisons)."""
    lo, hi = (f"{v:.{digits}f}".replace("-", "$-$") for v in (iv.lo, iv.hi))
    p = f"$p_{{\\mathrm{{Holm}}}} = {S.p_text(iv.p_holm)}$" if iv.p_holm is not None else f"$p = {S.p_text(iv.p)}$"
    return f"{signed(iv.diff, digits, plus='$+$')}{unit} [{lo}, {hi}], {p}"


PAIR_CASES = ("distinct", "spans", "untested", "unknown")


def pair_test(winner, other, higher_wins: bool, unit: str = "", digits: int = 2) -> tuple[str, str]:
    """(case, interval text) for the claim that ``winner``'s values beat ``other``'s: "distinct" when
    Welch's test finds mean(winner) - mean(other) on the winning side at the 5% level, "spans" when it
    does not, "untested" below two seeds a side, "unknown" when a side is missing."""
    if winner is None or other is None:
        return "unknown", NA
    iv = S.welch_diff(winner, other)
    if iv is None:
        return "untested", NA
    won = iv.verdict == ("above" if higher_wins else "below")
    return ("distinct" if won else "spans"), interval_text(iv, unit, digits)


def _names(strategies) -> str:
    return ", ".join(tex_escape(display_name(s)) for s in strategies) or NA


def psnr_by_strategy(runs) -> dict[str, list[float]]:
    """Validation PSNR of each strategy's seeds (NaN-free; a strategy without scores is left out)."""
    out = {}
    for s, rs in group(runs).items():
        v = S.finite([r.value("mean_psnr") for r in rs])
        if len(v):
            out[s] = [float(x) for x in v]
    return out


def rank_macros(scores: dict[str, list[float]], prefix: str) -> dict[str, str]:
    """The best strategy by mean, and Welch's test of its lead over each other strategy, Holm across them."""
    p = prefix
    m = {f"{p}RankBest": NA, f"{p}RankBestPSNR": NA, f"{p}RankBestSeeds": "0", f"{p}RankAboveList": NA,
         f"{p}RankSpanList": NA, f"{p}RankUntestedList": NA, f"{p}RankTests": NA}
    if len(scores) < 2:
        return {**m, f"{p}RankCase": "none"}
    best = max(scores, key=lambda s: np.mean(scores[s]))
    rivals = [s for s in scores if s != best]
    above, span, untested, tests = [], [], [], []
    for s, iv in zip(rivals, S.holm([S.welch_diff(scores[best], scores[s]) for s in rivals])):
        if iv is None:
            untested.append(s)
            continue
        (above if iv.verdict == "above" else span).append(s)
        tests.append(f"{tex_escape(display_name(s))} {interval_text(iv)}")
    others = len(scores) - 1
    case = ("single" if len(untested) == others else "clear" if len(above) == others
            else "tied" if not above else "partial")
    m.update({f"{p}RankCase": case, f"{p}RankBest": tex_escape(display_name(best)),
              f"{p}RankBestPSNR": f"{np.mean(scores[best]):.2f}", f"{p}RankBestSeeds": str(len(scores[best])),
              f"{p}RankAboveList": _names(above), f"{p}RankSpanList": _names(span),
              f"{p}RankUntestedList": _names(untested), f"{p}RankTests": "; ".join(tests) or NA})
    return m


def ranking_macros(runs) -> dict[str, str]:
    """The best strategy of all, and of the KL annealing group, each tested against the others."""
    scores = psnr_by_strategy(runs)
    kl = {s: v for s, v in scores.items() if s in KL_STRATEGIES}
    return {**rank_macros(scores, ""), **rank_macros(kl, "KL"),
            "TestLevel": f"{100 * S.LEVEL:g}", "TestAlpha": f"{S.ALPHA:.2g}", "TestMinSeeds": str(S.MIN_SEEDS)}


def teacher_forcing_test_macros(runs) -> dict[str, str]:
    """Each teacher-forcing variant against the decaying ratio (Holm across the two): better, worse or not
    distinguishable."""
    scores = psnr_by_strategy(runs)
    variants = (("tf-off", "TFOff"), ("tf-half", "TFHalf"))
    have = TF_REFERENCE in scores
    tests = S.holm([S.welch_diff(scores[s], scores[TF_REFERENCE]) if s in scores and have else None
                    for s, _ in variants])
    m = {}
    for (s, key), iv in zip(variants, tests):
        case = ("missing" if s not in scores or not have else "untested" if iv is None
                else {"above": "better", "below": "worse", "spans": "same"}[iv.verdict])
        m.update({f"{key}TestCase": case, f"{key}Test": interval_text(iv) if iv else NA})
    return m


def baseline_test_macros(runs) -> dict[str, str]:
    """Each strategy's margin over the repeat-first-frame baseline (per seed), tested against zero."""
    lists = {"above": [], "below": [], "spans": [], "untested": []}
    margins = {s: S.finite([r.value("mean_psnr") - r.value("baseline_mean_psnr") for r in rs])
               for s, rs in group(runs).items()}
    margins = {s: v for s, v in margins.items() if len(v)}
    tests = []
    for s, iv in zip(margins, S.holm([S.welch_diff(v) for v in margins.values()])):
        lists["untested" if iv is None else iv.verdict].append(s)
        if iv is not None:
            tests.append(f"{tex_escape(display_name(s))} {interval_text(iv)}")
    tested = [s for k in ("above", "below", "spans") for s in lists[k]]
    case = ("unknown" if not tested and not lists["untested"] else "single" if not tested
            else "above" if len(lists["above"]) == len(tested) else "below" if len(lists["below"]) == len(tested)
            else "mixed")
    return {"BaselineTestCase": case, "BaselineTests": "; ".join(tests) or NA,
            **{f"Baseline{k.capitalize()}List": _names(v) for k, v in lists.items()}}


def kl_order(runs) -> list[str]:
    """The KL annealing strategies with a score, best mean validation PSNR first."""
    scores = {s: v for s, v in psnr_by_strategy(runs).items() if s in KL_STRATEGIES}
    return sorted(scores, key=lambda s: -np.mean(scores[s]))


MACRO_PARTS = (ranking_macros, teacher_forcing_test_macros, baseline_test_macros)
