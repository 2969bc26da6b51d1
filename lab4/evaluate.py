"""Validation rollout, per-frame PSNR/SSIM with a repeat-the-first-frame baseline, the course's
submission file and a local scorer that reproduces its metric."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure

from lab4.datasets.official import to_float
from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_text

PSNR_CAP = 100.0  # dB given to an exact frame (MSE 0), where PSNR is infinite
SCORED_FRAMES = 600  # the course scores frames 1..600 of each sequence
PUBLIC_SEQS = (0, 1, 2)
PRIVATE_SEQS = (3, 4)


# report: psnr begin
def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(T, C, H, W) x2 -> (T,) PSNR of each frame on its own (not over the batch); an exact frame, whose PSNR
    is infinite, gets PSNR_CAP (100 dB)."""
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    psnr = 10 * torch.log10(data_range**2 / mse.clamp_min(1e-30))
    return torch.where(mse == 0, torch.full_like(psnr, PSNR_CAP), psnr.clamp(max=PSNR_CAP))
    # report: psnr end


def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) in [0, 1] -> (T,) SSIM (torchmetrics, Gaussian window 11, sigma 1.5)."""
    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, reduction="none")


def generate(model, first_frame, poses, seed: int = 0, step_fn=None, zero_z: bool = False) -> torch.Tensor:
    """uint8 or float inputs -> generated float frames clamped to [0, 1], (B, T, 3, H, W).

    ``zero_z`` generates with z = 0, the prior's mean, instead of z ~ N(0, I) (``seed`` then plays no
    part)."""
    device = next(model.parameters()).device
    first = first_frame if first_frame.is_floating_point() else to_float(first_frame)
    poses = poses if poses.is_floating_point() else to_float(poses)
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        out = model.rollout(first.to(device), poses.to(device), generator=gen, step_fn=step_fn, zero_z=zero_z)
    finally:
        model.train(was_training)
    return out.float().clamp_(0, 1)


def validate(
    model, val, seed: int = 0, step_fn=None, max_frames: int | None = None, zero_z: bool = False
) -> dict:
    """Roll out the whole validation video from its first frame with z from the prior (z = 0 with ``zero_z``).

    ``val`` is a data.Split; returns per-frame PSNR/SSIM of the model and of the baseline that just
    repeats the first frame, for frames 1..T-1 (frame 0 is given, so it is not scored).
    """
    T = len(val) if max_frames is None else min(len(val), max_frames)
    gt = to_float(val.frames[:T])  # (T, 3, H, W)
    pred = generate(model, val.frames[:1], val.poses[None, :T], seed=seed, step_fn=step_fn, zero_z=zero_z)[
        0
    ].cpu()
    repeat = gt[:1].expand_as(gt)
    out = dict(
        frame=torch.arange(1, T),
        psnr=psnr_per_frame(pred[1:], gt[1:]),
        ssim=ssim_per_frame(pred[1:], gt[1:]),
        baseline_psnr=psnr_per_frame(repeat[1:], gt[1:]),
        baseline_ssim=ssim_per_frame(repeat[1:], gt[1:]),
        pred=pred,
    )
    out.update(
        mean_psnr=out["psnr"].mean().item(),
        mean_ssim=out["ssim"].mean().item(),
        baseline_mean_psnr=out["baseline_psnr"].mean().item(),
    )
    return out


@torch.no_grad()
def rollout_draws(model, val, seeds, max_frames: int | None = None) -> dict:
    """The validation rollout once per seed (a different z draw from the prior each), all draws as one batch;
    a seed of None rolls out with z = 0, the prior's mean. A batch of three costs about 1.3 single rollouts
    on a CPU, which is why the draws and the z = 0 rollout share one.

    One draw of z over 630 fed-back frames scores the draw as much as the model; the mean over K draws is
    the run's steadier score. Returns each draw's mean PSNR over frames 1..T-1 and their mean."""
    seeds = list(seeds)
    T = len(val) if max_frames is None else min(len(val), max_frames)
    gt = to_float(val.frames[:T])  # (T, 3, H, W)
    device = next(model.parameters()).device
    firsts, poses = (
        val.frames[:1].expand(len(seeds), -1, -1, -1),
        val.poses[None, :T].expand(len(seeds), -1, -1, -1, -1),
    )
    was_training = model.training
    model.eval()
    try:
        shape = (T - 1, model.dims["N"], *gt.shape[-2:])
        # (K, T-1, N, H, W)
        noise = torch.stack(
            [
                torch.zeros(shape)
                if s is None
                else torch.randn(shape, generator=torch.Generator().manual_seed(s))
                for s in seeds
            ]
        )
        pred = model.rollout(to_float(firsts).to(device), to_float(poses).to(device), noise=noise.to(device))
    finally:
        model.train(was_training)
    pred = pred.float().clamp_(0, 1).cpu()  # (K, T, 3, H, W)
    per_draw = [psnr_per_frame(p[1:], gt[1:]).mean().item() for p in pred]
    return dict(seeds=seeds, mean_psnr_per_draw=per_draw, mean_psnr=float(np.mean(per_draw)))


@torch.no_grad()
def one_step_psnr(model, val, seed: int = 0, batch: int = 64, stride: int = 1) -> float:
    """Teacher-forced PSNR: validation frames predicted from the true previous frame and its pose, with z from
    the prior. Nothing is fed back, so errors do not compound: what the model does in one step. ``stride`` k
    scores every k-th frame (1, 1+k, ...): frames are independent here, so a third of them costs a third."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    targets = torch.arange(1, len(val), stride)
    was_training = model.training
    model.eval()
    try:
        psnr = []
        for idx in targets.split(batch):
            prev = to_float(val.frames[idx - 1]).to(device)  # (b, 3, H, W): the true previous frames
            pose_feat = model.label_transformation(to_float(val.poses[idx]).to(device))
            z = torch.randn((len(idx), model.dims["N"], *prev.shape[-2:]), generator=gen).to(
                device, pose_feat.dtype
            )
            pred = model.rollout_step(prev, pose_feat, z).float().clamp(0, 1).cpu()
            psnr.append(psnr_per_frame(pred, to_float(val.frames[idx])))
    finally:
        model.train(was_training)
    return torch.cat(psnr).mean().item()


ACTIVE_VARIANCE = 0.01  # Burda et al. (2016): a unit is active when Var_x E_q[u | x] exceeds this


@torch.no_grad()
def posterior_means(model, val, batch: int = 64) -> torch.Tensor:
    """The encoder's posterior mean mu of q(z | x_t, P_t) for every frame of a data.Split -> (T, N, H, W)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(val), batch):
            frames = to_float(val.frames[i : i + batch].to(device))  # (b, 3, H, W)
            poses = to_float(val.poses[i : i + batch].to(device))
            mu, _ = model.Gaussian_Predictor(
                model.frame_transformation(frames), model.label_transformation(poses)
            )
            out.append(mu.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def active_units(model, val, threshold: float = ACTIVE_VARIANCE) -> dict:
    """How many latent units the encoder uses: a unit (one element of the N x H x W latent map) is active
    when the variance of its posterior mean over the validation frames exceeds ``threshold``.

    A collapsed posterior gives the same mu whatever the frame, so no unit varies: 0 active units.
    Returns the count, the number of units and the fraction.
    """
    mu = posterior_means(model, val).flatten(1)  # (T, N*H*W)
    var = mu.var(0, unbiased=False) if len(mu) > 1 else torch.zeros(mu.shape[1])
    n = int((var > threshold).sum())
    return dict(active_units=n, latent_units=int(mu.shape[1]), active_fraction=n / max(1, int(mu.shape[1])))


# -- test prediction and the course's submission format ------------------------------------------
def predict_test(model, test_seqs, seed: int = 0, step_fn=None) -> list[torch.Tensor]:
    """All test sequences rolled out as one batch when they share a length -> float (T, 3, H, W) each."""
    lengths = {len(p) for _, p in test_seqs}
    if len(lengths) == 1:
        firsts = torch.stack([f for f, _ in test_seqs])
        poses = torch.stack([p for _, p in test_seqs])
        return list(generate(model, firsts, poses, seed=seed, step_fn=step_fn).cpu())
    return [generate(model, f[None], p[None], seed=seed, step_fn=step_fn)[0].cpu() for f, p in test_seqs]


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [0, 1] -> round(x * 255) as the course does."""
    return torch.round(frames.clamp(0, 1) * 255).to(torch.uint8).numpy()


def write_submission(path, preds: list[torch.Tensor]) -> None:
    """Columns id,0..C*H*W-1; row 630k+j is frame j of sequence k flattened in C, H, W order."""
    arr = np.concatenate([to_uint8(p).reshape(len(p), -1) for p in preds])  # (sum T, C*H*W)
    header = "id," + ",".join(map(str, range(arr.shape[1])))
    lines = [header] + [f"{i}," + ",".join(map(str, row.tolist())) for i, row in enumerate(arr)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_gif(path, frames: torch.Tensor, scale: int = 2, fps: int = 25) -> None:
    """float (T, 3, H, W) -> an animated GIF, upscaled so that it can be seen.

    One palette for the whole clip, taken from a mosaic of evenly spaced frames: a palette per
    frame (PIL's default) costs most of the time and makes colours flicker between frames.
    """
    arr = to_uint8(frames).transpose(0, 2, 3, 1)  # (T, H, W, 3)
    arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    mosaic = Image.fromarray(np.concatenate(arr[:: max(1, len(arr) // 16)], axis=0))
    palette = mosaic.quantize(256, method=Image.Quantize.MEDIANCUT)
    imgs = [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in arr]
    imgs[0].save(
        path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0, optimize=False
    )


# -- the local scorer --------------------------------------------------------------------------
def read_sequence(path, k: int = 0, frames: int = 630, H: int = 32, W: int = 64) -> torch.Tensor:
    """Test sequence ``k`` read back from a submission file (rows 630k..630k+629) -> uint8 (T, 3, H, W).
    Reads only as far as that sequence; read_submission checks a whole file."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for i, row in enumerate(reader):
            if i >= (k + 1) * frames:
                break
            if i >= k * frames:
                rows.append(np.asarray(row[1:], np.uint8))
    if not rows:
        raise Lab4Error(f"{path}: no rows for test sequence {k}")
    return torch.from_numpy(np.stack(rows)).reshape(len(rows), 3, H, W)


def read_submission(path, n_rows: int, n_values: int) -> np.ndarray:
    """Parse and check a submission strictly: every fault is one line naming the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise Lab4Error(f"{path}: no such submission file")
    want = ["id"] + [str(i) for i in range(n_values)]
    out = np.empty((n_rows, n_values), dtype=np.int16)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise Lab4Error(f"{path}: empty file")
        if header != want:
            if header and header[0].strip().lstrip("-").isdigit():
                raise Lab4Error(f"{path}: missing header row (expected id,0,...,{n_values - 1})")
            raise Lab4Error(
                f"{path}: header has {len(header)} columns {_head(header)}; expected id,0,...,{n_values - 1}"
                f" ({n_values + 1} columns)"
            )
        n = 0
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if n >= n_rows:
                raise Lab4Error(f"{path}: more than the expected {n_rows} rows")
            if len(row) != n_values + 1:
                raise Lab4Error(f"{path}: line {lineno} has {len(row)} columns, expected {n_values + 1}")
            try:
                vals = np.array(row, dtype=np.float64)
            except ValueError:
                bad = next(v for v in row if not _is_number(v))
                raise Lab4Error(f"{path}: line {lineno} has a non-numeric value {bad!r}") from None
            if np.isnan(vals).any():
                raise Lab4Error(f"{path}: line {lineno} has NaN")
            if vals[0] != n:
                raise Lab4Error(f"{path}: line {lineno} has id {row[0]}, expected {n}")
            px = vals[1:]
            if (px != np.round(px)).any():
                bad = row[1 + int(np.argmax(px != np.round(px)))]
                raise Lab4Error(f"{path}: line {lineno} has a non-integer pixel value {bad}")
            if px.min() < 0 or px.max() > 255:
                raise Lab4Error(
                    f"{path}: line {lineno} has a pixel value outside 0-255 ({px.min():g}..{px.max():g})"
                )
            out[n] = px
            n += 1
    if n != n_rows:
        raise Lab4Error(f"{path}: {n} rows, expected {n_rows}")
    return out


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _head(items, k: int = 4) -> str:
    return "[" + ",".join(items[:k]) + (",...]" if len(items) > k else "]")


def score(submission_path, gt: list[torch.Tensor]) -> dict:
    """The course's metric: PSNR (data range 255) per frame on 0-255 values, frames 1..600 of each
    sequence, averaged; public = sequences 0-2, private = 3-4 (where there are so many)."""
    lengths = [len(g) for g in gt]
    n_values = int(np.prod(gt[0].shape[1:]))
    sub = read_submission(submission_path, sum(lengths), n_values)
    per_seq, start = [], 0
    for g, T in zip(gt, lengths):
        pred = torch.from_numpy(sub[start : start + T].astype(np.float64))
        frames = slice(1, min(SCORED_FRAMES, T - 1) + 1)
        per_seq.append(psnr_per_frame(pred[frames], g.reshape(T, -1).double()[frames], data_range=255.0))
        start += T

    def mean_of(seqs):
        vals = [per_seq[k] for k in seqs if k < len(per_seq)]
        return torch.cat(vals).mean().item() if vals else math.nan

    return dict(
        public=mean_of(PUBLIC_SEQS),
        private=mean_of(PRIVATE_SEQS),
        overall=torch.cat(per_seq).mean().item(),
        per_sequence=[p.mean().item() for p in per_seq],
    )
