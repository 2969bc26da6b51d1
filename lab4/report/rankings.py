"""The report's tests on the lab's 630-frame score that are not the grid's questions: each teacher-forcing
variant against its decaying-ratio reference (the Cyclical run), and each strategy against the
repeat-first-frame baseline, decided by the tests of lab4.report.stats with Holm across a claim.

The functions are ``runs -> {macro name: text}``, like lab4.report.numbers: they write numbers, names and
case macros, and report/main.tex picks the sentence. Where a side has a single seed a pair is not tested.
"""

from __future__ import annotations

from lab4.report.format import NA, display_name, tex_escape
from lab4.report.stats import (
    ALPHA,
    LEVEL,
    MIN_SEEDS,
    by_seed,
    finite,
    holm_family,
    interval_text,
    seed_diff,
    welch_diff,
)
from lab4.run.folder import group

CASES = {
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


def ranking_macros(runs) -> dict[str, str]:
    """The tests' level and the seeds they need, which main.tex quotes (the comparisons themselves are
    lab4.report.comparisons': the questions fixed before the runs, never the best strategy picked after)."""
    return {"TestLevel": f"{100 * LEVEL:g}", "TestAlpha": f"{ALPHA:.2g}", "TestMinSeeds": str(MIN_SEEDS)}


def teacher_forcing_test_macros(runs) -> dict[str, str]:
    """Each teacher-forcing variant against the decaying ratio (Holm across the two): better, worse or not
    distinguishable."""
    scores = psnr_by_strategy(runs)
    variants = (("tf-off", "TFOff"), ("tf-half", "TFHalf"))
    have = TF_REFERENCE in scores
    tests = holm_family(
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
    for s, iv in zip(margins, holm_family([welch_diff(v) for v in margins.values()])):
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
