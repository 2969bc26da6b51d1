"""Training and rollout throughput: the lab's execution against this repository's fast path.

    python -m lab4 bench [--device auto] [--seconds S] [--out bench.json] [--data-root DIR] [--dims F,L,N,D]

Reference = the lab's way: eager fp32, batch 2, a DataLoader whose Dataset opens and decodes the 16
PNGs of each clip (and their poses) with PIL per item, plain Adam, and the lab's training step, which
walks the 15 predicted frames one at a time. The fast path is the Trainer's own loop (Trainer.train_steps,
what every run takes) with the `full` profile's speed options: on a GPU, the uint8 dataset resident on the
device (ClipSampler.gather), bf16 autocast, channels_last, fused Adam, the 15 teacher-forced frames
batched through one torch.compile'd step, batch 16. On a CPU (CPU_FAST): the same resident data, bf16
autocast where the CPU has native bf16 (lab4.util.device.cpu_has_native_bf16; fp32 elsewhere),
channels_last, eager (inductor's compile costs minutes and gains nothing there), the lab's batch 2 and
the per-frame teacher-forced step (``batched_tf`` off: at the lab's 16-frame clips the batched step is
memory-bound on a CPU, the per-frame one stays in cache). A run takes that step when its config turns
``batched_tf`` off; at the quick profile's 4-frame clips the two cost within 10% of each other on a
Zen 4 EPYC (scripts/tf_step_speed.py), so the quick profile keeps the batched one.
Both modes run with teacher forcing ON (the lab's first epochs; its template draws one coin per epoch).
On CPU the run is scaled down (fewer seconds, shorter rollouts) to finish in ~2 min; rollout times for
630 frames are then extrapolated from the measured per-frame time and marked so. The reference is
lab4.perf.bench_reference's; this module times the fast path and the rollouts, and prints the table.
"""

from __future__ import annotations

import itertools
import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from lab4.config import make_config
from lab4.datasets import official as data
from lab4.perf.bench_reference import CLIP, bench_reference, sync
from lab4.train import Trainer
from lab4.util.device import cpu_has_native_bf16, cpu_model_name, pick_device
from lab4.util.machine import machine

EPOCH_FRAMES = 1463 * 15  # 23,410 training frames cut into 16-frame clips, 15 predicted per clip
ROLLOUT_FRAMES = 630
# The CPU fast path's options over the `full` profile's (measured: docs/speedrun.md)
CPU_FAST = dict(compile=False, cuda_graphs=False, batched_tf=False)


def timed_steps(trainer, batches, device, seconds=0.0, min_iters=1):
    """The Trainer's own loop (:meth:`Trainer.train_steps`) at progress 0 on clips drawn in turn from
    ``batches``, until ``seconds`` have passed and at least ``min_iters`` steps ran -> (steps, seconds)
    between device syncs."""

    def plan():
        n = 0
        while n < min_iters or time.perf_counter() - t0 < seconds:
            n += 1
            yield next(batches), 0.0

    sync(device)
    t0 = time.perf_counter()
    n = len(trainer.train_steps(plan()))
    sync(device)
    return n, time.perf_counter() - t0


def fast_trainer(split, dims, device, batch, teacher_forcing=True, **fast) -> Trainer:
    """The Trainer a `full`-profile run would build here, at the bench's dims, batch and 16-frame clips;
    ``fast`` overrides its speed options (the CPU's: CPU_FAST)."""
    cfg = make_config(
        "full",
        F_dim=dims[0],
        L_dim=dims[1],
        N_dim=dims[2],
        D_out_dim=dims[3],
        batch_size=batch,
        train_vi_len=CLIP,
        tfr=1.0 if teacher_forcing else 0.0,
        device=str(device),
        progress=False,
        **fast,
    )
    return Trainer(cfg, split, split)


def bench_fast(split, dims, device, seconds, min_iters, batch, free_seconds=0.0, **fast):
    """The fast path: the Trainer's own loop (:func:`timed_steps`), timed. ``fast`` overrides the `full`
    profile's speed options (compile=False for a CPU rehearsal; batched_tf=False for the per-frame step).

    ``free_seconds`` > 0 also times steps without teacher forcing (15 sequential per-frame steps, the
    later epochs of a run), on a second Trainer with teacher forcing off. Returns the record, the Trainer,
    one batch of clip starts and a callable that takes one more step (for a profile).
    """
    trainer = fast_trainer(split, dims, device, batch, **fast)
    full = [b for b in trainer.sampler.batches() if len(b) == batch]
    pool = itertools.cycle(full)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # compile, then the steady state (CUDA graphs: 2 calls)
    _, warm = timed_steps(trainer, pool, device, min_iters=3)
    n, s = timed_steps(trainer, pool, device, seconds, min_iters)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    speed = trainer.speed
    res = dict(
        batch=batch,
        iters=n,
        seconds=round(s, 3),
        frames_per_s=n * batch * (CLIP - 1) / s,
        warmup_compile_s=round(warm, 2),
        peak_gpu_mem_gib=None if peak is None else round(peak, 3),
        compile=speed["compile"],
        amp=speed["amp"],
        fused_adam=speed["fused_adam"],
        channels_last=speed["channels_last"],
        per_frame=not trainer.cfg.batched_tf,
    )
    if free_seconds > 0:
        free_trainer = fast_trainer(split, dims, device, batch, teacher_forcing=False, **fast)
        timed_steps(free_trainer, pool, device, min_iters=2)
        n, s = timed_steps(free_trainer, pool, device, free_seconds, 2)
        res["frames_per_s_no_teacher_forcing"] = n * batch * (CLIP - 1) / s
    return res, trainer, full[0], lambda: timed_steps(trainer, pool, device)


def count_gflop(trainer, starts):
    """GFLOP per predicted training frame (fwd+bwd of the Trainer's loss) and per generated frame."""
    model = trainer.model
    frames = data.to_float(trainer.sampler.gather(trainer.frames, starts))  # (B, T, 3, H, W)
    poses = data.to_float(trainer.sampler.gather(trainer.poses, starts))
    with FlopCounterMode(display=False) as fc:
        trainer.loss_backward(frames, poses, 1.0, True)
    model.zero_grad(set_to_none=True)
    train = fc.get_total_flops() / (len(starts) * (CLIP - 1)) / 1e9
    dims = model.dims
    first = frames[:1, 0]
    pose_feat = model.label_transformation(poses[:1, 1])
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.rollout_step(
            first, pose_feat, torch.zeros(1, dims["N"], *first.shape[-2:], device=first.device)
        )
    return train, fc.get_total_flops() / 1e9


def time_rollout(model, first, poses, step_fn, device):
    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    # Warm-up on the very tensors timed: compile, CUDA-graph capture and the recompiles that
    # dynamic=False makes for new strides (the first step's input frame vs the step's own output).
    model.rollout(first, poses, generator=gen, step_fn=step_fn)
    sync(device)
    t0 = time.perf_counter()
    model.rollout(first, poses, generator=gen, step_fn=step_fn)
    sync(device)
    s = time.perf_counter() - t0
    model.train()
    T = poses.shape[1]
    return dict(
        frames=T,
        seconds=round(s, 3),
        seconds_630=round(s * (ROLLOUT_FRAMES - 1) / (T - 1), 3),
        extrapolated=T != ROLLOUT_FRAMES,
    )


def measure(
    root,
    dims=(128, 32, 12, 192),
    device="auto",
    seconds=None,
    batch=None,
    rollout_frames=None,
    workers=None,
    log=print,
    free_seconds=0.0,
    **fast,
):
    """Both modes side by side in this process -> (the result record, the fast path's training step).

    ``fast`` overrides the fast path's speed options (see :func:`bench_fast`); the step is returned so a
    caller can profile it. Defaults are sized per device (CPU: 8 s, batch 2, eager, per-frame step, bf16
    where native, 16-frame rollouts; GPU: 30 s, batch 16, compiled, batched step).
    """
    device = pick_device(device) if isinstance(device, str) else device
    cpu = device.type == "cpu"
    if cpu:
        fast = dict(CPU_FAST, **fast)
    seconds = seconds if seconds is not None else (8.0 if cpu else 30.0)
    batch = batch or (2 if cpu else 16)
    T = rollout_frames or (16 if cpu else ROLLOUT_FRAMES)
    workers = workers if workers is not None else (0 if cpu else min(4, os.cpu_count() or 1))
    min_iters = 2 if cpu else 10
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train, val = data.load_split(root, "train", progress=False), data.load_split(root, "val", progress=False)
    log(f"device {device} | torch {torch.__version__} | dims F,L,N,D={dims} | data {root}")

    ref = bench_reference(root, dims, device, seconds, min_iters, workers)
    log(f"reference: {ref['frames_per_s']:.2f} frames/s")
    fast, trainer, starts, fast_step = bench_fast(
        train, dims, device, seconds, min_iters, batch, free_seconds, **fast
    )
    model, rollout_step = trainer.model, trainer.compiled_rollout
    log(
        f"fast path: {fast['frames_per_s']:.2f} frames/s (warm-up incl. compile {fast['warmup_compile_s']} s)"
    )
    gflop_train, gflop_infer = count_gflop(trainer, starts)

    # Rollouts: fp32, batch 1 for validation; CUDA-graphed outputs are overwritten by the next replay,
    # so the compiled step's output is cloned before the rollout keeps it.
    compiled = None if rollout_step is None else (lambda p, f, z: rollout_step(p, f, z).clone())
    first = data.to_float(val.frames[:1]).to(device)
    vposes = data.to_float(val.poses[None, :T]).to(device)
    roll_eager = time_rollout(model, first, vposes, None, device)
    roll_comp = time_rollout(model, first, vposes, compiled, device)
    seqs = data.load_test(root, progress=False)
    firsts = data.to_float(torch.stack([f for f, _ in seqs])).to(device)
    tposes = data.to_float(torch.stack([p[:T] for _, p in seqs])).to(device)
    # On CPU a batch of 5 would mean a second inductor compile (dynamic=False): there it runs eager.
    roll_test = time_rollout(model, firsts, tposes, None if cpu else compiled, device)
    roll_test["step"] = "eager" if cpu or compiled is None else "compiled"

    ratio = fast["frames_per_s"] / ref["frames_per_s"]
    result = dict(
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        torch=torch.__version__,
        machine=machine(device),
        dims=dict(zip("FLND", dims)),
        data_root=str(root),
        teacher_forcing=True,
        reference=ref,
        fast=fast,
        speedup=round(ratio, 2),
        epoch_s=dict(
            reference=round(EPOCH_FRAMES / ref["frames_per_s"], 1),
            fast=round(EPOCH_FRAMES / fast["frames_per_s"], 1),
        ),
        gflop_per_train_frame=round(gflop_train, 2),
        gflop_per_generated_frame=round(gflop_infer, 2),
        tflops=dict(
            reference=round(gflop_train * ref["frames_per_s"] / 1e3, 4),
            fast=round(gflop_train * fast["frames_per_s"] / 1e3, 4),
        ),
        val_rollout_eager=roll_eager,
        val_rollout_compiled=roll_comp,
        test_rollout_5_batched=roll_test,
        peak_gpu_mem_gib=fast["peak_gpu_mem_gib"],
        notes="teacher forcing on in both modes; reference steps frame by frame as the lab's template does; "
        "rollouts in fp32; 'compiled' rollout = reduce-overhead (CUDA graphs) on CUDA, inductor on CPU",
    )
    return result, fast_step


def cpu_name() -> str:
    """``CPU (<model name>, <n> threads, native bf16 yes|no)``."""
    bf16 = "yes" if cpu_has_native_bf16() else "no"
    return f"CPU ({cpu_model_name()}, {torch.get_num_threads()} threads, native bf16 {bf16})"


def table(result) -> str:
    """The record as the aligned two-column table the command prints."""
    ref, fast = result["reference"], result["fast"]
    roll_eager, roll_comp, roll_test = (
        result[k] for k in ("val_rollout_eager", "val_rollout_compiled", "test_rollout_5_batched")
    )
    extrap = lambda r: " (extrap.)" if r["extrapolated"] else ""  # noqa: E731
    rows = [
        ("device", result["device"]),
        ("torch", result["torch"]),
        ("reference train (batch 2, PIL DataLoader, eager fp32)", f"{ref['frames_per_s']:.2f} frames/s"),
        (
            f"fast path train (batch {fast['batch']}{', compiled' if fast['compile'] else ', eager'}"
            f"{', bf16' if fast['amp'] else ', fp32'}{', channels_last' if fast.get('channels_last') else ''}"
            f"{', per-frame step' if fast.get('per_frame') else ', batched step'})",
            f"{fast['frames_per_s']:.2f} frames/s",
        ),
        ("speed-up fast / reference", f"{result['speedup']:.2f}x"),
        (
            "epoch of 23,410 frames: reference / fast",
            f"{result['epoch_s']['reference']:.0f} s / {result['epoch_s']['fast']:.0f} s",
        ),
        (
            "GFLOP per training frame / per generated frame",
            f"{result['gflop_per_train_frame']:.2f} / {result['gflop_per_generated_frame']:.2f}",
        ),
        (
            "achieved TFLOP/s: reference / fast",
            f"{result['tflops']['reference']:.4f} / {result['tflops']['fast']:.4f}",
        ),
        ("630-frame val rollout, eager" + extrap(roll_eager), f"{roll_eager['seconds_630']:.2f} s"),
        ("630-frame val rollout, compiled" + extrap(roll_comp), f"{roll_comp['seconds_630']:.2f} s"),
        (
            f"5 test sequences as one batch, {roll_test['step']}" + extrap(roll_test),
            f"{roll_test['seconds_630']:.2f} s",
        ),
        (
            "peak GPU memory (fast train)",
            "n/a (CPU)" if result["peak_gpu_mem_gib"] is None else f"{result['peak_gpu_mem_gib']:.2f} GiB",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
