"""One figure style for the README, the notebooks and the LaTeX report (sized for its text width)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "widget", "ipympl"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

TEXT_WIDTH_IN = 6.69  # report/main.tex: A4 with 2 cm margins
# the share of the text width at which main.tex shows a figure: drawn at that size, its 7 pt text stays 7 pt
SHOWN = {"tfr_vs_loss": 0.7, "loss_curves": 0.72, "mechanism": 0.72, "control": 0.72, "psnr_per_frame": 0.66}
SHOWN_STRIP = 0.62  # the submission strip
STRATEGY_COLORS = {"cyclical": "#1f77b4", "monotonic": "#d62728", "none": "#2ca02c"}
BASELINE_STYLE = dict(color="0.45", ls="--", lw=1.0)


def use_style() -> None:
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 200,
            "savefig.bbox": "tight",
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "lines.linewidth": 1.3,
            "pdf.fonttype": 42,
        }
    )


def figure(rows: int = 1, cols: int = 1, height: float = 2.4, width: float = TEXT_WIDTH_IN, **kw):
    use_style()
    return plt.subplots(rows, cols, figsize=(width, height), **kw)


def color_for(name: str, i: int = 0) -> str:
    for key, c in STRATEGY_COLORS.items():
        if name.lower().startswith(key):
            return c
    return f"C{(i + 3) % 10}"


def save(fig, stem, formats=("pdf", "png")) -> list[Path]:
    """Write ``stem.pdf`` (for LaTeX) and ``stem.png`` (for the README) and close the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in formats:
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(path)
    plt.close(fig)
    return out


# -- helpers of the report's figures (lab4.report.figures) ----------------------------------------
def stack(series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pandas Series indexed by x -> (x, mean, min, max) over the series, on the x values they share."""
    import pandas as pd

    df = pd.concat(series, axis=1, join="inner")
    x = df.index.to_numpy(dtype=float)
    v = df.to_numpy(dtype=float)
    return x, v.mean(1), v.min(1), v.max(1)


def band_plot(ax, series, color, label, band: bool = True, **kw) -> bool:
    """One line per strategy: a single run as is, several seeds as their mean with a min-max band."""
    series = [s.dropna() for s in series if s is not None and len(s.dropna())]
    if not series:
        return False
    x, mean, lo, hi = stack(series)
    if len(x) == 0:
        return False
    ax.plot(x, mean, color=color, label=label, **kw)
    if band and len(series) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
    return True


def panel_problems(fig) -> list[str]:
    """What a reader should not be shown, panel by panel: a panel whose curves are all flat (one sentence says
    that better), and a panel over epochs whose curves end at different epochs (runs of different lengths
    mixed). A curve is a line of three points or more; reference lines (axhline, axvline) have two."""
    problems = []
    for i, ax in enumerate(fig.axes):
        name = ax.get_title() or f"panel {i + 1}"
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) >= 3]
        ys = [np.asarray(ln.get_ydata(), float) for ln in curves]
        ys = [y[np.isfinite(y)] for y in ys]
        if ys and all(len(y) and np.ptp(y) == 0 for y in ys):
            problems.append(f"{name}: every curve is flat")
        if ax.get_xlabel() == "epoch" and len({float(np.nanmax(ln.get_xdata())) for ln in curves}) > 1:
            problems.append(f"{name}: curves end at different epochs")
    return problems


def empty(ax, msg: str) -> None:
    """A panel that says what is missing instead of an empty axis."""
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def log_if_wide(ax, values, ratio: float = 20) -> None:
    """A log axis where positive values span more than ``ratio`` times."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) and (v > 0).all() and v.max() / max(v.min(), 1e-12) > ratio:
        ax.set_yscale("log")


def epoch_lines(ax, epochs: int) -> None:
    """Dotted verticals at the epoch boundaries of a per-iteration plot."""
    for e in range(1, int(epochs)):
        ax.axvline(e, color="0.6", lw=0.6, ls=":", zorder=0)


def plot_psnr_run(path, res: dict, title: str = "") -> None:
    """PSNR per generated frame of one rollout, with the repeat-the-first-frame baseline."""
    fig, ax = figure(height=2.4)
    ax.plot(
        res["frame"],
        res["psnr"],
        color=color_for(title),
        label=f"{title or 'model'} (mean {res['mean_psnr']:.2f} dB)",
    )
    ax.plot(
        res["frame"],
        res["baseline_psnr"],
        **BASELINE_STYLE,
        label=f"repeat first frame (mean {res['baseline_mean_psnr']:.2f} dB)",
    )
    ax.set(xlabel="frame index", ylabel="PSNR (dB)", title="Validation PSNR per frame")
    ax.legend(loc="upper right")
    fig.savefig(path)
    plt.close(fig)


ERROR_GAIN = 4  # the error row shows |generated - truth| times this: a small error would be black


def strip_image(gt: torch.Tensor, pred: torch.Tensor, n: int = 8) -> np.ndarray:
    """Ground truth (uint8) above generated (float) and their error at ``n`` evenly spaced frames ->
    (3H+4, n*W+gaps, 3): the error row is |generated - truth| averaged over colour, times ERROR_GAIN, as a
    heat map (dark: right), since two frames that look alike can still differ by dB."""
    from matplotlib import colormaps

    T = min(len(gt), len(pred))
    idx = np.linspace(0, T - 1, n).round().astype(int)
    g = gt[idx].permute(0, 2, 3, 1).numpy()  # (n, H, W, 3) uint8
    p = (pred[idx].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # (n, H, W, 3)
    err = np.abs(p.astype(float) - g.astype(float)).mean(-1) / 255  # (n, H, W) in [0, 1]
    heat = (colormaps["inferno"](np.clip(err * ERROR_GAIN, 0, 1))[..., :3] * 255).astype(np.uint8)
    H, W = g.shape[1:3]
    canvas = np.full((3 * H + 4, n * (W + 2) - 2, 3), 255, np.uint8)
    for j in range(n):
        cols = slice(j * (W + 2), j * (W + 2) + W)
        canvas[:H, cols], canvas[H + 2 : 2 * H + 2, cols], canvas[2 * H + 4 :, cols] = g[j], p[j], heat[j]
    return canvas, idx


def save_strip(
    path,
    gt: torch.Tensor,
    pred: torch.Tensor,
    n: int = 8,
    title: str = "",
    xlabel: str = "frame index",
    labels=("ground truth", "generated"),
    width: float = TEXT_WIDTH_IN,
) -> list[Path]:
    """Ground truth above generated frames and their error, drawn ``width`` inches wide: ``path`` with a
    suffix is one file, a stem without one gets stem.pdf and stem.png (the report's)."""
    img, idx = strip_image(gt, pred, n)
    fig, ax = figure(height=width * img.shape[0] / img.shape[1] + (0.6 if title else 0.4), width=width)
    ax.imshow(img, interpolation="nearest")
    H = (img.shape[0] - 4) // 3
    W = (img.shape[1] + 2) // n - 2
    ax.set_xticks([j * (W + 2) + W / 2 for j in range(n)], [str(i) for i in idx])
    rows = [*labels, f"error ($\\times${ERROR_GAIN})"]
    ax.set_yticks([k * (H + 2) + H / 2 for k in range(3)], rows)
    ax.grid(False)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    for s in ax.spines.values():
        s.set_visible(False)
    fig.tight_layout()
    if Path(path).suffix:
        fig.savefig(path)
        plt.close(fig)
        return [Path(path)]
    return save(fig, path)


def save_dataset_preview(path, split, n: int = 6, step: int = 12) -> None:
    """Frames above their pose images, ``step`` frames apart: what the model sees and is asked for."""
    idx = np.arange(n) * step
    frames = split.frames[idx].permute(0, 2, 3, 1).numpy()  # (n, H, W, 3) uint8
    poses = split.poses[idx].permute(0, 2, 3, 1).numpy()
    fig, axes = figure(2, n, height=TEXT_WIDTH_IN * 2 * frames.shape[1] / (n * frames.shape[2]) + 0.4)
    for j in range(n):
        for row, imgs in enumerate((frames, poses)):
            ax = axes[row, j]
            ax.imshow(imgs[j], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        axes[0, j].set_title(f"frame {idx[j]}")
    axes[0, 0].set_ylabel("frame")
    axes[1, 0].set_ylabel("pose")
    fig.savefig(path)
    plt.close(fig)


# -- training curves (notebook 02) ----------------------------------------------------------------
def _metrics_frame(metrics):
    """(iteration rows, epoch rows) of a run's metrics: Trainer.rows (numbers, also after a resume: RunDir
    reads metrics.csv back typed), RunDir.metrics(), or the path of a run folder or of its metrics.csv."""
    import pandas as pd

    if isinstance(metrics, (str, Path)):
        from lab4.run.folder import RunDir

        path = Path(metrics)
        metrics = RunDir(path.parent if path.is_file() else path).metrics()
    df = metrics.copy() if isinstance(metrics, pd.DataFrame) else pd.DataFrame(list(metrics))
    for col in ("val_psnr", "baseline_psnr"):  # absent from rows that never validated
        df[col] = pd.to_numeric(df.get(col, float("nan")))  # all blank (None): a column of NaN
    return df[df.kind == "iter"], df[df.kind == "epoch"]


def plot_loss(ax, metrics, title: str = "") -> None:
    """The loss per iteration and its epoch means on ``ax`` (cleared first): 02_train's live view."""
    its, eps = _metrics_frame(metrics)
    ax.clear()
    ax.plot(its.progress, its.loss, lw=0.8, alpha=0.5, label="per iteration")
    ax.plot(eps.epoch + 1, eps.loss, "o-", label="epoch mean")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    if len(its):
        ax.set_yscale("log")
        ax.legend(loc="upper right")


def training_curves(metrics, path=None):
    """Loss, its two terms (MSE and KL), the schedules (beta, teacher-forcing ratio) per iteration and the
    validation PSNR per epoch against the repeat-the-first-frame baseline -> the figure (saved to
    ``path``)."""
    its, eps = _metrics_frame(metrics)
    fig, axes = figure(2, 2, height=4.2, sharex=True)
    ax = axes[0, 0]
    ax.plot(its.progress, its.loss, lw=0.7, alpha=0.6)
    ax.plot(eps.epoch + 1, eps.loss, "o-", ms=3)
    ax.set(ylabel="loss", yscale="log", title="loss")
    ax = axes[0, 1]
    ax.plot(its.progress, its.mse, lw=0.7, label="MSE")
    ax.plot(its.progress, its.kl, lw=0.7, label="KL")
    ax.set(yscale="log", title="MSE and KL")
    ax.legend()
    ax = axes[1, 0]
    ax.plot(its.progress, its.beta, label="β (KL weight)")
    ax.plot(its.progress, its.tfr, label="teacher-forcing ratio")
    ax.set(xlabel="epoch", ylim=(-0.05, 1.05), title="schedules")
    ax.legend()
    ax = axes[1, 1]
    val = eps.dropna(subset=["val_psnr"])
    ax.plot(val.epoch + 1, val.val_psnr, "o-", ms=3, label="model")
    ax.plot(val.epoch + 1, val.baseline_psnr, **BASELINE_STYLE, label="repeat first frame")
    ax.set(xlabel="epoch", ylabel="dB", title="validation PSNR")
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
