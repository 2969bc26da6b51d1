"""Sizing and boxing the GPU session's grid (lab4.perf.gpucheck): the `gpu` profile's schedule stretched to E
epochs, the most epochs that fit the minutes left, and a driver call cut off at its deadline."""

from __future__ import annotations

import multiprocessing
import sys

from lab4.schedules import teacher_forcing_ratio


def gpu_schedule(epochs: int) -> dict:
    """The `gpu` profile's schedule stretched to ``epochs``: LR drop at 3/4, KL cycles of two epochs,
    teacher forcing held for the first half and gone by the end (the `gpu` profile is this for 4)."""
    half = max(1, epochs // 2)
    return dict(
        num_epoch=epochs,
        milestones=[max(1, 3 * epochs // 4)],
        kl_anneal_cycle=half,
        tfr_sde=half,
        tfr_d_step=round(1 / max(1, epochs - half), 4),
    )


def plan_epochs(
    box_s: float,
    fps_tf: float | None,
    fps_free: float | None,
    train_frames: int,
    runs: int,
    overhead_s: float = 90.0,
    together: float = 1.5,
) -> int:
    """The most epochs (1..12) of :func:`gpu_schedule` that ``runs`` concurrent runs finish in ``box_s``.

    The runs time-slice one GPU; one small-model process leaves it partly idle, so together they are
    taken to reach ``together`` x one process's rate. An epoch costs its teacher-forced share of batches
    at the teacher-forced rate and the rest at the free-running one, plus 2 s of validation rollout;
    ``overhead_s`` per run covers kernel start, tracing (warm compile caches) and the final test rollouts.
    """
    fps_tf = fps_tf or 1000.0
    fps_free = fps_free or fps_tf / 3
    frames = (train_frames // 16 // 16) * 16 * 15  # full batches of 16 clips of 16 frames, 15 predicted each
    share = together / runs
    for epochs in range(12, 1, -1):
        sched = gpu_schedule(epochs)
        ratios = [teacher_forcing_ratio(e, 1.0, sched["tfr_sde"], sched["tfr_d_step"]) for e in range(epochs)]
        cost = sum(frames * (r / fps_tf + (1 - r) / fps_free) / share + 2.0 for r in ratios)
        if overhead_s + cost <= box_s:
            return epochs
    return 1


def run_boxed(target: str, args: tuple, kwargs: dict, seconds: float) -> dict:
    """``module:function`` called with (*args, **kwargs) in a child process, killed (with its kernels) after
    ``seconds``."""
    proc = multiprocessing.get_context("spawn").Process(target=_call, args=(target, args, kwargs))
    proc.start()
    proc.join(max(1.0, seconds))
    timed_out = proc.is_alive()
    if timed_out:
        import psutil

        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for p in family:  # the driver's workers and their papermill kernels: all started by this child
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        proc.kill()
        proc.join(10)
    return dict(exit_code=proc.exitcode, timed_out=timed_out)


def _call(target, args, kwargs):
    import importlib

    module, name = target.split(":")
    sys.exit(getattr(importlib.import_module(module), name)(*args, **kwargs) or 0)
