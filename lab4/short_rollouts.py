"""The report's primary score: PSNR over short rollouts from many start points, each with several z draws.

Why not the lab's 630-frame rollout alone: one z draw fed back over 630 frames moves that score by several dB
(a drawn z against z = 0 moved it by a median of 4 dB on the same weights), so a comparison of strategies
over a few seeds measures the draw. Short rollouts started all along the validation video, each with its
own draws, average that luck away in one batched rollout; the lab's score stays beside it in every table.
Every run is scored on the same draws (SCORE_SEED), so the draws are common to both sides of a comparison.
"""

from __future__ import annotations

import numpy as np
import torch

from lab4.datasets.official import to_float
from lab4.evaluate import psnr_per_frame

HORIZON = 32  # the generated frames the primary score averages
EARLY = 16  # the first frames of the same rollouts, a second horizon for the table of noise sources
STARTS = 16  # start points spread evenly along the validation video
DRAWS = 2  # z draws per start point; each start is also rolled out with z = 0
SCORE_SEED = 2024  # the draws' seed, the same for every run


def start_points(frames: int, horizon: int = HORIZON, starts: int = STARTS) -> list[int]:
    """Evenly spaced first frames whose ``horizon`` following frames lie inside a video of ``frames``."""
    last = frames - 1 - horizon
    if last < 0:
        raise ValueError(f"a video of {frames} frames is too short for a rollout of {horizon} frames")
    return sorted({round(i * last / max(1, starts - 1)) for i in range(starts)})


@torch.no_grad()
def short_rollouts(
    model, val, horizon: int = HORIZON, starts: int = STARTS, draws: int = DRAWS, step_fn=None
) -> dict:
    """Every start point rolled out ``draws`` times with z ~ N(0, I) and once with z = 0, all in one batch.

    Returns ``psnr`` (S, draws + 1, horizon): the PSNR of each generated frame, the last draw being z = 0;
    ``baseline`` (S, horizon): the copy of the start frame, a model that learned nothing; ``diversity``
    (S, horizon): the MSE between two drawn rollouts' frames, averaged over the pairs of draws (how much z
    changes the prediction; None with one draw); ``starts``. A
    validation video shorter than the horizon (the tests' tiny data) is rolled out over its whole length."""
    horizon = min(horizon, len(val) - 1)
    first_frames = start_points(len(val), horizon, starts)
    S, K = len(first_frames), draws + 1
    device = next(model.parameters()).device
    idx = torch.tensor(first_frames)
    clips = idx[:, None] + torch.arange(horizon + 1)  # (S, horizon + 1) frame indices
    gt = to_float(val.frames[clips])  # (S, horizon + 1, 3, H, W)
    poses = to_float(val.poses[clips]).repeat_interleave(K, 0)  # (S * K, horizon + 1, 3, H, W)
    N, (H, W) = model.dims["N"], gt.shape[-2:]
    noise = torch.randn((S, draws, horizon, N, H, W), generator=torch.Generator().manual_seed(SCORE_SEED))
    noise = torch.cat([noise, torch.zeros((S, 1, horizon, N, H, W))], 1).flatten(
        0, 1
    )  # (S * K, horizon, ...)
    was_training = model.training
    model.eval()
    try:
        pred = model.rollout(
            gt[:, 0].repeat_interleave(K, 0).to(device),
            poses.to(device),
            noise=noise.to(device),
            step_fn=step_fn,
        )
    finally:
        model.train(was_training)
    pred = pred[:, 1:].float().clamp_(0, 1).cpu().unflatten(0, (S, K))  # (S, K, horizon, 3, H, W)
    target = gt[:, None, 1:].expand_as(pred)
    psnr = psnr_per_frame(pred.flatten(0, 2), target.flatten(0, 2)).reshape(S, K, horizon)
    copy = gt[:, :1].expand(-1, horizon, -1, -1, -1)
    baseline = psnr_per_frame(copy.flatten(0, 1), gt[:, 1:].flatten(0, 1)).reshape(S, horizon)
    pairs = [(i, j) for i in range(draws) for j in range(i + 1, draws)]
    diversity = (
        torch.stack([(pred[:, i] - pred[:, j]).pow(2).mean((-3, -2, -1)) for i, j in pairs]).mean(0)
        if pairs
        else None
    )  # (S, horizon)
    return dict(
        psnr=psnr.numpy(),
        baseline=baseline.numpy(),
        diversity=None if diversity is None else diversity.numpy(),
        starts=first_frames,
    )


def short_scores(res: dict, horizon: int = HORIZON) -> dict:
    """The numbers a run records from :func:`short_rollouts`: the score with drawn z (the primary), with
    z = 0, over the first EARLY frames, the copy baseline's, the spread of single-draw scores, the best draw's
    score at each start (best-of-K), and the MSE between draws (the samples' diversity)."""
    early = min(EARLY, horizon)
    psnr, drawn = res["psnr"][:, :, :horizon], res["psnr"][:, :-1, :horizon]  # (S, K, T), (S, draws, T)
    per_draw = drawn.mean((0, 2))  # (draws,): each draw's score over all starts
    return dict(
        short_psnr=float(drawn.mean()),
        short_psnr_z0=float(psnr[:, -1].mean()),
        short_psnr_early=float(drawn[:, :, :early].mean()),
        short_baseline_psnr=float(res["baseline"][:, :horizon].mean()),
        short_horizon=int(psnr.shape[-1]),
        short_starts=int(psnr.shape[0]),
        short_draws=int(drawn.shape[1]),
        short_psnr_draw_sd=float(np.std(per_draw, ddof=1)) if len(per_draw) > 1 else None,
        short_psnr_best=float(drawn.mean(2).max(1).mean()),
        short_diversity=None if res.get("diversity") is None else float(res["diversity"][:, :horizon].mean()),
    )


def score_rows(res: dict, horizon: int = HORIZON) -> list[dict]:
    """One row per start point and draw (``z0`` for z = 0) with its mean PSNR over ``horizon`` frames and over
    the first EARLY: what the report's table of noise sources is computed from."""
    psnr = res["psnr"]
    draws = psnr.shape[1] - 1
    return [
        dict(
            start=s,
            draw="z0" if k == draws else str(k),
            psnr=round(float(psnr[i, k, :horizon].mean()), 4),
            psnr_early=round(float(psnr[i, k, : min(EARLY, horizon)].mean()), 4),
        )
        for i, s in enumerate(res["starts"])
        for k in range(draws + 1)
    ]
