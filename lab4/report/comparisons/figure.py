"""The questions' comparisons as one picture: each difference with its interval at the level its Holm step was
tested at, on both scores, beside the smallest difference the design would have found."""

from __future__ import annotations

import math
from pathlib import Path

from lab4.plots import figure, save
from lab4.report.comparisons.questions import compare
from lab4.report.comparisons.scores import LAB, NAMES, PRIMARY, has_score
from lab4.report.format import display_name

STEM = "comparisons"


def draw(runs, questions, figures_dir) -> list[Path]:
    """comparisons.pdf/.png: one panel per score, one row per comparison; a filled marker where the verdict is
    a difference, a grey bar for the detectable difference on either side of zero. [] without a test."""
    keys = [k for k in (PRIMARY, LAB) if has_score(runs, k)]
    found = {k: [c for q in questions for c in compare(runs, q, k)] for k in keys}
    if not any(c.iv for cs in found.values() for c in cs):
        for ext in ("pdf", "png"):  # an earlier build's figure would show tests these runs do not have
            (Path(figures_dir) / f"{STEM}.{ext}").unlink(missing_ok=True)
        return []
    rows = max(len(cs) for cs in found.values())
    fig, axes = figure(1, len(keys), height=0.55 * rows + 1.0, squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        for y, c in enumerate(found[key]):
            if math.isfinite(c.detect):
                ax.barh(y, 2 * c.detect, left=-c.detect, height=0.5, color="0.9", zorder=0)
            if c.iv is None:
                continue
            differs = c.verdict in ("better", "worse")
            ax.errorbar(
                c.iv.diff,
                y,
                xerr=[[c.iv.diff - c.iv.lo], [c.iv.hi - c.iv.diff]],
                fmt="o",
                color="k",
                mfc="k" if differs else "w",
                capsize=3,
                lw=1.2,
            )
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_title(NAMES[key], fontsize=9)
        ax.set_xlabel("difference (dB)")
    labels = [f"{display_name(c.strategy)} $-$ {display_name(c.question.reference)}" for c in found[keys[0]]]
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    return save(fig, Path(figures_dir) / STEM)
