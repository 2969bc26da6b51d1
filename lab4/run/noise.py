"""Where a score's noise comes from, measured on trained runs: the same weights scored again with other z
draws, from other start points, and with z = 0. The report's table of noise sources and its power
calculation read the record this writes (results/noise/noise.json); the seeds' spread comes from the runs
themselves, and the epoch-to-epoch change from the study's per-epoch validation.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from lab4.datasets.official import load_split
from lab4.evaluate import rollout_draws
from lab4.run.folder import RunDir, load_runs
from lab4.short_rollouts import short_rollouts
from lab4.train import load_trained
from lab4.util.files import atomic_write_text
from lab4.util.machine import machine

NOISE_FILE = "noise.json"
DRAW_SEEDS = (101, 202, 303, 404)  # the 630-frame draws, apart from every run's own seed


def measure_run(run: RunDir, draws: int = 4, starts: int = 16, progress: bool = False) -> dict:
    """One run scored ``draws`` times over 630 frames and with z = 0, and over short rollouts from ``starts``
    start points with ``draws`` draws each."""
    model, cfg = load_trained(run.path, device="cpu")
    val = load_split(run.dataset(progress=progress), "val", cfg.frame_H, cfg.frame_W, progress)
    long = rollout_draws(model, val, [*DRAW_SEEDS[:draws], None])["mean_psnr_per_draw"]
    short = short_rollouts(model, val, starts=starts, draws=draws)
    return dict(
        name=run.name,
        strategy=run.strategy,
        seed=cfg.seed,
        long_draws=[round(x, 4) for x in long[:-1]],
        long_z0=round(long[-1], 4),
        short_psnr=np.round(short["psnr"], 3).tolist(),  # (starts, draws + 1, frames), the last draw z = 0
        starts=short["starts"],
    )


def _measure_one(args) -> dict:
    path, draws, starts = args
    torch.set_num_threads(1)  # one run per core
    c0 = time.process_time()
    return {**measure_run(RunDir(path), draws, starts), "cpu_seconds": round(time.process_time() - c0, 1)}


def measure(
    runs_dir, out_dir, draws: int = 3, starts: int = 16, seeds=(0, 1), jobs: int = 2, command: str = ""
) -> Path:
    """The finished runs of ``runs_dir`` with a seed in ``seeds`` measured, ``jobs`` at a time ->
    ``out_dir``/noise.json, with the machine and commit. Within-run noise needs a few runs per strategy,
    not every seed: the seeds' own spread comes from the grid's summaries."""
    t0 = time.perf_counter()
    runs = [
        r
        for r in load_runs(runs_dir)
        if (r.path / RunDir.LAST).is_file() and r.summary() and r.config().get("seed") in seeds
    ]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        measured = list(pool.map(_measure_one, [(str(r.path), draws, starts) for r in runs]))
    record = dict(
        command=command,
        runs_dir=Path(runs_dir).name,
        draws=draws,
        starts=starts,
        machine=machine(),
        runs=measured,
        wall_seconds=round(time.perf_counter() - t0, 1),
        cpu_seconds=round(sum(r["cpu_seconds"] for r in measured), 1),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / NOISE_FILE, json.dumps(record) + "\n")
    return out / NOISE_FILE
