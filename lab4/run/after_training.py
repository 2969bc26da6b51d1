"""After training: a run's validation files, its test prediction and local score, and summary.json.

``python -m lab4 evaluate|predict`` and notebook 02_train call these same functions, so a number in the
notebook and the one from the command line come from one place. Each takes either the Trainer that has
just trained (model and data already in memory) or a run folder (its checkpoint and the dataset it
trained on).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from lab4.datasets.official import load_split, load_test, load_test_gt
from lab4.evaluate import (
    active_units,
    one_step_psnr,
    predict_test,
    rollout_draws,
    score,
    validate,
    write_gif,
    write_submission,
)
from lab4.plots import plot_psnr_run, save_strip
from lab4.run.folder import RunDir
from lab4.short_rollouts import score_rows, short_rollouts, short_scores
from lab4.train import Trainer, load_trained
from lab4.util.machine import machine  # results are bit-identical on one machine, not across processors

ONE_STEP_STRIDE = 3  # the one-step score over every third validation frame: 210 of 630, a third of the cost


def _model_and_config(run, checkpoint: str, device: str):
    if isinstance(run, Trainer):
        return run.model, run.cfg, run.run_dir
    model, cfg = load_trained(run, checkpoint, device)
    return model, cfg, Path(run)


def _rollout(run, fn):
    """fn(step_fn) with a Trainer's compiled rollout step (eager again if it fails), or eagerly. Always in
    fp32, even after bf16 training: the 630-frame rollout amplifies bf16 rounding into dB
    (docs/speedrun.md)."""
    if isinstance(run, Trainer):
        return run.with_fallback(lambda: fn(run.compiled_rollout), step="rollout")
    return fn(None)


def evaluate_run(
    run: Trainer | str | Path,
    data_root: str = "",
    seed: int | None = None,
    checkpoint: str = RunDir.LAST,
    device: str = "auto",
    progress: bool = False,
) -> dict:
    """The validation rollout of a trained run -> psnr_per_frame.csv/.png, samples.png, val_summary.json.

    Returns val_summary.json's numbers plus ``seconds`` and ``cpu_seconds``. ``seed`` (of the prior's
    samples) defaults to the run's; a Trainer's own validation after its last epoch is reused when it used
    that seed. ``mean_psnr`` averages ``val_draws`` rollouts with different z draws (the first is the one in
    psnr_per_frame.csv; each draw's score is in ``mean_psnr_draws``), because over 630 fed-back frames one
    draw scores the draw as much as the model. ``one_step_psnr`` predicts every third frame from the true
    previous one, so nothing compounds. val_summary.json also counts the active latent units
    (evaluate.active_units), the report's measure of posterior collapse, and gives ``mean_psnr_z0``: the
    rollout with z = 0 (the prior's mean).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    model, cfg, run_dir = _model_and_config(run, checkpoint, device)
    seed = cfg.seed if seed is None else seed
    if isinstance(run, Trainer):
        val = run.val_data
        res = run.last_val if run.last_val is not None and seed == cfg.seed else None
    else:
        val = load_split(
            RunDir(run_dir).dataset(data_root, progress), "val", cfg.frame_H, cfg.frame_W, progress
        )
        res = None
    if res is None:
        res = _rollout(run, lambda step_fn: validate(model, val, seed=seed, step_fn=step_fn))
    # the other draws (seeds apart from every run's own) and z = 0, the prior's mean, as one batch
    others = rollout_draws(model, val, [seed + 1000 * k for k in range(1, cfg.val_draws)] + [None])[
        "mean_psnr_per_draw"
    ]
    draws, z0 = [res["mean_psnr"], *others[:-1]], others[-1]
    short = _rollout(run, lambda step_fn: short_rollouts(model, val, step_fn=step_fn))
    RunDir(run_dir).write_psnr(res)
    RunDir(run_dir).write_short(score_rows(short))
    plot_psnr_run(run_dir / RunDir.PSNR_PNG, res, title=cfg.name)
    save_strip(run_dir / RunDir.SAMPLES, val.frames, res["pred"], title=f"{cfg.name}: validation rollout")
    summary = dict(
        name=cfg.name,
        mean_psnr=float(np.mean(draws)),
        mean_psnr_draws=draws,
        mean_ssim=res["mean_ssim"],
        baseline_mean_psnr=res["baseline_mean_psnr"],
        frames=len(val),
        seed=seed,
        mean_psnr_z0=z0,
        **short_scores(short),
        one_step_psnr=one_step_psnr(model, val, seed, stride=ONE_STEP_STRIDE),
        **active_units(model, val),
    )
    RunDir(run_dir).write_val_summary(summary)
    return {**summary, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}


def predict_run(
    run: Trainer | str | Path,
    data_root: str = "",
    out: str | Path = "",
    seed: int | None = None,
    checkpoint: str = RunDir.LAST,
    device: str = "auto",
    progress: bool = False,
) -> dict:
    """The test rollout -> submission.csv (the course's format) and pred_seq<k>.gif beside it, plus the
    course's public/private PSNR where the dataset ships its test frames (SynthDance's test_gt/).

    Returns the submission path, the number of sequences, the scores (None without test_gt/) and ``seconds``.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    model, cfg, run_dir = _model_and_config(run, checkpoint, device)
    seed = cfg.seed if seed is None else seed
    root = RunDir(run_dir).dataset(data_root, progress)
    seqs = load_test(root, cfg.frame_H, cfg.frame_W, progress=progress)
    preds = _rollout(run, lambda step_fn: predict_test(model, seqs, seed=seed, step_fn=step_fn))
    out = Path(out) if out else run_dir / RunDir.SUBMISSION
    out.parent.mkdir(parents=True, exist_ok=True)
    write_submission(out, preds)
    for k, pred in enumerate(preds):
        write_gif(out.parent / f"pred_seq{k}.gif", pred)
    scores = dict(public=None, private=None, overall=None)
    if (root / "test_gt").is_dir():
        scores = score(out, load_test_gt(root / "test_gt", cfg.frame_H, cfg.frame_W, progress=progress))
    return dict(
        submission=str(out),
        sequences=len(preds),
        **scores,
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
    )


def _number(x):
    """Four decimals, or four significant digits below 0.01 (an MSE between draws is ~1e-5)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 4) if x == 0 or abs(x) >= 0.01 else float(f"{x:.4g}")


def write_summary(trainer: Trainer, evaluation: dict, prediction: dict) -> dict:
    """summary.json, written last: 03_compare and the driver read it, and its epoch count marks the run done.

    ``speed`` is what the run actually used (an option asked for may be unavailable or have failed:
    ``speed_fallback`` then says why). ``cpu_seconds`` is this process's CPU time (all its threads) for
    the same work as ``wall_seconds``; ``started_at``/``finished_at`` (Unix time) and ``threads`` let the
    report say how many runs shared the machine, which the wall time alone hides. ``precision`` is the
    autocast dtype the run trained in (bf16, fp16 or fp32, chosen by its device) and ``precision_reason`` why;
    ``machine`` names the versions, commit, CPU and GPU that made the numbers (lab4.util.machine).
    """
    cfg, device, mach = trainer.cfg, str(trainer.device), machine(trainer.device)
    if trainer.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(trainer.device)})"
    summary = dict(
        name=cfg.name,
        profile=cfg.profile,
        kl_anneal_type=cfg.kl_anneal_type,
        tfr=cfg.tfr,
        tfr_sde=cfg.tfr_sde,
        tfr_d_step=cfg.tfr_d_step,
        seed=cfg.seed,
        mean_psnr=_number(evaluation.get("mean_psnr")),
        mean_ssim=_number(evaluation.get("mean_ssim")),
        mean_psnr_z0=_number(evaluation.get("mean_psnr_z0")),
        mean_psnr_draws=[_number(x) for x in evaluation.get("mean_psnr_draws", [])],
        **{
            k: _number(v) if isinstance(v, float) else v
            for k, v in evaluation.items()
            if k.startswith("short_")
        },
        one_step_psnr=_number(evaluation.get("one_step_psnr")),
        baseline_mean_psnr=_number(evaluation.get("baseline_mean_psnr")),
        public=_number(prediction.get("public")),
        private=_number(prediction.get("private")),
        wall_seconds=round(
            trainer.fit_seconds + evaluation.get("seconds", 0) + prediction.get("seconds", 0), 2
        ),
        cpu_seconds=round(
            trainer.fit_cpu_seconds + evaluation.get("cpu_seconds", 0) + prediction.get("cpu_seconds", 0), 2
        ),
        threads=torch.get_num_threads(),
        cpus=mach["cpus"],
        processor=mach["cpu_model_name"],
        started_at=round(trainer.started_at, 1) if trainer.started_at else None,
        finished_at=round(time.time(), 1),
        active_units=evaluation.get("active_units"),
        latent_units=evaluation.get("latent_units"),
        device=device,
        epochs=trainer.epoch,
        speed=trainer.speed,
        speed_fallback=trainer.fallback,
        precision=trainer.precision.dtype,
        precision_reason=trainer.precision.reason,
        machine=mach,
    )
    RunDir(trainer.run_dir).write_summary(summary)
    return summary
