"""Each run's score for a comparison, with a run that diverged counted instead of dropped.

Dropping a diverged run would make a strategy that diverges look better than it is. Such a run scores as
the copy baseline (repeat the start frame), the score of a model that learned nothing, and the report
says how many runs were counted that way.
"""

from __future__ import annotations

import math

import numpy as np

from lab4.run.folder import group

PRIMARY = "short_psnr"  # lab4/short_rollouts.py: 16 short rollouts, two z draws each
LAB = "mean_psnr"  # the lab's 630-frame rollout PSNR
BASELINE = {PRIMARY: "short_baseline_psnr", LAB: "baseline_mean_psnr"}
NAMES = {PRIMARY: "short-rollout score", LAB: "630-frame score"}


def has_score(runs, key: str) -> bool:
    return any(math.isfinite(r.number(key)) for r in runs)


def diverged(run) -> bool:
    return bool(run.diverged())


def baseline_score(runs, key: str) -> float:
    """The copy baseline's score on these runs' validation video (the median over runs: one video)."""
    values = [r.number(BASELINE[key]) for r in runs]
    values = [v for v in values if math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def scores_by_strategy(runs, key: str) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """({strategy: {seed: score}}, {strategy: names of its runs that diverged}). A diverged run scores as
    the copy baseline; a run with neither a score nor a divergence (unfinished) is left out."""
    floor = baseline_score(runs, key)
    scores, gone = {}, {}
    for s, rs in group(runs).items():
        by_seed = {}
        for r in rs:
            seed = r.config().get("seed", r.name)
            if diverged(r):
                gone.setdefault(s, []).append(r.name)
                if math.isfinite(floor):
                    by_seed[seed] = floor
            elif math.isfinite(v := r.number(key)):
                by_seed[seed] = v
        if by_seed:
            scores[s] = by_seed
    return scores, gone


def pooled_sd(groups) -> float:
    """The pooled within-group standard deviation (each group's deviations from its own mean)."""
    dev, dof = 0.0, 0
    for g in groups:
        g = np.asarray([x for x in g if x is not None and math.isfinite(x)], float)
        if len(g) > 1:
            dev += float(((g - g.mean()) ** 2).sum())
            dof += len(g) - 1
    return math.sqrt(dev / dof) if dof else math.nan
