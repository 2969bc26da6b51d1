"""Everything notebooks/03_compare.ipynb draws and writes: the comparison figures, the results table
and the LaTeX macros that carry every number the report quotes.

Runs are read from a runs folder (``runs/<profile>/<name>/``); a run's *strategy* is its name with a
trailing ``-s<k>`` seed suffix removed, so ``cyclical`` and ``cyclical-s1`` are two seeds of one
strategy. Every function tolerates missing pieces (no summary.json, no psnr_per_frame.csv, no
checkpoint): it falls back to what metrics.csv holds, or draws a figure that says what is missing.
"""
from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots

KL_STRATEGIES = ("monotonic", "cyclical", "none")
FIGURES = ("loss_curves", "beta_curves", "tfr_vs_loss", "val_psnr_per_epoch", "psnr_per_frame", "strip")
LAB_DEFAULT_PARAMS = 1_585_620  # the lab's statement; write_tables_and_macros recomputes it from CVAE()
SEED_RE = re.compile(r"-s\d+$")


def strategy_of(name: str) -> str:
    return SEED_RE.sub("", name)


def display_name(strategy: str) -> str:
    return strategy.capitalize() if strategy in KL_STRATEGIES else strategy


@dataclass
class Run:
    name: str
    path: Path
    config: dict
    summary: dict
    metrics: pd.DataFrame
    psnr: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        return strategy_of(self.name)

    @property
    def epochs(self) -> pd.DataFrame:
        return self.metrics[self.metrics["kind"] == "epoch"].sort_values("epoch")

    @property
    def iters(self) -> pd.DataFrame:
        return self.metrics[self.metrics["kind"] == "iter"].sort_values("progress")

    def value(self, key: str) -> float:
        """A summary number, else the same number recovered from metrics.csv / psnr_per_frame.csv."""
        v = self.summary.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return float(v)
        ep = self.epochs
        last = ep.dropna(subset=["val_psnr"]).tail(1) if "val_psnr" in ep else ep.iloc[:0]
        if key == "mean_psnr":
            if self.psnr is not None:
                return float(self.psnr["psnr"].mean())
            return float(last["val_psnr"].iloc[0]) if len(last) else math.nan
        if key == "mean_ssim":
            if self.psnr is not None and "ssim" in self.psnr:
                return float(self.psnr["ssim"].mean())
            return float(last["val_ssim"].iloc[0]) if len(last) else math.nan
        if key == "baseline_mean_psnr":
            if self.psnr is not None:
                return float(self.psnr["baseline_psnr"].mean())
            return float(last["baseline_psnr"].iloc[0]) if len(last) else math.nan
        if key == "wall_seconds":
            return float(ep["seconds"].sum()) if "seconds" in ep and len(ep) else math.nan
        if key == "epochs":
            return float(len(ep)) if len(ep) else float(self.config.get("num_epoch", math.nan))
        return math.nan


def load_runs(runs_dir) -> list[Run]:
    """Every run folder under ``runs_dir`` that has a metrics.csv, sorted by name."""
    runs_dir = Path(runs_dir)
    out = []
    for metrics_path in sorted(runs_dir.glob("*/metrics.csv")):
        d = metrics_path.parent
        metrics = pd.read_csv(metrics_path)
        if metrics.empty:
            continue
        config = json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else {}
        summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
        psnr = pd.read_csv(d / "psnr_per_frame.csv") if (d / "psnr_per_frame.csv").is_file() else None
        name = summary.get("name") or d.name
        out.append(Run(name=name, path=d, config=config, summary=summary, metrics=metrics, psnr=psnr))
    return out


def group(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs by strategy, the lab's three KL strategies first, then the others by name."""
    g: dict[str, list[Run]] = {}
    for r in runs:
        g.setdefault(r.strategy, []).append(r)
    order = [s for s in KL_STRATEGIES if s in g] + sorted(s for s in g if s not in KL_STRATEGIES)
    return {s: g[s] for s in order}


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
    panels = (("loss", "total loss"), ("mse", "MSE"), ("kl", "KL"), ("grad_norm", "gradient norm before clipping"))
    for ax, (col, title) in zip(axes, panels):
        vals = []
        for i, (s, rs) in enumerate(groups.items()):
            ser = [r.epochs.set_index("epoch")[col].rename(r.name) for r in rs if col in r.metrics]
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
        it = rs[0].iters
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
    kl_of_tf = {str(r.config.get("kl_anneal_type", "")).lower() for rs in tf.values() for r in rs}
    if len(kl_of_tf) == 1 and (ref := kl_of_tf.pop()) in g:
        tf = {ref: g[ref], **tf}
    tf = tf or g
    fig, ax = plots.figure(height=2.5)
    ax2 = ax.twinx()
    vals = []
    for i, (s, rs) in enumerate(tf.items()):
        c = plots.color_for(s, i)
        ser = [r.epochs.set_index("epoch")["loss"].rename(r.name) for r in rs]
        ser = [x.set_axis(x.index + 1) for x in ser]
        _band_plot(ax, ser, c, f"{display_name(s)} loss", marker="o", ms=2.5)
        vals += [v for x in ser for v in x.tolist()]
        ep = rs[0].epochs
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
            ep = r.epochs.dropna(subset=["val_psnr"])
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
        with_psnr = [r for r in rs if r.psnr is not None]
        ser = [r.psnr.set_index("frame")["psnr"].rename(r.name) for r in with_psnr]
        mean = np.mean([r.value("mean_psnr") for r in with_psnr]) if with_psnr else math.nan
        _band_plot(ax, ser, plots.color_for(s, i), f"{display_name(s)} ({mean:.2f} dB)", lw=1.0)
        if baseline is None and with_psnr:
            baseline = with_psnr[0].psnr
    if baseline is not None:
        ax.plot(baseline["frame"], baseline["baseline_psnr"], **plots.BASELINE_STYLE,
                label=f"repeat first frame ({baseline['baseline_psnr'].mean():.2f} dB)")
        ax.legend(loc="upper right", ncol=2, fontsize=7)
    else:
        _empty(ax, "no psnr_per_frame.csv in these runs")
    ax.set(xlabel="frame index", ylabel="PSNR (dB)")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "psnr_per_frame")


def best_run(runs) -> Run | None:
    scored = [r for r in runs if np.isfinite(r.value("mean_psnr"))]
    return max(scored, key=lambda r: r.value("mean_psnr")) if scored else (runs[0] if runs else None)


def _rollout(run: Run):
    """(ground truth uint8, prediction float) of a fresh validation rollout, or None if impossible."""
    if not (run.path / "last.pt").is_file() or not run.config:
        return None
    from .data import default_synth_root, load_split
    from .evaluate import validate
    from .train import load_trained
    root = run.config.get("data_root") or ""
    if root:
        root = Path(root)
    else:
        root = default_synth_root(run.config.get("synth_preset", "small"))
        if not (root / "synthdance.json").is_file():
            return None
    if not root.is_dir():
        return None
    model, cfg = load_trained(run.path, device="cpu")
    val = load_split(root, "val", cfg.frame_H, cfg.frame_W, progress=False)
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


def make_figures(runs, figures_dir, rollout: bool = True) -> dict[str, list[Path]]:
    out = {stem: globals()[stem](runs, figures_dir) for stem in FIGURES if stem != "strip"}
    out["strip"] = strip(runs, figures_dir, rollout=rollout)
    return out


# -- table and macros ---------------------------------------------------------------------------
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(s) -> str:
    return "".join(_LATEX_SPECIALS.get(c, c) for c in str(s))


def _fmt(x, digits: int = 2, na: str = "n/a") -> str:
    return na if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _pm(vals, digits: int = 2) -> str:
    vals = [v for v in vals if np.isfinite(v)]
    if not vals:
        return "--"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} $\\pm$ {np.std(vals, ddof=1):.{digits}f}"


def strategy_stats(runs) -> pd.DataFrame:
    rows = []
    for s, rs in group(runs).items():
        psnr = [r.value("mean_psnr") for r in rs]
        fin = [v for v in psnr if np.isfinite(v)]
        rows.append(dict(
            strategy=s, n=len(rs), psnr=psnr, ssim=[r.value("mean_ssim") for r in rs],
            baseline=[r.value("baseline_mean_psnr") for r in rs],
            public=[r.value("public") for r in rs], private=[r.value("private") for r in rs],
            wall=[r.value("wall_seconds") for r in rs],
            mean_psnr=float(np.mean(fin)) if fin else math.nan,
            std_psnr=float(np.std(fin, ddof=1)) if len(fin) > 1 else 0.0,
        ))
    return pd.DataFrame(rows)


def results_table(runs) -> str:
    st = strategy_stats(runs)
    lines = [r"\begin{tabular}{lrrrrrrr}", r"\toprule",
             r"Strategy & Seeds & Val.\ PSNR (dB) & Val.\ SSIM & Baseline (dB) & Public (dB) & Private (dB) "
             r"& Wall (min) \\", r"\midrule"]
    for _, row in st.iterrows():
        wall = [w / 60 for w in row["wall"]]
        lines.append(" & ".join([
            tex_escape(display_name(row["strategy"])), str(row["n"]), _pm(row["psnr"]), _pm(row["ssim"], 3),
            _pm(row["baseline"]), _pm(row["public"]), _pm(row["private"]), _pm(wall, 1)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _line_span(path: Path, marker: str) -> tuple[int, int]:
    """1-based first and last line of the top-level function that starts with ``marker``."""
    lines = path.read_text().splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith(marker)) + 1
    last = first
    for j in range(first, len(lines)):
        l = lines[j]
        if l.strip() and not l[0].isspace():
            break
        if l.strip():
            last = j + 1
    return first, last


def _data_name(run: Run) -> str:
    cfg = run.config
    root = cfg.get("data_root") or ""
    meta = Path(root) / "synthdance.json" if root else None
    if not root or (meta is not None and meta.is_file()):
        preset = cfg.get("synth_preset", "small")
        if meta is not None and meta.is_file():
            try:
                preset = json.loads(meta.read_text()).get("preset", preset)
            except ValueError:
                pass
        return f"SynthDance {preset}"
    return "the real dance dataset"


def _mac(name: str, value) -> str:
    return f"\\newcommand{{\\{name}}}{{{value}}}"


def macros(runs) -> dict[str, str]:
    from .model import CVAE, count_parameters
    from .data import PROJECT_ROOT
    st = strategy_stats(runs)
    finite = st[np.isfinite(st["mean_psnr"])] if len(st) else st
    best = best_run(runs)
    m: dict[str, str] = {}
    by = {s: r for s, r in zip(st["strategy"], st.itertuples())} if len(st) else {}
    for s in KL_STRATEGIES:
        r = by.get(s)
        m[f"{display_name(s)}ValPSNR"] = _fmt(r.mean_psnr if r is not None else math.nan)
    if len(finite):
        b = finite.loc[finite["mean_psnr"].idxmax()]
        w = finite.loc[finite["mean_psnr"].idxmin()]
        gap = float(b["mean_psnr"] - w["mean_psnr"])
        spread = float(finite["std_psnr"].max())
        multi = int(st["n"].max()) > 1
        m["BestStrategy"] = tex_escape(display_name(b["strategy"]))
        m["WorstStrategy"] = tex_escape(display_name(w["strategy"]))
        m["BestStrategyValPSNR"] = _fmt(b["mean_psnr"])
        m["StrategyGap"] = _fmt(gap)
        m["MaxSeedStd"] = _fmt(spread) if multi else "n/a"
        if not multi:
            verdict = ("cannot be compared with the seed-to-seed spread, because every strategy was trained "
                       "with a single seed")
        elif gap > spread:
            verdict = "is larger than the largest seed-to-seed standard deviation"
        else:
            verdict = "is within the largest seed-to-seed standard deviation, so the ranking is not reliable"
        m["SeedSpreadVerdict"] = verdict
    else:
        for k in ("BestStrategy", "WorstStrategy"):
            m[k] = "n/a"
        for k in ("BestStrategyValPSNR", "StrategyGap", "MaxSeedStd"):
            m[k] = "n/a"
        m["SeedSpreadVerdict"] = "cannot be computed, because no run has a validation score"
    m.update(teacher_forcing_macros(by))
    margins = [r.value("mean_psnr") - r.value("baseline_mean_psnr") for r in runs]
    margins = [x for x in margins if np.isfinite(x)]
    m["NumAboveBaseline"] = str(sum(x > 0 for x in margins))
    m["MinBaselineMargin"] = _fmt(min(margins)) if margins else "n/a"
    m["MaxBaselineMargin"] = _fmt(max(margins)) if margins else "n/a"
    m["BestRun"] = tex_escape(best.name) if best else "n/a"
    m["BestValPSNR"] = _fmt(best.value("mean_psnr")) if best else "n/a"
    m["BestValSSIM"] = _fmt(best.value("mean_ssim"), 3) if best else "n/a"
    m["BestPublic"] = _fmt(best.value("public")) if best else "n/a"
    m["BestPrivate"] = _fmt(best.value("private")) if best else "n/a"
    bases = [r.value("baseline_mean_psnr") for r in runs if np.isfinite(r.value("baseline_mean_psnr"))]
    m["BaselinePSNR"] = _fmt(float(np.mean(bases))) if bases else "n/a"
    m["NumRuns"] = str(len(runs))
    m["NumStrategies"] = str(len(st))
    seeds = sorted(set(int(n) for n in st["n"])) if len(st) else [0]
    m["SeedsPerStrategy"] = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}--{seeds[-1]}"
    walls = [r.value("wall_seconds") for r in runs if np.isfinite(r.value("wall_seconds"))]
    m["TotalWallMinutes"] = _fmt(sum(walls) / 60, 1) if walls else "n/a"
    # the settings the report describes are the KL runs' (the teacher-forcing variants override tfr)
    ref = next((r for s in KL_STRATEGIES for r in runs if r.strategy == s), None) or best or (runs[0] if runs else None)
    cfg = ref.config if ref else {}
    m["DataName"] = tex_escape(_data_name(ref)) if ref else "n/a"
    m["ProfileName"] = tex_escape(ref.summary.get("profile") or cfg.get("profile", "n/a")) if ref else "n/a"
    devices = sorted({str(r.summary.get("device") or r.config.get("device", "n/a")) for r in runs}) or ["n/a"]
    m["Device"] = tex_escape(", ".join(devices))
    epochs = sorted({int(r.value("epochs")) for r in runs if np.isfinite(r.value("epochs"))})
    m["NumEpochs"] = (str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}--{epochs[-1]}") if epochs else "n/a"
    nval = next((len(r.psnr) for r in runs if r.psnr is not None), None)
    nval = nval or next((r.extra["num_val_frames"] for r in runs if "num_val_frames" in r.extra), None)
    m["NumValFrames"] = str(nval) if nval else "n/a"
    dims = (cfg.get("F_dim", 128), cfg.get("L_dim", 32), cfg.get("N_dim", 12), cfg.get("D_out_dim", 192))
    m["ParamCount"] = f"{count_parameters(CVAE(*dims)):,}".replace(",", "{,}")
    m["ModelDims"] = "F={}, L={}, N={}, D={}".format(*dims)
    m["LabParamCount"] = f"{count_parameters(CVAE()):,}".replace(",", "{,}")
    for key, field_, digits in (("BatchSize", "batch_size", None), ("LearningRate", "lr", None),
                                ("KLCycles", "kl_anneal_cycle", None), ("KLRatio", "kl_anneal_ratio", None),
                                ("TFRStart", "tfr", None), ("TFRSde", "tfr_sde", None),
                                ("TFRDStep", "tfr_d_step", None), ("ClipLen", "train_vi_len", None),
                                ("GradClip", "clip_grad", None), ("LRGamma", "gamma", None)):
        v = cfg.get(field_)
        m[key] = tex_escape(f"{v:g}" if isinstance(v, float) else v) if v is not None else "n/a"
    m["TFDrawUnit"] = "epoch" if cfg.get("tfr_per_epoch") else "batch"
    clip = cfg.get("clip_grad")
    m["GradClipText"] = ("n/a" if clip is None else "the gradient norm is not clipped" if float(clip) == 0
                         else f"the gradient norm is clipped to {float(clip):g}")
    m.update(grad_norm_macros(runs))
    m.update(drift_macros(runs))
    ms = cfg.get("milestones")
    m["Milestones"] = ", ".join(str(x) for x in ms) if ms else "n/a"
    # source-line spans for \lstinputlisting, so that the listings cannot drift from the package
    for key, rel, marker in (("Reparam", "lab4/model.py", "def reparameterize"),
                             ("KLDiv", "lab4/model.py", "def kl_divergence"),
                             ("KLBeta", "lab4/schedules.py", "def kl_beta"),
                             ("TFRatio", "lab4/schedules.py", "def teacher_forcing_ratio")):
        first, last = _line_span(PROJECT_ROOT / rel, marker)
        m[f"{key}FirstLine"], m[f"{key}LastLine"] = str(first), str(last)
    return m


TF_VARIANTS = {"tf-off": ("TFOff", "no teacher forcing"), "tf-half": ("TFHalf", "a fixed ratio of 0.5"),
               "cyclical": ("TFDecay", "the decaying ratio")}


def teacher_forcing_macros(by: dict) -> dict[str, str]:
    """Validation PSNR of the teacher-forcing variants (the cyclical run is the decaying one), and the best."""
    m, scored = {}, {}
    for s, (key, words) in TF_VARIANTS.items():
        v = by[s].mean_psnr if s in by else math.nan
        m[f"{key}ValPSNR"] = _fmt(v)
        if np.isfinite(v):
            scored[words] = v
    m["TFBest"] = max(scored, key=scored.get) if scored else "n/a"
    return m


def grad_norm_macros(runs) -> dict[str, str]:
    """How often the lab's clip at norm 1 would have scaled a step, from the logged pre-clip norms."""
    norms = np.concatenate([pd.to_numeric(r.iters["grad_norm"], errors="coerce").to_numpy(float)
                            for r in runs if "grad_norm" in r.metrics]) if runs else np.array([])
    norms = norms[np.isfinite(norms)]
    if not len(norms):
        return {"GradNormMedian": "n/a", "GradNormAboveOnePct": "n/a", "GradNormMedianScale": "n/a"}
    above = norms[norms > 1]
    return {"GradNormMedian": _fmt(float(np.median(norms))),
            "GradNormAboveOnePct": _fmt(100 * len(above) / len(norms), 0),
            # the factor clip_grad_norm_(max_norm=1) multiplies a clipped step by
            "GradNormMedianScale": _fmt(float(np.median(1 / above)), 3) if len(above) else "n/a"}


def drift_macros(runs, window_frac: float = 0.1, tolerance_db: float = 1.0) -> dict[str, str]:
    """Does PSNR fall along the rollout? Mean of the last frames minus mean of the first, per run.

    The report says what the PSNR-per-frame figure shows rather than what autoregressive models
    usually do, so the sentence itself is chosen from the measured change.
    """
    curves = [r.psnr.sort_values("frame") for r in runs if r.psnr is not None and len(r.psnr) >= 2]
    # one window for all runs, so that "the last n frames" means the same frames in every run
    n = max(1, int(round(window_frac * min(map(len, curves))))) if curves else 0
    changes, base = [], None
    for p in curves:
        changes.append(float(p["psnr"].tail(n).mean() - p["psnr"].head(n).mean()))
        if base is None and "baseline_psnr" in p:
            base = float(p["baseline_psnr"].tail(n).mean() - p["baseline_psnr"].head(n).mean())
    if not changes:
        return {"DriftWindow": "n/a", "MinDrift": "n/a", "MaxDrift": "n/a", "BaselineDrift": "n/a",
                "DriftVerdict": "cannot be measured, because no run has a PSNR-per-frame file"}
    lo, hi = min(changes), max(changes)
    if lo >= -tolerance_db and hi <= tolerance_db:
        verdict = (f"stays within {tolerance_db:g}~dB in every run: the errors of the autoregressive rollout "
                   "do not visibly accumulate over the video")
    elif lo < -tolerance_db:
        k = sum(c < -tolerance_db for c in changes)
        verdict = (f"falls by more than {tolerance_db:g}~dB in {k} of the {len(changes)} runs: their errors "
                   "accumulate as each generated frame is fed back as the next input")
    else:
        verdict = f"rises by more than {tolerance_db:g}~dB in some runs: they score better late in the video"
    def signed(x):  # a minus sign, not a hyphen, in the PDF
        return _fmt(x).replace("-", "$-$", 1)
    return {"DriftWindow": str(n), "MinDrift": signed(lo), "MaxDrift": signed(hi),
            "BaselineDrift": signed(base) if base is not None else "n/a", "DriftVerdict": verdict}


def write_tables_and_macros(runs, generated_dir) -> dict[str, Path]:
    """``results_table.tex``, ``macros.tex`` and copies of the listed sources (src/*.py) in ``generated_dir``."""
    from .data import PROJECT_ROOT
    gen = Path(generated_dir)
    (gen / "src").mkdir(parents=True, exist_ok=True)
    for rel in ("lab4/model.py", "lab4/schedules.py"):
        shutil.copyfile(PROJECT_ROOT / rel, gen / "src" / Path(rel).name)
    table = gen / "results_table.tex"
    table.write_text(results_table(runs))
    m = macros(runs)
    mac = gen / "macros.tex"
    mac.write_text("% written by lab4.report.write_tables_and_macros; do not edit\n"
                   + "\n".join(_mac(k, v) for k, v in m.items()) + "\n")
    return {"table": table, "macros": mac}
