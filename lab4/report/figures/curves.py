"""The report's figures drawn from the runs' numbers: training curves per iteration (loss, MSE, KL, beta,
teacher forcing, collapse) and validation PSNR (per strategy, per epoch, per frame).

Training curves are per iteration (a rolling mean over SMOOTH iterations, epoch boundaries dotted):
epoch means hide what happens inside an epoch, such as a cyclical reset of beta.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lab4 import plots
from lab4.report.format import display_name
from lab4.report.loss.dynamics import ACTIVE_THRESHOLD, active_units_of, frames_per_clip, latent_units
from lab4.report.stats import welch_diff
from lab4.run.folder import RunDir, group
from lab4.schedules import KL_STRATEGIES

SMOOTH = 25  # iterations in the centred rolling mean of a per-iteration curve


# -- per-iteration series -------------------------------------------------------------------------
def _per_iter(run: RunDir, col: str, smooth: int = SMOOTH) -> pd.Series | None:
    """A logged column per iteration, indexed by fractional epoch; the KL in nats per predicted frame."""
    it = run.iter_metrics()
    if col not in it or not len(it):
        return None
    v = pd.to_numeric(it[col], errors="coerce") / (frames_per_clip(run) if col == "kl" else 1)
    s = pd.Series(v.to_numpy(), index=it["progress"].to_numpy(), name=run.name)
    return (
        s.rolling(max(1, min(smooth, len(s) // 10)), center=True, min_periods=1).mean() if smooth > 1 else s
    )


def _kl_share(run: RunDir, smooth: int = SMOOTH) -> pd.Series | None:
    """The share of the loss that is the weighted KL, (loss - MSE) / loss, per iteration: where it is small,
    the loss and the MSE curves are the same curve."""
    loss, mse = _per_iter(run, "loss", smooth), _per_iter(run, "mse", smooth)
    if loss is None or mse is None:
        return None
    return ((loss - mse) / loss).rename(run.name)


def _epochs(runs) -> int:
    return max((int(r.config().get("num_epoch", 0) or 0) for r in runs), default=0)


def _kl_groups(runs):
    g = group(runs)
    kl = {s: rs for s, rs in g.items() if s in KL_STRATEGIES}
    return kl or g


def _tf_groups(runs):
    """The teacher-forcing variants with the KL run whose schedule they share (its ratio decays) first."""
    g = group(runs)
    tf = {s: rs for s, rs in g.items() if s.startswith("tf")}
    kl_of_tf = {str(r.config().get("kl_anneal_type", "")).lower() for rs in tf.values() for r in rs}
    if len(kl_of_tf) == 1 and (ref := kl_of_tf.pop()) in g:
        tf = {ref: g[ref], **tf}
    return tf or g


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def loss_curves(runs, figures_dir) -> list[Path]:
    """The weighted KL's share of the loss, MSE, KL and beta per iteration for Monotonic, Cyclical and None
    (mean over seeds, band): the share, not the total, since the total is the MSE where the share is small."""
    fig, axes = plots.figure(
        2, 2, height=2.45, width=plots.TEXT_WIDTH_IN * plots.SHOWN["loss_curves"], sharex=True
    )
    axes = axes.ravel()
    groups = _kl_groups(runs)
    panels = (
        ("share", r"share of $\beta\,$KL in the loss"),
        ("mse", "MSE (summed over the predicted frames)"),
        ("kl", "KL (nats per predicted frame)"),
        ("beta", r"KL weight $\beta$"),
    )
    for ax, (col, title) in zip(axes, panels):
        vals = []
        for i, (s, rs) in enumerate(groups.items()):
            ser = [
                _kl_share(r) if col == "share" else _per_iter(r, col, smooth=1 if col == "beta" else SMOOTH)
                for r in rs
            ]
            plots.band_plot(ax, ser, plots.color_for(s, i), f"{display_name(s)} ({_seeds(len(rs))})", lw=1.0)
            vals += [v for x in ser if x is not None for v in x.dropna().tolist()]
        if not vals:
            plots.empty(ax, f"no {col} per iteration in these runs")
        elif col not in ("beta", "share"):
            plots.log_if_wide(ax, vals)
        plots.epoch_lines(ax, _epochs(runs))
        ax.set(title=title)
    for ax in axes[2:]:
        ax.set(xlabel="epoch")
    axes[0].legend(loc="best", fontsize=7)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "loss_curves")


def beta_curves(runs, figures_dir) -> list[Path]:
    """The KL weight beta at every iteration against fractional epoch, one panel per strategy."""
    groups = _kl_groups(runs)
    fig, axes = plots.figure(1, max(1, len(groups)), height=1.6, sharey=True, squeeze=False)
    axes = axes[0]
    for i, (ax, (s, rs)) in enumerate(zip(axes, groups.items())):
        it = rs[0].iter_metrics()
        ax.plot(it["progress"], it["beta"], color=plots.color_for(s, i), lw=1.2)
        ax.set(xlabel="epoch", title=display_name(s), ylim=(-0.05, 1.08))
    axes[0].set_ylabel(r"$\beta$")
    if not groups:
        plots.empty(axes[0], "no runs")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "beta_curves")


def tfr_vs_loss(runs, figures_dir) -> list[Path]:
    """Loss per iteration of each teacher-forcing schedule (left) with its ratio on a twin axis (right)."""
    fig, ax = plots.figure(height=1.55, width=plots.TEXT_WIDTH_IN * plots.SHOWN["tfr_vs_loss"])
    ax2 = ax.twinx()
    vals = []
    for i, (s, rs) in enumerate(_tf_groups(runs).items()):
        c = plots.color_for(s, i)
        ser = [_per_iter(r, "loss") for r in rs]
        plots.band_plot(ax, ser, c, f"{display_name(s)} loss", lw=1.0)
        vals += [v for x in ser if x is not None for v in x.tolist()]
        ratio = _per_iter(rs[0], "tfr", smooth=1)
        if ratio is not None:
            ax2.plot(
                ratio.index, ratio.to_numpy(), color=c, ls="--", lw=1.4, label=f"{display_name(s)} ratio"
            )
    plots.log_if_wide(ax, vals)
    plots.epoch_lines(ax, _epochs(runs))
    ax.set(xlabel="epoch", ylabel="training loss")
    ax2.set_ylabel("teacher-forcing ratio")
    ax2.set_ylim(-0.05, 1.05)
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", ncol=2, fontsize=7)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "tfr_vs_loss")


def collapse(runs, figures_dir) -> list[Path]:
    """KL in nats per predicted frame per iteration; beside it the active latent units, only where any are."""
    groups = _kl_groups(runs)
    counts = {s: [active_units_of(r) for r in rs] for s, rs in group(runs).items()}
    any_active = any(np.isfinite(a) and a > 0 for au in counts.values() for a in au)
    fig, axes = plots.figure(1, 2 if any_active else 1, height=2.3, squeeze=False)
    ax = axes[0, 0]
    vals = []
    for i, (s, rs) in enumerate(groups.items()):
        ser = [_per_iter(r, "kl") for r in rs]
        plots.band_plot(ax, ser, plots.color_for(s, i), display_name(s), lw=1.0)
        vals += [v for x in ser if x is not None for v in x.dropna().tolist()]
    if vals:
        plots.log_if_wide(ax, vals)
        ax.legend(loc="best", fontsize=7)
    else:
        plots.empty(ax, "no KL per iteration in these runs")
    plots.epoch_lines(ax, _epochs(runs))
    ax.set(xlabel="epoch", ylabel="KL (nats per frame)")
    if any_active:
        ax2 = axes[0, 1]
        rs_of = group(runs)
        for i, (s, au) in enumerate(counts.items()):
            pct = [100 * a / latent_units(r) for a, r in zip(au, rs_of[s]) if np.isfinite(a)]
            if pct:
                ax2.bar(i, np.mean(pct), color=plots.color_for(s, i), alpha=0.8)
                ax2.plot([i] * len(pct), pct, "k.", ms=4)
        ax2.set_xticks(range(len(counts)), [display_name(s) for s in counts], rotation=30, ha="right")
        ax2.set(ylabel="active units (%)", title=f"variance of the posterior mean > {ACTIVE_THRESHOLD:g}")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "collapse")


def val_psnr(runs, figures_dir) -> list[Path]:
    """Every run's validation PSNR as a dot, per strategy, with the mean and its t interval over seeds (the
    report's test, lab4.report.stats, one-sample)."""
    fig, ax = plots.figure(height=2.0)
    base, names = [], []
    for i, (s, rs) in enumerate(group(runs).items()):
        v = np.array([r.number("mean_psnr") for r in rs], float)
        v = v[np.isfinite(v)]
        names.append(display_name(s))
        base += [b for r in rs if np.isfinite(b := r.number("baseline_mean_psnr"))]
        if not len(v):
            continue
        c = plots.color_for(s, i)
        ax.plot(i + np.linspace(-0.12, 0.12, len(v)), v, "o", color=c, ms=4, alpha=0.7, mec="none")
        iv = welch_diff(v)  # None with one seed: no interval
        yerr = None if iv is None else [[iv.diff - iv.lo], [iv.hi - iv.diff]]
        ax.errorbar(i + 0.3, v.mean(), yerr=yerr, fmt="D", color=c, ms=4, capsize=3, lw=1.2)
        ax.annotate(f"{v.mean():.1f}", (i + 0.36, v.mean()), fontsize=7, va="center")
    if base:
        ax.axhline(float(np.mean(base)), **plots.BASELINE_STYLE, label="repeat first frame")
        ax.legend(loc="lower right", fontsize=7)
    if not names:
        plots.empty(ax, "no runs")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.5, len(names) - 0.2)
    ax.set(ylabel="validation PSNR (dB)")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "val_psnr")


def val_psnr_per_epoch(runs, figures_dir) -> list[Path]:
    """Mean validation PSNR at every validation point, for runs that validate after several epochs."""
    fig, ax = plots.figure(height=2.4)
    base = []
    for i, (s, rs) in enumerate(group(runs).items()):
        ser = []
        for r in rs:
            ep = r.epoch_metrics().dropna(subset=["val_psnr"])
            ser.append(
                (ep.set_index("epoch")["val_psnr"]).set_axis(ep["epoch"].to_numpy() + 1).rename(r.name)
            )
            base += ep["baseline_psnr"].dropna().tolist()
        plots.band_plot(ax, ser, plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
    if base:
        ax.axhline(float(np.mean(base)), **plots.BASELINE_STYLE, label="repeat first frame")
    ax.set(xlabel="epoch", ylabel="validation PSNR (dB)")
    ax.legend(loc="lower right", ncol=2, fontsize=7)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "val_psnr_per_epoch")


def psnr_per_frame(runs, figures_dir) -> list[Path]:
    """PSNR along the validation video, one small panel per strategy (mean over seeds, min-max band), each
    with the repeat-the-first-frame baseline, on one shared scale."""
    groups = {s: [r for r in rs if r.psnr() is not None] for s, rs in group(runs).items()}
    groups = {s: rs for s, rs in groups.items() if rs}
    cols = 2 if len(groups) > 1 else 1
    nrows = max(1, math.ceil(len(groups) / cols))
    fig, axes = plots.figure(
        nrows, cols, height=0.85 * nrows + 0.45, width=plots.TEXT_WIDTH_IN * plots.SHOWN["psnr_per_frame"],
        sharex=True, sharey=True, squeeze=False,
    )  # fmt: skip
    for ax, (i, (s, rs)) in zip(axes.ravel(), enumerate(groups.items())):
        ser = [r.psnr().set_index("frame")["psnr"].rename(r.name) for r in rs]
        base = rs[0].psnr()
        ax.plot(base["frame"], base["baseline_psnr"], **plots.BASELINE_STYLE, label="repeat first frame")
        plots.band_plot(ax, ser, plots.color_for(s, i), "mean over seeds" if len(rs) > 1 else "model", lw=0.9)
        mean = np.mean([r.number("mean_psnr") for r in rs])
        ax.set_title(f"{display_name(s)}: {mean:.2f} dB ({_seeds(len(rs))})")
    for ax in axes.ravel()[len(groups) :]:
        ax.set_visible(False)
    if not groups:
        plots.empty(axes[0, 0], "no psnr_per_frame.csv in these runs")
    for ax in axes[-1]:
        ax.set(xlabel="frame index")
    for ax in axes[:, 0]:
        ax.set(ylabel="PSNR (dB)")
    top = 1.0
    if groups:  # above the panels: inside one, the legend hides the baseline's fall over the first frames
        from matplotlib.lines import Line2D  # a grey model line: each panel draws it in its strategy's colour

        handles = [Line2D([], [], **plots.BASELINE_STYLE), Line2D([], [], color="0.35", lw=0.9)]
        model = "mean over seeds" if any(len(rs) > 1 for rs in groups.values()) else "model"
        fig.legend(
            handles, ["repeat first frame", model], loc="upper center", ncol=2, fontsize=7, frameon=False
        )
        top = 1 - 0.3 / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    return plots.save(fig, Path(figures_dir) / "psnr_per_frame")
