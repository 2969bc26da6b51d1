"""The CPU speedrun: each lever of the quick profile trained for the same CPU-seconds, then validated.

    python -m lab4 speedrun run --variant bf16 --seed 0 [--budget-s 45] [--out results/speedrun]
    python -m lab4 speedrun all [--variants base,bf16,...] [--seeds 0,1,2] [--jobs 2] [--budget-s 45]
    python -m lab4 speedrun table [--out results/speedrun]

A variant is a set of Config overrides on top of a profile (``quick`` by default). One run builds the
Trainer (data, model, optimizer, bf16 detection as in any run), then trains until its process has used
``budget_s`` CPU-seconds (time.process_time, so a busy neighbour does not eat the budget). The
schedules run on the budget's fraction instead of on epochs: ``progress = fraction * num_epoch`` in
virtual epochs drives the KL beta and the teacher-forcing ratio, the lr steps at ``milestones /
num_epoch`` of the budget, so a faster variant gets more iterations of the very
same schedule. Then the 630-frame validation rollout (z from the prior, seeded) gives the mean PSNR and
the PSNR of the first 10 generated frames. One JSON per (variant, seed) under ``--out``; `all` skips
those already written, so an interrupted table resumes.

Budget-driven runs are not bit-reproducible (where the schedule is at an iteration depends on timing);
the profiles stay epoch-driven and deterministic.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab4.util.errors import Lab4Error, NonFiniteLoss

# Overrides per row, each against `base` (the profile as it is). `threads2` runs one process on two
# threads: run it alone (`--jobs 1`) and compare its frames per wall-second with two one-thread runs.
VARIANTS: dict[str, dict] = {
    "base": {},
    "bf16": dict(amp=True),
    "no-channels-last": dict(channels_last=False),
    "bf16-no-channels-last": dict(amp=True, channels_last=False),
    "batch8-lr6e-3": dict(batch_size=8, lr=6e-3),  # batch x4, lr x sqrt(4)
    "clip4": dict(train_vi_len=4),
    "clip16": dict(train_vi_len=16),
    "kl-weight-0.01": dict(kl_weight=0.01),
    "kl-mean": dict(kl_weight=1 / (8 * 32 * 64)),  # KL as a mean over the quick dims' N*H*W latents
    "threads2": dict(threads=2),
    # the winners together: bf16 autocast (with channels_last, as base) and the KL as a per-latent mean
    "combined": dict(amp=True, kl_weight=1 / (8 * 32 * 64)),
}
HARNESS_KEYS = {"threads"}  # variant keys that are not Config fields
DEFAULT_OUT = "results/speedrun"


def machine() -> dict:
    """lab4.util.machine's record (``cpu``: model name, family, model and stepping), with ``cores`` as
    before."""
    from lab4.util.machine import machine as this_machine

    rec = this_machine()
    return dict(rec, cores=rec["cpus"])


def train_for(trainer, budget_s: float, clock=time.process_time) -> dict:
    """Train ``trainer`` until ``clock`` has advanced ``budget_s``, through the Trainer's own loop
    (:meth:`Trainer.train_steps`, with its finite-loss check); the schedules follow the budget: at fraction
    ``f`` of it the step runs at ``f * num_epoch`` virtual epochs."""
    cfg, sampler = trainer.cfg, trainer.sampler
    count = dict(iters=0, data_epochs=0)

    def plan():  # (starts, progress) while the budget lasts; the clock is read after each step
        batches = []
        while (frac := (clock() - t0) / budget_s) < 1:
            if not batches:
                batches = sampler.batches(cfg.partial)[: sampler.n_batches(cfg.partial)]
                count["data_epochs"] += 1
            count["iters"] += 1
            yield batches.pop(0), frac * cfg.num_epoch

    t0, w0 = clock(), time.perf_counter()
    try:
        logs, diverged = trainer.train_steps(plan()), False
    except NonFiniteLoss:
        logs, diverged = [], True
    cpu_s, wall_s = clock() - t0, time.perf_counter() - w0
    iters, data_epochs, last_loss = (
        count["iters"],
        count["data_epochs"],
        logs[-1].loss.item() if logs else math.nan,
    )
    frames_trained = iters * cfg.batch_size * (cfg.train_vi_len - 1)
    return dict(
        iters=iters,
        data_epochs=data_epochs,
        train_cpu_s=round(cpu_s, 2),
        train_wall_s=round(wall_s, 2),
        frames_trained=frames_trained,
        frames_per_cpu_s=round(frames_trained / max(cpu_s, 1e-9), 2),
        frames_per_wall_s=round(frames_trained / max(wall_s, 1e-9), 2),
        last_loss=last_loss,
        diverged=diverged,
    )


def run_one(
    variant: str,
    seed: int,
    budget_s: float,
    out: Path,
    profile: str = "quick",
    data_root: str = "",
    overrides: dict | None = None,
) -> dict:
    """Train one (variant, seed) for ``budget_s`` CPU-seconds, validate, write
    ``out/<variant>/seed<seed>.json``."""
    import torch

    from lab4.config import make_config
    from lab4.evaluate import validate
    from lab4.train import Trainer
    from lab4.util.files import atomic_write_text

    if overrides is None:
        if variant not in VARIANTS:
            raise Lab4Error(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        overrides = VARIANTS[variant]
    threads = int(overrides.get("threads", 1))
    torch.set_num_threads(threads)
    fields = {k: v for k, v in overrides.items() if k not in HARNESS_KEYS}
    c0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="speedrun-") as tmp:
        cfg = make_config(
            profile, **fields, seed=seed, data_root=data_root, run_dir=tmp, progress=False, device="cpu"
        )
        trainer = Trainer(cfg)
        setup_cpu_s = time.process_time() - c0
        rec = train_for(trainer, budget_s)
        c1 = time.process_time()
        res = validate(trainer.model, trainer.val_data, seed=seed)
        val_cpu_s = time.process_time() - c1
    first = min(10, len(res["psnr"]))
    rec = dict(
        variant=variant,
        seed=seed,
        profile=profile,
        overrides=overrides,
        budget_cpu_s=budget_s,
        threads=threads,
        amp_bf16=trainer.amp,
        channels_last=cfg.channels_last,
        val_psnr=round(res["mean_psnr"], 4),
        first10_psnr=round(res["psnr"][:first].mean().item(), 4),
        frame1_psnr=round(res["psnr"][0].item(), 4),
        baseline_psnr=round(res["baseline_mean_psnr"], 4),
        baseline_first10_psnr=round(res["baseline_psnr"][:first].mean().item(), 4),
        val_frames=len(res["psnr"]) + 1,
        **rec,
        setup_cpu_s=round(setup_cpu_s, 2),
        val_cpu_s=round(val_cpu_s, 2),
        total_cpu_s=round(time.process_time(), 2),
        machine=machine(),
        torch=torch.__version__,
    )
    path = Path(out) / variant / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rec, indent=2) + "\n")
    return rec


def run_all(
    variants, seeds, budget_s: float, out: Path, jobs: int = 2, profile: str = "quick", data_root: str = ""
) -> list[Path]:
    """Every (variant, seed) as its own one-thread process, ``jobs`` at a time; finished ones are skipped."""
    from tqdm.auto import tqdm

    # seed-major: a partial table already has one seed of every row
    todo = [(v, s) for s in seeds for v in variants if not (Path(out) / v / f"seed{s}.json").is_file()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running: list[tuple[subprocess.Popen, str]] = []
    failed = []
    bar = tqdm(total=len(todo), desc="speedrun", unit="run")

    def reap(block: bool):
        for p, what in list(running):
            if block or p.poll() is not None:
                if p.wait() != 0:
                    failed.append(what)
                running.remove((p, what))
                bar.update(1)

    for v, s in todo:
        while len(running) >= jobs:
            time.sleep(0.5)
            reap(block=False)
        cmd = [
            sys.executable,
            "-m",
            "lab4",
            "speedrun",
            "run",
            "--variant",
            v,
            "--seed",
            str(s),
            "--budget-s",
            str(budget_s),
            "--out",
            str(out),
            "--profile",
            profile,
            "--data-root",
            data_root,
        ]
        running.append((subprocess.Popen(cmd, env=env), f"{v}/seed{s}"))
    reap(block=True)
    bar.close()
    if failed:
        raise Lab4Error(f"speedrun: {len(failed)} run(s) failed: {', '.join(failed)}")
    return [Path(out) / v / f"seed{s}.json" for v in variants for s in seeds]


def load_results(out: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for path in sorted(Path(out).glob("*/seed*.json")):
        rec = json.loads(path.read_text())
        rows.setdefault(rec["variant"], []).append(rec)
    return rows


def table(out: Path) -> str:
    """The markdown table of docs/speedrun.md: one row per variant, mean ± std over its seeds."""
    rows = load_results(out)
    order = [v for v in VARIANTS if v in rows] + sorted(v for v in rows if v not in VARIANTS)
    lines = [
        "| variant | val PSNR (dB), mean ± std | first 10 frames (dB) | frame 1 (dB) | train frames / CPU-s "
        "| iterations | CPU-s per run (train + val) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    for v in order:
        rs = [r for r in rows[v] if not r["diverged"]]
        if not rs:
            lines.append(
                f"| {v} | diverged | | | | {statistics.mean(r['iters'] for r in rows[v]):.0f} | "
                f"| {len(rows[v])} (all diverged) |"
            )
            continue
        get = lambda k: [r[k] for r in rs]  # noqa: E731
        lines.append(
            f"| {v} | {statistics.mean(get('val_psnr')):.2f} ± {sd(get('val_psnr')):.2f} "
            f"| {statistics.mean(get('first10_psnr')):.2f} | {statistics.mean(get('frame1_psnr')):.2f} "
            f"| {statistics.mean(get('frames_per_cpu_s')):.1f} | {statistics.mean(get('iters')):.0f} "
            f"| {statistics.mean(get('train_cpu_s')):.0f} + {statistics.mean(get('val_cpu_s')):.0f} "
            f"| {len(rs)}{f' (+{len(rows[v]) - len(rs)} diverged)' if len(rs) < len(rows[v]) else ''} |"
        )
    if rows:
        any_rec = next(iter(rows.values()))[0]
        lines.append(
            f"\nRepeat-the-first-frame baseline: {any_rec['baseline_psnr']:.2f} dB over the rollout, "
            f"{any_rec['baseline_first10_psnr']:.2f} dB over its first 10 frames."
        )
    return "\n".join(lines)
