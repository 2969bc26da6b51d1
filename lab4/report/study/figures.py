"""The longer-budget section's figures, from the study's runs (results/study/), each as PDF and PNG.

The section also has the report's own PSNR-per-frame figure (lab4.report.figures.curves.psnr_per_frame) of
the KL schedules; the ones here are per epoch, which the quick grid cannot show: it validates once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lab4 import plots
from lab4.report.figures import curves
from lab4.report.format import display_name
from lab4.report.loss.dynamics import frames_per_clip, latent_units
from lab4.report.study.roles import Roles
from lab4.run.folder import RunDir, group
from lab4.schedules import KL_STRATEGIES

FIGURES = ("study_val_psnr", "study_collapse", "psnr_per_frame")  # and the extra grid's two
QUIRK_COLORS = {"LrLate": "0.15", "Leaky": "C4", "Held": "C6"}  # by macro key (lab4.report.study.roles)
REFERENCE_COLOR = "C5"  # Monotonic trained as long as a quirk, where that is not the study's own Monotonic


def quirk_colors(roles: Roles) -> dict[str, str]:
    """{run: colour} of the quirk runs and their references, each reference before its quirks."""
    out = {}
    for key, (q, ref) in roles.quirks.items():
        if q is not None:
            out.setdefault(ref, plots.color_for(ref) if ref in KL_STRATEGIES else REFERENCE_COLOR)
            out[q] = QUIRK_COLORS[key]
    return out


def epoch_series(run: RunDir, col: str, scale: float = 1.0) -> pd.Series | None:
    """Column ``col`` of the epoch rows (divided by ``scale``), by 1-based epoch; None without it."""
    ep = run.epoch_metrics()
    if col not in ep or not len(ep):
        return None
    ep = ep.assign(v=pd.to_numeric(ep[col], errors="coerce")).dropna(subset=["v"])
    return pd.Series(ep["v"].to_numpy(float) / scale, index=ep["epoch"].to_numpy() + 1, name=run.name)


def _milestones(ax, runs) -> None:
    """The lr drops of the lab's schedule, as grey verticals at the start of the epoch they take effect."""
    ms = runs[0].config().get("milestones") if runs else None
    for m in ms or ():
        ax.axvline(m + 0.5, color="0.75", lw=0.8, ls="-.", zorder=0)


def val_psnr_panel(ax, g: dict, names, roles: Roles, colors: dict, title: str) -> None:
    """Validation PSNR after every epoch of the runs ``names`` of ``g`` (by strategy), against the copy."""
    base = [
        v
        for s in names
        for r in g[s]
        for v in r.epoch_metrics().get("baseline_psnr", [])
        if r.strategy in KL_STRATEGIES
    ]
    for s in names:
        plots.band_plot(
            ax,
            [epoch_series(r, "val_psnr") for r in g[s]],
            colors.get(s) or plots.color_for(s),
            roles.label(s),
            marker="o",
            ms=2.5,
        )
    _milestones(ax, [r for s in names for r in g[s]])
    base_v = [v for v in base if np.isfinite(v)]
    if base_v:
        ax.axhline(float(np.mean(base_v)), **plots.BASELINE_STYLE, label="repeat first frame")
    if not names:
        plots.empty(ax, "no runs")
    ax.set(xlabel="epoch", ylabel="validation PSNR (dB)", title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=6, frameon=False)  # under it


def study_val_psnr(runs, figures_dir, roles: Roles) -> list[Path]:
    """Validation PSNR after every epoch of the three KL schedules."""
    fig, ax = plots.figure(1, 1, height=2.6)
    g = group(runs)
    val_psnr_panel(ax, g, [s for s in KL_STRATEGIES if s in g], roles, {}, "KL annealing schedules")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "study_val_psnr")


def quirks_val_psnr(extra_runs, figures_dir, roles: Roles) -> list[Path]:
    """Validation PSNR after every epoch of each quirk and its Monotonic reference (the extra grid): one panel
    per run length, since a 3-epoch run beside a 6-epoch one reads as a run that stopped."""
    g, colors = group(list(extra_runs)), quirk_colors(roles)
    names = [s for s in dict.fromkeys(("monotonic", *colors)) if s in g]
    lengths = sorted({_epochs_of(g[s]) for s in names}, reverse=True) or [0]
    fig, axes = plots.figure(1, len(lengths), height=2.6, squeeze=False)
    for ax, n in zip(axes[0], lengths):
        these = [s for s in names if _epochs_of(g[s]) == n]
        val_psnr_panel(ax, g, these, roles, {s: c for s, c in colors.items() if s not in KL_STRATEGIES},
                       f"{n} epochs, each quirk against Monotonic")  # fmt: skip
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "quirks_val_psnr")


def _epochs_of(runs) -> int:
    return max((int(r.config().get("num_epoch", 0) or 0) for r in runs), default=0)


def study_collapse(runs, figures_dir) -> list[Path]:
    """KL per predicted frame (epoch mean) and, where any run has one, active latent units per schedule: a
    panel of zeros says less than the report's sentence that no unit became active."""
    g = {s: rs for s, rs in group(runs).items() if s in KL_STRATEGIES}
    au = {s: [epoch_series(r, "active_units", latent_units(r) / 100) for r in rs] for s, rs in g.items()}
    au_max = max((float(x.max()) for xs in au.values() for x in xs if x is not None and len(x)), default=0.0)
    fig, axes = plots.figure(1, 2 if au_max > 0 else 1, height=2.3, squeeze=False)
    a, b = axes[0][0], (axes[0][1] if au_max > 0 else None)
    kl_all = []
    for i, (s, rs) in enumerate(g.items()):
        kl = [epoch_series(r, "kl", frames_per_clip(r)) for r in rs]
        kl_all += [v for k in kl if k is not None for v in k]
        plots.band_plot(a, kl, plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
        if b is not None:
            plots.band_plot(b, au[s], plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
    plots.log_if_wide(a, kl_all)
    a.set(xlabel="epoch", ylabel="KL per frame (nats)", title="KL, epoch mean")
    a.legend(fontsize=6)
    if b is not None:
        b.set(xlabel="epoch", ylabel="active units (%)", title="variance of the posterior mean > 0.01")
        b.set_ylim(-0.05 * au_max, 1.1 * au_max)
        b.legend(fontsize=6)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "study_collapse")


def study_real(runs, figures_dir, roles: Roles, first: int = 30) -> list[Path]:
    """The real-footage run's PSNR per frame against repeat-the-first-frame: the rollout, and its start (the
    lab's loss where it finished, else the report's balance, as the section's verdict)."""
    fig, (a, b) = plots.figure(1, 2, height=2.2, gridspec_kw=dict(width_ratios=[2, 1]))
    by = {r.name: r for r in runs if r.psnr() is not None}
    run = next((by[n] for n in (roles.real, roles.real_mean) if n in by), None)
    psnr = run.psnr() if run is not None else None
    if psnr is None:
        for ax in (a, b):
            plots.empty(ax, "no real-footage run")
    else:
        for ax, rows in ((a, psnr), (b, psnr[psnr["frame"] <= first])):
            ax.plot(rows["frame"], rows["baseline_psnr"], **plots.BASELINE_STYLE, label="repeat first frame")
            ax.plot(rows["frame"], rows["psnr"], color=plots.color_for("monotonic"), lw=0.9, label="model")
            ax.set(xlabel="frame index")
        loss = "the lab's loss" if run.name == roles.real else "KL averaged"
        a.set(ylabel="PSNR (dB)", title=f"real footage ({loss}), {len(psnr)} frames")
        b.set(title=f"the first {first} frames")
        a.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "study_real")


def make_figures(runs, figures_dir, roles: Roles) -> dict[str, list[Path]]:
    """figures/study/* from the study's runs (nothing without them)."""
    if not runs:
        return {}
    figures_dir = Path(figures_dir)
    runs = [r for r in runs if not r.diverged()]  # a run that stopped early would cut every band short
    kl = [r for r in runs if r.strategy in KL_STRATEGIES]
    return {
        "study_val_psnr": study_val_psnr(runs, figures_dir, roles),
        "study_collapse": study_collapse(runs, figures_dir),
        "psnr_per_frame": curves.psnr_per_frame(kl, figures_dir),
    }


def extra_figures(extra_runs, figures_dir, roles: Roles) -> dict[str, list[Path]]:
    """figures/study/ quirks_val_psnr and study_real from the extra grid's runs (nothing without them)."""
    if not extra_runs:
        return {}
    return {
        "quirks_val_psnr": quirks_val_psnr(extra_runs, Path(figures_dir), roles),
        "study_real": study_real(list(extra_runs), Path(figures_dir), roles),
    }
