"""The report's comparison figures, one function per figure, each written as PDF and PNG.

notebooks/03_compare.ipynb calls these on the runs of lab4.rundir.load_runs; report/main.tex includes
the PDFs by the names in FIGURES. A missing piece (no psnr_per_frame.csv, no checkpoint) gives a
figure that says what is missing instead of an exception, so one bad run never stops the others.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lab4 import plots
from lab4.report.format import display_name
from lab4.report.training import ACTIVE_THRESHOLD, active_units_of, kl_per_frame, latent_units
from lab4.rundir import RunDir, best_run, group
from lab4.schedules import KL_STRATEGIES

FIGURES = ("dataset", "loss_curves", "beta_curves", "tfr_vs_loss", "collapse", "val_psnr_per_epoch",
           "psnr_per_frame", "strip")


# -- figure helpers -----------------------------------------------------------------------------
def _stack(frames: list[pd.Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Series indexed by x -> (x, mean, min, max) over the series, on the x values they share."""
    df = pd.concat(frames, axis=1, join="inner")
    x = df.index.to_numpy(dtype=float)
    v = df.to_numpy(dtype=float)
    return x, v.mean(1), v.min(1), v.max(1)


def _band_plot(ax, series: list[pd.Series], color, label, **kw):
    """One line per strategy: a single run as is, several seeds as mean with a min-max band."""
    series = [s.dropna() for s in series if s is not None and len(s.dropna())]
    if not series:
        return False
    x, mean, lo, hi = _stack(series)
    if len(x) == 0:
        return False
    n = len(series)
    ax.plot(x, mean, color=color, label=label + (f" (mean of {n} seeds)" if n > 1 else ""), **kw)
    if n > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    return True


def _empty(ax, msg: str) -> None:
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _kl_groups(runs):
    g = group(runs)
    kl = {s: rs for s, rs in g.items() if s in KL_STRATEGIES}
    return kl or g


def _positive(ax, values) -> None:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) and (v > 0).all() and v.max() / max(v.min(), 1e-12) > 20:
        ax.set_yscale("log")


# -- the figures --------------------------------------------------------------------------------
def loss_curves(runs, figures_dir) -> list[Path]:
    """Total loss, MSE, KL and the pre-clip gradient norm per epoch for Monotonic, Cyclical and None."""
    fig, axes = plots.figure(2, 2, height=3.9, sharex=True)
    axes = axes.ravel()
    groups = _kl_groups(runs)
    panels = (("loss", "total loss"), ("mse", "MSE"), ("kl", "KL (summed over the clip, as logged)"),
              ("grad_norm", "gradient norm before clipping"))
    for ax, (col, title) in zip(axes, panels):
        vals = []
        for i, (s, rs) in enumerate(groups.items()):
            ser = [r.epoch_metrics().set_index("epoch")[col].rename(r.name) for r in rs if col in r.metrics()]
            ser = [x.set_axis(x.index + 1) for x in ser]
            if ser:
                _band_plot(ax, ser, plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
            vals += [v for x in ser for v in x.tolist()]
        if not vals:
            _empty(ax, f"no {col} in these runs")
        _positive(ax, vals)
        ax.set(title=title)
    for ax in axes[2:]:
        ax.set(xlabel="epoch")
    axes[0].set_ylabel("mean over the epoch")
    axes[2].set_ylabel("mean over the epoch")
    axes[0].legend(loc="best")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "loss_curves")


def beta_curves(runs, figures_dir) -> list[Path]:
    """The KL weight beta at every iteration against fractional epoch, one panel per strategy."""
    groups = _kl_groups(runs)
    fig, axes = plots.figure(1, max(1, len(groups)), height=1.9, sharey=True, squeeze=False)
    axes = axes[0]
    for i, (ax, (s, rs)) in enumerate(zip(axes, groups.items())):
        it = rs[0].iter_metrics()
        ax.plot(it["progress"], it["beta"], color=plots.color_for(s, i), lw=1.2)
        ax.set(xlabel="epoch (fractional)", title=display_name(s), ylim=(-0.05, 1.08))
    axes[0].set_ylabel(r"$\beta$")
    if not groups:
        _empty(axes[0], "no runs")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "beta_curves")


def tfr_vs_loss(runs, figures_dir) -> list[Path]:
    """Per-epoch loss (left, log) with the teacher-forcing ratio on a twin axis (right)."""
    g = group(runs)
    tf = {s: rs for s, rs in g.items() if s.startswith("tf")}
    # the teacher-forcing variants share one KL schedule; the KL run with that schedule is their
    # decaying-ratio reference, so it is drawn with them
    kl_of_tf = {str(r.config().get("kl_anneal_type", "")).lower() for rs in tf.values() for r in rs}
    if len(kl_of_tf) == 1 and (ref := kl_of_tf.pop()) in g:
        tf = {ref: g[ref], **tf}
    tf = tf or g
    fig, ax = plots.figure(height=2.5)
    ax2 = ax.twinx()
    vals = []
    for i, (s, rs) in enumerate(tf.items()):
        c = plots.color_for(s, i)
        ser = [r.epoch_metrics().set_index("epoch")["loss"].rename(r.name) for r in rs]
        ser = [x.set_axis(x.index + 1) for x in ser]
        _band_plot(ax, ser, c, f"{display_name(s)} loss", marker="o", ms=2.5)
        vals += [v for x in ser for v in x.tolist()]
        ep = rs[0].epoch_metrics()
        ax2.plot(ep["epoch"] + 1, ep["tfr"], color=c, ls=":", lw=1.4, drawstyle="steps-mid",
                 label=f"{display_name(s)} ratio")
    _positive(ax, vals)
    ax.set(xlabel="epoch", ylabel="training loss (per epoch)")
    ax2.set_ylabel("teacher-forcing ratio")
    ax2.set_ylim(-0.05, 1.05)
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", ncol=2, fontsize=7)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "tfr_vs_loss")


def val_psnr_per_epoch(runs, figures_dir) -> list[Path]:
    """Mean validation PSNR after each epoch for every strategy, with the baseline."""
    fig, ax = plots.figure(height=2.4)
    base = []
    for i, (s, rs) in enumerate(group(runs).items()):
        ser = []
        for r in rs:
            ep = r.epoch_metrics().dropna(subset=["val_psnr"])
            ser.append((ep.set_index("epoch")["val_psnr"]).set_axis(ep["epoch"].to_numpy() + 1).rename(r.name))
            base += ep["baseline_psnr"].dropna().tolist()
        _band_plot(ax, ser, plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
    if base:
        ax.axhline(float(np.mean(base)), **plots.BASELINE_STYLE, label="repeat first frame")
    ax.set(xlabel="epoch", ylabel="validation PSNR (dB)")
    ax.legend(loc="best", ncol=2)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "val_psnr_per_epoch")


def psnr_per_frame(runs, figures_dir) -> list[Path]:
    """PSNR against frame index on the validation video: every strategy and the baseline."""
    fig, ax = plots.figure(height=2.6)
    baseline = None
    for i, (s, rs) in enumerate(group(runs).items()):
        with_psnr = [r for r in rs if r.psnr() is not None]
        ser = [r.psnr().set_index("frame")["psnr"].rename(r.name) for r in with_psnr]
        mean = np.mean([r.number("mean_psnr") for r in with_psnr]) if with_psnr else math.nan
        _band_plot(ax, ser, plots.color_for(s, i), f"{display_name(s)} ({mean:.2f} dB)", lw=1.0)
        if baseline is None and with_psnr:
            baseline = with_psnr[0].psnr()
    if baseline is not None:
        ax.plot(baseline["frame"], baseline["baseline_psnr"], **plots.BASELINE_STYLE,
                label=f"repeat first frame ({baseline['baseline_psnr'].mean():.2f} dB)")
        ax.legend(loc="upper right", ncol=2, fontsize=7)
    else:
        _empty(ax, "no psnr_per_frame.csv in these runs")
    ax.set(xlabel="frame index", ylabel="PSNR (dB)")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "psnr_per_frame")


def _val_split(run: RunDir):
    """The validation split of the dataset ``run`` trained on, or None when it is not on this machine."""
    from lab4.datasets.official import default_synth_root, load_split
    root = run.config().get("data_root") or ""
    if root:
        root = Path(root)
    else:
        root = default_synth_root(run.config().get("synth_preset", "small"))
        if not (root / "synthdance.json").is_file():
            return None
    if not root.is_dir():
        return None
    return load_split(root, "val", run.config().get("frame_H", 32), run.config().get("frame_W", 64), progress=False)


def _rollout(run: RunDir):
    """(ground truth uint8, prediction float) of a fresh validation rollout, or None if impossible."""
    if not (run.path / RunDir.LAST).is_file() or not run.config():
        return None
    from lab4.evaluate import validate
    from lab4.train import load_trained
    val = _val_split(run)
    if val is None:
        return None
    model, cfg = load_trained(run.path, device="cpu")
    res = validate(model, val, seed=cfg.seed)
    run.extra["num_val_frames"] = len(res["frame"])
    return val.frames[:len(res["pred"])], res["pred"]


def strip(runs, figures_dir, n: int = 8, rollout: bool = True) -> list[Path]:
    """Ground truth above generated frames of the best run: a fresh validation rollout from its
    checkpoint when ``rollout`` and the dataset is at hand, else the run's samples.png."""
    run = best_run(runs)
    pair = None
    try:
        pair = _rollout(run) if run is not None and rollout else None
    except Exception as e:  # a missing or foreign dataset must not stop the other figures
        print(f"strip: no fresh rollout for {run.name} ({type(e).__name__}: {e}); using samples.png")
    if pair is not None:
        img, idx = plots.strip_image(*pair, n=n)
        fig, ax = plots.figure(height=plots.TEXT_WIDTH_IN * img.shape[0] / img.shape[1] + 0.45)
        ax.imshow(img, interpolation="nearest")
        H, W = (img.shape[0] - 2) // 2, (img.shape[1] + 2) // n - 2
        ax.set_xticks([j * (W + 2) + W / 2 for j in range(n)], [str(i) for i in idx])
        ax.set_yticks([H / 2, H + 2 + H / 2], ["ground truth", "generated"])
        ax.set_xlabel("validation frame index")
    else:
        fig, ax = plots.figure(height=2.0)
        png = run.path / "samples.png" if run is not None else None
        if png is not None and png.is_file():
            import matplotlib.image as mpimg
            ax.imshow(mpimg.imread(png), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            _empty(ax, "no checkpoint and no samples.png")
    ax.grid(False)
    for sp in ax.spines.values():
        sp.set_visible(False)
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "strip")


def dataset(runs, figures_dir, n: int = 6) -> list[Path]:
    """Validation frames above their pose images, from the dataset the runs trained on."""
    val = None
    try:
        val = _val_split(runs[0]) if runs and runs[0].config() else None
    except Exception as e:  # a missing or foreign dataset must not stop the other figures
        print(f"dataset: cannot load the validation split ({type(e).__name__}: {e})")
    stem = Path(figures_dir) / "dataset"
    stem.parent.mkdir(parents=True, exist_ok=True)
    if val is None:
        fig, ax = plots.figure(height=1.5)
        _empty(ax, "the runs' dataset is not on this machine")
        return plots.save(fig, stem)
    step = max(1, min(60, (len(val) - 1) // (n - 1)))
    out = []
    for ext in ("pdf", "png"):
        plots.save_dataset_preview(stem.with_suffix(f".{ext}"), val, n=n, step=step)
        out.append(stem.with_suffix(f".{ext}"))
    return out


def collapse(runs, figures_dir) -> list[Path]:
    """Posterior collapse: KL in nats per predicted frame per epoch (left) and active latent units (right)."""
    fig, (ax, ax2) = plots.figure(1, 2, height=2.5)
    vals = []
    for i, (s, rs) in enumerate(_kl_groups(runs).items()):
        ser = [kl_per_frame(r) for r in rs]
        _band_plot(ax, ser, plots.color_for(s, i), display_name(s), marker="o", ms=2.5)
        vals += [v for x in ser for v in x.tolist()]
    if vals:
        _positive(ax, vals)
        ax.legend(loc="best", fontsize=7)
    else:
        _empty(ax, "no KL in these runs")
    ax.set(xlabel="epoch", ylabel="KL (nats per frame)", title="KL per predicted frame")
    names, known = [], False
    for i, (s, rs) in enumerate(group(runs).items()):
        au = [active_units_of(r) for r in rs]
        pct = [100 * a / latent_units(r) for a, r in zip(au, rs) if np.isfinite(a)]
        names.append(display_name(s))
        if pct:
            known = True
            ax2.bar(i, np.mean(pct), color=plots.color_for(s, i), alpha=0.8)
            ax2.plot([i] * len(pct), pct, "k.", ms=4)
            count = np.mean([a for a in au if np.isfinite(a)])
            ax2.annotate(f"{count:.0f}", (i, np.mean(pct)), textcoords="offset points", xytext=(0, 3),
                         ha="center", fontsize=7)
    if known:
        ax2.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax2.set_ylim(0, max(1.0, ax2.get_ylim()[1]))
    else:
        _empty(ax2, "no active-unit counts in these runs")
    ax2.set(ylabel="active units (% of latent)",
            title=f"active units (Var of posterior mean > {ACTIVE_THRESHOLD:g})")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "collapse")


def make_figures(runs, figures_dir, rollout: bool = True) -> dict[str, list[Path]]:
    """Every figure in FIGURES; ``rollout=False`` draws the strip from samples.png, without a checkpoint."""
    out = {stem: globals()[stem](runs, figures_dir) for stem in FIGURES if stem != "strip"}
    out["strip"] = strip(runs, figures_dir, rollout=rollout)
    return out
