"""A run folder (``runs/<profile>/<name>/``) and the one reader and writer of its files.

The Trainer, the grid driver and its progress display, the report and the GPU session all read the same
files; parsing them in one place keeps them agreeing on what a blank cell, a missing summary.json or a
finished run is. Every reader tolerates a missing piece (a run still training has no summary.json): a
number then falls back to what the other files hold (:meth:`RunDir.number`).

A run's *strategy* is its name without a trailing ``-s<k>`` seed suffix, so ``cyclical`` and
``cyclical-s1`` are two seeds of one strategy.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lab4.config import Config
from lab4.schedules import KL_STRATEGIES
from lab4.util.files import atomic_write_text

SEED_RE = re.compile(r"-s\d+$")
_INT_RE = re.compile(r"[+-]?\d+")


def strategy_of(name: str) -> str:
    """``cyclical-s1`` -> ``cyclical``: the seeds of one strategy share it."""
    return SEED_RE.sub("", name)


def _cell(key: str, text: str | None):
    """A metrics.csv cell as the Trainer wrote it: ints stay ints and floats floats, so that rewriting the
    rows after a resume reproduces the file; a blank is None; ``kind`` (and any non-number) stays text."""
    if text is None or text == "":
        return None
    if key == "kind":
        return text
    if _INT_RE.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _metrics_frame(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError):  # empty or unparseable (pandas' errors are ValueErrors)
        return pd.DataFrame()
    for col in df.columns:
        if col != "kind" and df[col].dtype == object:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _psnr_frame(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _given(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


class RunDir:
    """One run folder. Parsed files are cached while the file is unchanged on disk (the report asks for the
    same numbers many times); a rewrite is seen at the next call, and ``metric_rows``/``epochs_done``/
    ``attempts`` always read afresh (the grid's progress display polls them while the run trains)."""

    CONFIG = "config.json"
    METRICS = "metrics.csv"  # kind=iter rows per iteration, kind=epoch rows per epoch
    LAST = "last.pt"
    SUMMARY = "summary.json"  # written last: its epoch count marks the run finished
    VAL_SUMMARY = "val_summary.json"  # the validation rollout's numbers (evaluate), before summary.json
    PSNR = "psnr_per_frame.csv"  # frame, psnr, ssim, baseline_psnr, baseline_ssim
    SHORT = "short_psnr.csv"  # start, draw, psnr, psnr_early: the short rollouts behind the primary score
    ATTEMPTS = "attempts.log"  # one line per failed attempt, written by the grid's task
    DIVERGED = "diverged.json"  # where the loss became non-finite; the grid does not retry such a run
    PSNR_PNG = "psnr_per_frame.png"
    SAMPLES = "samples.png"  # ground truth above the generated validation frames
    CURVES = "curves.png"  # 02_train's training curves
    SUBMISSION = "submission.csv"  # and pred_seq<k>.gif beside it
    # what an overwrite removes: every file a run writes (the
    # grid's executed notebooks and locks are the driver's)
    RUN_FILES = (
        CONFIG,
        METRICS,
        LAST,
        SUMMARY,
        VAL_SUMMARY,
        PSNR,
        SHORT,
        ATTEMPTS,
        DIVERGED,
        PSNR_PNG,
        SAMPLES,
        CURVES,
        SUBMISSION,
    )

    def __init__(self, path):
        self.path = Path(path)
        self._cache: dict[str, tuple] = {}

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def _cached(self, name: str, parse, default):
        """``parse(path)`` once per version of the file (inode, mtime, size); ``default()`` when it is
        absent."""
        p = self.path / name
        try:
            st = p.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = self._cache[name] = (key, parse(p) if key is not None else default())
        return hit[1]

    # -- config.json -----------------------------------------------------------------------------
    def config(self) -> dict:
        """config.json as written (extra records such as ``dataset`` included); {} when absent."""
        return self._cached(self.CONFIG, _json, dict)

    def load_config(self) -> Config:
        """The run's Config (a Lab4Error naming the file when it is missing or unreadable)."""
        return Config.load(self.path / self.CONFIG)

    def dataset(self, override: str = "", progress: bool = False) -> Path:
        """The dataset to evaluate this run on: ``override``, else the one it trained on, checked against the
        record in config.json (lab4.datasets.official.run_dataset)."""
        from lab4.datasets.official import run_dataset

        return run_dataset(self.config(), self.path, override, progress)

    def write_config(self, cfg: Config | dict, **extra) -> None:
        """config.json; ``extra`` adds records beside the fields (e.g. ``dataset``), which Config.load
        skips."""
        data = dict(cfg) if isinstance(cfg, dict) else cfg.to_dict()
        atomic_write_text(self.path / self.CONFIG, json.dumps({**data, **extra}, indent=2) + "\n")

    # -- which run the folder holds ---------------------------------------------------------------
    def holds_run(self) -> bool:
        """A run has started here: its config.json, metrics.csv or last.pt exists (a grid's executed notebook
        alone is not a run)."""
        return any((self.path / f).is_file() for f in (self.CONFIG, self.METRICS, self.LAST))

    def clear(self) -> list[str]:
        """Remove every file of the run (RUN_FILES, the test GIFs); the names removed."""
        files = [self.path / f for f in self.RUN_FILES] + sorted(self.path.glob("pred_seq*.gif"))
        removed = []
        for f in files:
            if f.is_file():
                f.unlink()
                removed.append(f.name)
        self._cache.clear()
        return removed

    # -- metrics.csv -----------------------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """metrics.csv with numeric columns (``kind`` is text); empty when absent."""
        return self._cached(self.METRICS, _metrics_frame, pd.DataFrame)

    def epoch_metrics(self) -> pd.DataFrame:
        m = self.metrics()
        return m[m["kind"] == "epoch"].sort_values("epoch") if "kind" in m else m.iloc[:0]

    def iter_metrics(self) -> pd.DataFrame:
        m = self.metrics()
        return m[m["kind"] == "iter"].sort_values("progress") if "kind" in m else m.iloc[:0]

    def metric_rows(self) -> list[dict]:
        """metrics.csv's rows as the Trainer holds them (numbers, None for blanks), read afresh; a torn row
        (fewer cells than the header) is dropped."""
        try:
            with open(self.path / self.METRICS, newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, ValueError, csv.Error):
            return []
        return [
            {k: _cell(k, v) for k, v in r.items()} for r in rows if None not in r and None not in r.values()
        ]

    def write_metrics(self, rows: list[dict], fields: list[str]) -> None:
        """metrics.csv in one step (keys outside ``fields`` ignored, missing ones blank)."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path / self.METRICS, buf.getvalue())

    def epochs_done(self) -> int:
        """Finished epochs in metrics.csv (0 when it is missing)."""
        return sum(r.get("kind") == "epoch" for r in self.metric_rows())

    def last_val_psnr(self) -> float | None:
        """The last validation PSNR in metrics.csv, None before the first validation."""
        return next(
            (
                float(r["val_psnr"])
                for r in reversed(self.metric_rows())
                if r.get("kind") == "epoch" and r.get("val_psnr") is not None
            ),
            None,
        )

    # -- summaries ---------------------------------------------------------------------------------
    def summary(self) -> dict:
        """summary.json ({} while the run is unfinished)."""
        return self._cached(self.SUMMARY, _json, dict)

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.path / self.SUMMARY, json.dumps(summary, indent=2) + "\n")

    def val_summary(self) -> dict:
        """val_summary.json ({} before the validation rollout)."""
        return self._cached(self.VAL_SUMMARY, _json, dict)

    def write_val_summary(self, summary: dict) -> None:
        atomic_write_text(self.path / self.VAL_SUMMARY, json.dumps(summary, indent=2) + "\n")

    def diverged(self) -> dict:
        """diverged.json ({} unless training stopped on a non-finite loss): epoch, iteration, message."""
        return self._cached(self.DIVERGED, _json, dict)

    def write_diverged(self, record: dict) -> None:
        atomic_write_text(self.path / self.DIVERGED, json.dumps(record, indent=2) + "\n")

    def is_finished(self, epochs: int) -> bool:
        """summary.json is written last, so its epoch count says whether the run trained ``epochs``."""
        return self.summary().get("epochs") == epochs

    def write_psnr(self, res: dict) -> None:
        """psnr_per_frame.csv from a validation rollout (lab4.evaluate.validate's result)."""
        rows = ["frame,psnr,ssim,baseline_psnr,baseline_ssim"]
        for i in range(len(res["frame"])):
            rows.append(
                f"{int(res['frame'][i])},{res['psnr'][i]:.4f},{res['ssim'][i]:.5f},"
                f"{res['baseline_psnr'][i]:.4f},{res['baseline_ssim'][i]:.5f}"
            )
        atomic_write_text(self.path / self.PSNR, "\n".join(rows) + "\n")

    def write_short(self, rows: list[dict]) -> None:
        """short_psnr.csv: each start point and draw of the short rollouts (lab4.short_rollouts)."""
        lines = ["start,draw,psnr,psnr_early"] + [
            f"{r['start']},{r['draw']},{r['psnr']},{r['psnr_early']}" for r in rows
        ]
        atomic_write_text(self.path / self.SHORT, "\n".join(lines) + "\n")

    def short(self) -> pd.DataFrame | None:
        """short_psnr.csv, or None without one (a run evaluated before the short score existed)."""
        return self._cached(self.SHORT, lambda p: pd.read_csv(p, dtype={"draw": str}), lambda: None)

    def psnr(self) -> pd.DataFrame | None:
        """psnr_per_frame.csv, or None without one."""
        return self._cached(self.PSNR, _psnr_frame, lambda: None)

    def number(self, key: str) -> float:
        """A run's number: summary.json's, else val_summary.json's, else recovered from metrics.csv and
        psnr_per_frame.csv (mean_psnr, mean_ssim, baseline_mean_psnr, wall_seconds, epochs); else NaN."""
        for d in (self.summary(), self.val_summary()):
            if _given(v := d.get(key)):
                return float(v)
        ep, psnr = self.epoch_metrics(), self.psnr()
        last = ep.dropna(subset=["val_psnr"]).tail(1) if "val_psnr" in ep else ep.iloc[:0]
        if key == "mean_psnr":
            if psnr is not None:
                return float(psnr["psnr"].mean())
            return float(last["val_psnr"].iloc[0]) if len(last) else math.nan
        if key == "mean_ssim":
            if psnr is not None and "ssim" in psnr:
                return float(psnr["ssim"].mean())
            return float(last["val_ssim"].iloc[0]) if len(last) and "val_ssim" in last else math.nan
        if key == "baseline_mean_psnr":
            if psnr is not None:
                return float(psnr["baseline_psnr"].mean())
            return float(last["baseline_psnr"].iloc[0]) if len(last) and "baseline_psnr" in last else math.nan
        if key == "wall_seconds":
            return float(ep["seconds"].sum()) if "seconds" in ep and len(ep) else math.nan
        if key == "epochs":
            return float(len(ep)) if len(ep) else float(self.config().get("num_epoch", math.nan))
        return math.nan

    # -- attempts.log ------------------------------------------------------------------------------
    def attempts(self) -> list[str]:
        """Why each earlier attempt stopped, one line each, read afresh; [] when none failed."""
        try:
            return (self.path / self.ATTEMPTS).read_text().splitlines()
        except OSError:
            return []

    def add_attempt(self, line: str) -> None:
        with open(self.path / self.ATTEMPTS, "a") as f:
            f.write(line.rstrip("\n") + "\n")

    # -- names -------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """summary.json's name, else the folder's."""
        return self.summary().get("name") or self.path.name

    @property
    def strategy(self) -> str:
        return strategy_of(self.name)


# -- a runs folder ---------------------------------------------------------------------------------
def load_runs(runs_dir) -> list[RunDir]:
    """Every run folder under ``runs_dir`` with a non-empty metrics.csv, by folder name."""
    runs = [RunDir(p.parent) for p in sorted(Path(runs_dir).glob(f"*/{RunDir.METRICS}"))]
    return [r for r in runs if not r.metrics().empty]


def group(runs: list[RunDir]) -> dict[str, list[RunDir]]:
    """Runs by strategy, the lab's three KL strategies first, then the others by name."""
    g: dict[str, list[RunDir]] = {}
    for r in runs:
        g.setdefault(r.strategy, []).append(r)
    order = [s for s in KL_STRATEGIES if s in g] + sorted(s for s in g if s not in KL_STRATEGIES)
    return {s: g[s] for s in order}


def best_run(runs: list[RunDir]) -> RunDir | None:
    """The run with the highest validation PSNR (the first run if none has a score)."""
    scored = [r for r in runs if np.isfinite(r.number("mean_psnr"))]
    return max(scored, key=lambda r: r.number("mean_psnr")) if scored else (runs[0] if runs else None)
