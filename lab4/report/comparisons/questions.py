"""The questions fixed before the runs (lab4.run.questions), tested on the primary score and on the lab's.

Inside a question every compared strategy is tested against the reference, paired on the seeds both ran,
and Holm's step-down test decides across them (stats.holm_family), with each interval drawn at the level
its step was tested at, so that an interval excludes zero exactly when its verdict says "differs". Beside
every comparison that does not reject stands the smallest difference the design would have found with 80%
power (stats.detectable): a "not distinguishable" says how large a difference it could have missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lab4.report.comparisons.scores import LAB, NAMES, PRIMARY, has_score, pooled_sd, scores_by_strategy
from lab4.report.format import NA, display_name, tex_escape
from lab4.report.stats import (
    ALPHA,
    Interval,
    detectable,
    holm_family,
    interval_text,
    p_text,
    power,
    seed_diff,
)
from lab4.run.folder import group
from lab4.run.questions import LAB_QUESTIONS, Question

VERDICTS = ("better", "worse", "notdist", "untested", "missing")
QUESTION_CASES = ("differs", "open", "untested", "missing")  # any "differs"; tested, none; no test; no runs
POWER = 0.8
TARGET_DB = 1.0  # the difference the conclusion sizes a design for: seeds a side to detect it
MAX_SEEDS = 200


@dataclass(frozen=True)
class Comparison:
    """One compared strategy against its question's reference, on one score."""

    question: Question
    strategy: str
    iv: Interval | None
    verdict: str
    detect: float  # the smallest true difference found with 80% power at the interval's level
    diverged: tuple[str, ...]  # runs of either side that diverged and were counted at the copy baseline


def compare(runs, question: Question, key: str) -> list[Comparison]:
    """The question's comparisons on score ``key``, Holm across them."""
    return compare_scores(*scores_by_strategy(runs, key), question)


def compare_scores(scores: dict[str, dict], gone: dict[str, list], question: Question) -> list[Comparison]:
    """The question's comparisons on ``{strategy: {seed: score}}`` (``gone``: each side's diverged runs,
    already counted in ``scores``), Holm across them."""
    ref = question.reference
    ivs = holm_family(
        [
            seed_diff(scores[c], scores[ref]) if c in scores and ref in scores else None
            for c in question.compare
        ]
    )
    out = []
    for c, iv in zip(question.compare, ivs):
        if c not in scores or ref not in scores:
            verdict = "missing"
        elif iv is None:
            verdict = "untested"
        else:
            verdict = {"above": "better", "below": "worse", "spans": "notdist"}[iv.verdict]
        names = (*gone.get(c, []), *gone.get(ref, []))
        out.append(Comparison(question, c, iv, verdict, detectable(iv) if iv else math.nan, names))
    return out


def seeds_for(comparisons: list[Comparison], target: float = TARGET_DB) -> int | None:
    """Seeds a side that the question's paired design needs to find ``target`` dB with 80% power at its
    first Holm step, from the largest spread of the differences seen (None: nothing to size it from, or
    more than MAX_SEEDS)."""
    ivs = [c.iv for c in comparisons if c.iv is not None and c.iv.n >= 2 and math.isfinite(c.iv.se)]
    if not ivs:
        return None
    sd = max(iv.se * math.sqrt(iv.n) for iv in ivs)  # a paired difference's spread over seeds
    if not sd > 0:
        return None
    alpha = ALPHA / len(comparisons)
    return next(
        (n for n in range(2, MAX_SEEDS + 1) if power(target, sd / math.sqrt(n), n - 1, alpha) >= POWER), None
    )


def question_case(comparisons: list[Comparison]) -> str:
    verdicts = {c.verdict for c in comparisons}
    if verdicts & {"better", "worse"}:
        return "differs"
    if "notdist" in verdicts:
        return "open"
    return "untested" if "untested" in verdicts else "missing"


def _name(strategy: str) -> str:
    return tex_escape(display_name(strategy))


def sentence(c: Comparison) -> str:
    """main.tex's \\Comparison{verdict}{compared}{reference}{test}{detectable}: the sentence is main.tex's."""
    test = interval_text(c.iv, detect=False) if c.iv else NA  # main.tex's sentence gives the detectable
    detect = f"{c.detect:.1f}" if math.isfinite(c.detect) else NA
    args = (c.verdict, _name(c.strategy), _name(c.question.reference), test, detect)
    return "\\Comparison" + "".join(f"{{{a}}}" for a in args)


def seed_correlation(runs, questions, key: str) -> float:
    """The mean correlation over seeds between each compared strategy's score and its reference's: how
    much of a seed's luck the two sides share, which pairing by seed removes (none when it is near 0)."""
    scores, _ = scores_by_strategy(runs, key)
    rs = []
    for q in questions:
        for c in q.compare:
            if c in scores and q.reference in scores:
                shared = sorted(set(scores[c]) & set(scores[q.reference]), key=str)
                a = [scores[c][s] for s in shared]
                b = [scores[q.reference][s] for s in shared]
                if len(shared) >= 3 and np.std(a) > 0 and np.std(b) > 0:
                    rs.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rs)) if rs else math.nan


def scores_macros(scores: dict[str, dict], questions, prefix: str, score_name: str) -> dict[str, str]:
    """The questions' macros from scores that are not run folders (the lab-loss screen's records)."""
    m = {f"{prefix}ScoreName": score_name}
    for q in questions:
        found = compare_scores(scores, {}, q)
        m.update(
            {
                f"{prefix}{q.key}Case": question_case(found),
                f"{prefix}{q.key}Comparisons": " ".join(sentence(c) for c in found),
            }
        )
    return m


def design_macros(runs, prefix: str = "") -> dict[str, str]:
    """How the runs' short-rollout score was made (start points, frames, draws), as most runs recorded it, and
    each score's spread over seeds (pooled within strategies): which of the two is steadier."""
    sd = {k: pooled_sd([[r.number(k) for r in rs] for rs in group(runs).values()]) for k in (PRIMARY, LAB)}
    out = {
        f"{prefix}SeedSDShort": f"{sd[PRIMARY]:.2f}" if math.isfinite(sd[PRIMARY]) else NA,
        f"{prefix}SeedSDLong": f"{sd[LAB]:.2f}" if math.isfinite(sd[LAB]) else NA,
        f"{prefix}SteadierCase": "unknown"
        if not all(math.isfinite(v) for v in sd.values())
        else "short"
        if sd[PRIMARY] < sd[LAB]
        else "lab",
    }
    for macro, field in (
        ("ShortStarts", "short_starts"),
        ("ShortFrames", "short_horizon"),
        ("ShortDraws", "short_draws"),
    ):
        seen = [r.number(field) for r in runs]
        seen = [int(v) for v in seen if math.isfinite(v)]
        out[f"{prefix}{macro}"] = str(max(set(seen), key=seen.count)) if seen else NA
    return out


CORRELATION_CASES = ("shared", "little", "opposed", "unknown")
SHARED = 0.3  # a correlation beyond this, either sign, is what the report calls a shared or opposed seed


def correlation_case(rho: float) -> str:
    """Whether a seed's luck is shared by the two sides of a comparison (pairing then removes it), hardly at
    all, or opposed (a seed that helps one side hurts the other: pairing removes nothing)."""
    if not math.isfinite(rho):
        return "unknown"
    return "shared" if rho >= SHARED else "opposed" if rho <= -SHARED else "little"


def question_macros(runs, questions, prefix: str = "") -> dict[str, str]:
    """Per question (its key K): ``<prefix>KCase``, ``<prefix>KTitle``, ``<prefix>KComparisons`` (the
    sentences on the primary score, or on the lab's where the runs have no primary score) and
    ``<prefix>KLabComparisons`` (on the lab's 630-frame score); plus the score's name and the seeds'
    correlation."""
    key = PRIMARY if has_score(runs, PRIMARY) else LAB
    # main.tex asks the lab's questions by key: a folder whose grid asked others still gets those
    questions = tuple({**{q.key: q for q in LAB_QUESTIONS}, **{q.key: q for q in questions}}.values())
    rho = seed_correlation(runs, questions, key)
    m = {
        **design_macros(runs, prefix),
        f"{prefix}ScoreName": NAMES[key],
        f"{prefix}ScoreIsPrimary": "yes" if key == PRIMARY else "no",
        f"{prefix}SeedCorrelation": f"{rho:.2f}".replace("-", "$-$") if math.isfinite(rho) else NA,
        f"{prefix}SeedCorrelationCase": correlation_case(rho),
        f"{prefix}TargetDB": f"{TARGET_DB:g}",
    }
    for q in questions:
        main, lab = compare(runs, q, key), compare(runs, q, LAB)
        gone = len({name for c in main for name in c.diverged})
        m.update(
            {
                f"{prefix}{q.key}Case": question_case(main),
                f"{prefix}{q.key}Title": tex_escape(q.title),
                f"{prefix}{q.key}Comparisons": " ".join(sentence(c) for c in main),
                f"{prefix}{q.key}LabComparisons": " ".join(sentence(c) for c in lab),
                f"{prefix}{q.key}LabCase": question_case(lab),
                f"{prefix}{q.key}Diverged": str(gone),
                f"{prefix}{q.key}SeedsForTarget": str(n) if (n := seeds_for(main)) else NA,
            }
        )
    return m


def table_rows(runs, questions) -> str | None:
    """The comparisons table's body: each comparison on the primary score and on the lab's."""
    keys = [k for k in (PRIMARY, LAB) if has_score(runs, k)]
    lines = []
    for q in questions:
        for key in keys:
            for c in compare(runs, q, key):
                iv = c.iv
                cells = [
                    f"{_name(c.strategy)} $-$ {_name(q.reference)}",
                    NAMES[key],
                    str(iv.n) if iv else "--",
                    f"{iv.diff:+.2f}".replace("-", "$-$") if iv else "--",
                    f"[{iv.lo:.2f}, {iv.hi:.2f}]".replace("-", "$-$") if iv else "--",
                    f"{100 * iv.level:.3g}" if iv else "--",
                    p_text(iv.p_holm if iv.p_holm is not None else iv.p) if iv else "--",
                    {"better": "higher", "worse": "lower", "notdist": "not distinguishable"}.get(
                        c.verdict, c.verdict
                    ),
                    f"{c.detect:.1f}" if math.isfinite(c.detect) else "--",
                ]
                lines.append(" & ".join(cells) + r" \\")
    return "\n".join(lines) + "\n" if lines else None
