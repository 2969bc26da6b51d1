"""The finished runs the report compares, read back from a runs folder (``runs/<profile>/<name>/``).

A run's *strategy* is its name with a trailing ``-s<k>`` seed suffix removed, so ``cyclical`` and
``cyclical-s1`` are two seeds of one strategy. Every reader tolerates missing pieces (no summary.json,
no psnr_per_frame.csv, no checkpoint): a number falls back to what metrics.csv holds. The figures
(report_figures.py) and the numbers (report_numbers.py) both start from :func:`load_runs`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

KL_STRATEGIES = ("monotonic", "cyclical", "none")
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
    metrics: pd.DataFrame  # metrics.csv: one row per iteration (kind=iter) and per epoch (kind=epoch)
    psnr: pd.DataFrame | None = None  # psnr_per_frame.csv: frame, psnr, baseline_psnr[, ssim]
    extra: dict = field(default_factory=dict)  # numbers a figure measured on the way (num_val_frames)

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
            return float(last["val_ssim"].iloc[0]) if len(last) and "val_ssim" in last else math.nan
        if key == "baseline_mean_psnr":
            if self.psnr is not None:
                return float(self.psnr["baseline_psnr"].mean())
            return float(last["baseline_psnr"].iloc[0]) if len(last) and "baseline_psnr" in last else math.nan
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


def best_run(runs: list[Run]) -> Run | None:
    """The run with the highest validation PSNR (the first run if none has a score)."""
    scored = [r for r in runs if np.isfinite(r.value("mean_psnr"))]
    return max(scored, key=lambda r: r.value("mean_psnr")) if scored else (runs[0] if runs else None)
