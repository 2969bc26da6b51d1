"""The mechanism's figure: per schedule, the KL per frame and the gradient norm over epoch 1's iterations,
the mean over seeds with a min-max band, where the measures in measures.py are read off."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab4 import plots
from lab4.report.format import display_name
from lab4.report.loss.dynamics import frames_per_clip
from lab4.report.mechanism.measures import FIRST_EPOCH, KL_NATS, QUESTION, by_schedule
from lab4.run.folder import RunDir

STEM = "mechanism"


def epoch_one(run: RunDir, col: str, scale: float = 1.0) -> pd.Series | None:
    """Column ``col`` over epoch 1's iterations (indexed by iteration), divided by ``scale``."""
    it = run.iter_metrics()
    if col not in it or not len(it):
        return None
    rows = it[pd.to_numeric(it["epoch"], errors="coerce") == FIRST_EPOCH]
    values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float) / scale
    return pd.Series(values, index=rows["iter"].to_numpy(), name=run.name)


def mechanism_figure(runs, figures_dir) -> list[Path]:
    """``mechanism.pdf`` and ``.png`` in ``figures_dir``; [] without runs of the KL question's schedules."""
    names = (QUESTION.reference, *QUESTION.compare)
    present = by_schedule(runs)
    if not present:
        return []
    fig, (a, b) = plots.figure(1, 2, height=1.9, width=plots.TEXT_WIDTH_IN * plots.SHOWN["mechanism"])
    kl_all, grad_all, clips = [], [], set()
    for i, s in enumerate(n for n in names if n in present):
        rs = [r for r in runs if r.strategy == s]
        color = plots.color_for(s, i)
        kl = [epoch_one(r, "kl", frames_per_clip(r)) for r in rs]
        grad = [epoch_one(r, "grad_norm") for r in rs]
        kl_all += [v for x in kl if x is not None for v in x]
        grad_all += [v for x in grad if x is not None for v in x]
        plots.band_plot(a, kl, color, display_name(s))
        plots.band_plot(b, grad, color, display_name(s))
        clips |= {m.clip for m in present[s] if m.clip > 0}
    a.axhline(KL_NATS, **plots.BASELINE_STYLE, label=f"{KL_NATS:g} nat")
    for clip in sorted(clips):
        b.axhline(clip, color="0.3", ls=":", lw=1.0, label=f"clip at {clip:g}")
    plots.log_if_wide(a, kl_all)
    plots.log_if_wide(b, grad_all)
    a.set(xlabel="iteration of epoch 1", ylabel="KL per predicted frame (nats)", title="KL")
    b.set(xlabel="iteration of epoch 1", ylabel="gradient norm before clipping", title="gradient norm")
    # one legend below both panels: inside, it would cover the first iterations, where the curves differ
    handles, labels = a.get_legend_handles_labels()
    more = [(h, lab) for h, lab in zip(*b.get_legend_handles_labels()) if lab not in labels]
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(
        handles + [h for h, _ in more],
        labels + [lab for _, lab in more],
        loc="lower center",
        ncol=len(labels) + len(more),
        fontsize=7,
        frameon=False,
    )
    return plots.save(fig, Path(figures_dir) / STEM)
