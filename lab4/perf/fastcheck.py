"""The fast path measured against eager: correctness on one batch, and where its time goes.

Used by lab4.perf.gpucheck on the GPU (and, eager, in its CPU dry run). Tolerances are stated here and
recorded with every result: bf16 keeps 8 mantissa bits, so the clip loss (summed in fp32) is held
to 3%; the fp32 paths differ only by rounding order.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch._dynamo.utils as dynamo_utils
import torch._inductor.config as inductor_config

from lab4.config import make_config
from lab4.datasets import official as data
from lab4.evaluate import generate
from lab4.model import compiled_steps
from lab4.train import build_model
from lab4.util.files import atomic_write_text

TOLERANCES = dict(loss_bf16_rtol=3e-2, rollout_fp32_atol=1e-3, fused_adam_atol=1e-6)


def fast_vs_eager(root, dims, device, compile: bool, batch: int, engaged: dict) -> dict:
    """The fast path's teacher-forced loss, rollout and Adam step against eager fp32: same weights, same
    batch.

    ``engaged`` gets what compile and CUDA graphs actually did (dynamo's own counters, so a silent
    fallback to eager is not mistaken for a passing compiled path).
    """
    F, L, N, D = dims
    cfg = make_config("full", F_dim=F, L_dim=L, N_dim=N, D_out_dim=D, compile=compile)
    amp = device.type == "cuda"
    torch.manual_seed(0)
    eager = build_model(cfg.replace(channels_last=False), device).train()
    fast = build_model(cfg, device).train()
    fast.load_state_dict(eager.state_dict())
    train_step, rollout_step = compiled_steps(fast, cfg, device)
    split = data.load_split(root, "train", progress=False)
    sampler = data.ClipSampler(len(split), 16, batch, seed=0)
    starts = sampler.batches()[0]
    frames = data.to_float(sampler.gather(split.frames, starts)).to(device)  # (B, 16, 3, H, W)
    poses = data.to_float(sampler.gather(split.poses, starts)).to(device)
    rec = dict(
        device=str(device),
        compile=compile,
        amp_bf16=amp,
        channels_last=True,
        batch=batch,
        tolerances=TOLERANCES,
    )
    graphs0 = dynamo_utils.counters["stats"]["unique_graphs"]
    # inductor draws its own random numbers unless told to call eager's RNG: only then do both draw
    # the same eps in reparameterize (set while the training step compiles, then restored)
    old_fallback = inductor_config.fallback_random
    inductor_config.fallback_random = True
    try:
        torch.manual_seed(1)
        want = eager.clip_loss(frames, poses, 1.0, True)
        torch.manual_seed(1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            got = fast.clip_loss(frames, poses, 1.0, True, step_fn=train_step)
    finally:
        inductor_config.fallback_random = old_fallback
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        torch.manual_seed(1)
        eager_bf16 = eager.clip_loss(frames, poses, 1.0, True)["loss"]  # splits the gap: bf16 vs compile
    rel = lambda a, b: abs(a.item() - b.item()) / max(abs(b.item()), 1e-12)  # noqa: E731
    want["loss"].backward()
    got["loss"].backward()
    g_e = torch.cat([p.grad.flatten() for p in eager.parameters()])
    g_f = torch.cat([p.grad.flatten().float() for p in fast.parameters()])
    rec["loss"] = dict(
        eager_fp32=want["loss"].item(),
        fast=got["loss"].item(),
        eager_bf16=eager_bf16.item(),
        rel_diff=rel(got["loss"], want["loss"]),
        fast_vs_eager_bf16=rel(got["loss"], eager_bf16),
        mse_rel_diff=rel(got["mse"], want["mse"]),
        kl_rel_diff=rel(got["kl"], want["kl"]),
        grad_cosine=torch.nn.functional.cosine_similarity(g_e, g_f, dim=0).item(),
    )
    rec["loss"]["ok"] = rec["loss"]["rel_diff"] <= TOLERANCES["loss_bf16_rtol"]
    if compile:
        grew = dynamo_utils.counters["stats"]["unique_graphs"] > graphs0
        engaged["compile"] = "engaged" if grew else "not engaged: the training step ran without a graph"

    # fp32 rollout, true fp32 (TF32 off while checking): compiled (CUDA graphs on CUDA) against eager
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        val = data.load_split(root, "val", progress=False)
        T = min(32, len(val))
        skips0 = dynamo_utils.counters["inductor"]["cudagraph_skips"]
        a = generate(fast, val.frames[:1], val.poses[None, :T], seed=3)
        b = generate(fast, val.frames[:1], val.poses[None, :T], seed=3, step_fn=rollout_step)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    diff = (a - b).abs().max().item()
    rec["rollout"] = dict(
        frames=T,
        step="cuda_graphs"
        if device.type == "cuda" and rollout_step
        else ("compiled" if rollout_step else "eager"),
        max_abs_diff=diff,
        ok=diff <= TOLERANCES["rollout_fp32_atol"],
    )
    if device.type == "cuda":
        skipped = dynamo_utils.counters["inductor"]["cudagraph_skips"] > skips0
        engaged["cuda_graphs"] = (
            "not engaged: inductor skipped the CUDA graph (see the log)"
            if skipped
            else "engaged"
            if rollout_step
            else "not engaged: no compiled rollout step"
        )

    # one Adam step: fused against plain, from the same weights and gradients
    plain, fused = copy.deepcopy(eager), copy.deepcopy(eager)  # deepcopy leaves the gradients behind
    for p, a, b in zip(eager.parameters(), plain.parameters(), fused.parameters()):
        a.grad, b.grad = p.grad.clone(), p.grad.clone()
    try:
        opt_f = torch.optim.Adam(fused.parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError) as e:
        rec["fused_adam"] = dict(ok=None, status=f"skipped: fused Adam unavailable on {device.type} ({e})")
    else:
        torch.optim.Adam(plain.parameters(), lr=cfg.lr).step()
        opt_f.step()
        d = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), fused.parameters()))
        moved = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), eager.parameters()))
        rec["fused_adam"] = dict(
            max_abs_diff=d, max_step=moved, ok=d <= TOLERANCES["fused_adam_atol"] and moved > 0
        )
    rec["ok"] = all(rec[k].get("ok") is not False for k in ("loss", "rollout", "fused_adam"))
    if not rec["ok"]:
        rec["status"] = (
            "failed: the fast path disagrees with eager beyond tolerance (see loss/rollout/fused_adam)"
        )
    return rec


def probe_speed_options(device) -> dict:
    """Which of bf16 autocast, channels_last and fused Adam take effect on ``device`` (meant for CUDA)."""
    engaged = {}
    conv = torch.nn.Conv2d(3, 8, 3).to(device, memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 64, device=device).to(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        y = conv(x)
    engaged["amp"] = "engaged" if y.dtype == torch.bfloat16 else f"not engaged: conv gave {y.dtype}"
    engaged["channels_last"] = (
        "engaged"
        if y.is_contiguous(memory_format=torch.channels_last)
        else "not engaged: conv output is not channels_last"
    )
    try:
        opt = torch.optim.Adam(conv.parameters(), fused=True)
        conv(x).float().sum().backward()
        opt.step()
        engaged["fused_adam"] = "engaged"
    except (RuntimeError, TypeError) as e:
        engaged["fused_adam"] = f"not engaged: {e}"
    return engaged


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_top(step, device, path: Path, steps: int = 3, top: int = 15) -> dict:
    """torch.profiler over a few fast-path steps: the top kernels (ops on CPU) and how busy the device was."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:  # the step is warm: bench ran it many times
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        wall_us = (time.perf_counter() - t0) * 1e6
    events = prof.key_averages()
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    if cuda and not hasattr(events[0], attr):
        attr = "self_cuda_time_total"  # older torch
    kernels = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    rows = sorted(kernels if cuda and kernels else events, key=lambda e: getattr(e, attr), reverse=True)
    total = sum(getattr(e, attr) for e in rows) or 1.0
    atomic_write_text(path, events.table(sort_by=attr, row_limit=top) + "\n")
    return dict(
        file=str(path),
        steps=steps,
        wall_ms_per_step=round(wall_us / steps / 1e3, 3),
        # kernel time over wall time: well under 1 means the GPU waits on Python and launches
        device_busy_fraction=round(total / wall_us, 3) if cuda and kernels else None,
        top=[
            dict(
                name=e.key[:120],
                calls=e.count,
                self_ms=round(getattr(e, attr) / 1e3, 3),
                share=round(getattr(e, attr) / total, 3),
            )
            for e in rows[:top]
        ],
    )
