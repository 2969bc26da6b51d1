"""The bench's reference: the lab's way of training, timed as the lab's template runs it.

Eager fp32, batch 2, a DataLoader whose Dataset opens and decodes the 16 PNGs of each clip (and their poses)
with PIL per item, plain Adam, and the lab's training step, which walks the 15 predicted frames one at a
time. lab4.perf.bench times it against the fast path.
"""

from __future__ import annotations

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from lab4.config import make_config
from lab4.datasets import official as data
from lab4.model import kl_divergence
from lab4.train import build_model

CLIP = 16


class PNGClips(Dataset):
    """The lab's loader: each item opens and decodes the PNGs of one non-overlapping 16-frame clip."""

    def __init__(self, root, H=32, W=64):
        self.pairs = data.scan_pairs(*data.split_dirs(root, "train"))
        self.tf = transforms.Compose([transforms.Resize((H, W)), transforms.ToTensor()])

    def __len__(self):
        return len(self.pairs) // CLIP

    def __getitem__(self, i):
        pairs = self.pairs[i * CLIP : (i + 1) * CLIP]
        frames = torch.stack([self.tf(Image.open(a).convert("RGB")) for a, _ in pairs])
        poses = torch.stack([self.tf(Image.open(b).convert("RGB")) for _, b in pairs])
        return frames, poses


def lab_clip_loss(model, frames, poses, beta=1.0):
    """The lab template's training step with teacher forcing: one frame at a time, 15 model calls."""
    loss = 0.0
    for t in range(1, frames.shape[1]):
        prev = model.frame_transformation(frames[:, t - 1])
        target = model.frame_transformation(frames[:, t])
        pose = model.label_transformation(poses[:, t])
        pred, mu, logvar = model.step(prev, pose, target)
        loss = loss + torch.nn.functional.mse_loss(pred, frames[:, t]) + beta * kl_divergence(mu, logvar)
    return loss


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_loop(step, device, seconds, min_iters):
    """Run ``step`` until ``seconds`` have passed and at least ``min_iters`` ran -> (iters, seconds)."""
    sync(device)
    t0, n = time.perf_counter(), 0
    while n < min_iters or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    sync(device)
    return n, time.perf_counter() - t0


def train_update(model, opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def bench_reference(root, dims, device, seconds, min_iters, workers):
    torch.manual_seed(0)
    model = build_model(
        make_config(F_dim=dims[0], L_dim=dims[1], N_dim=dims[2], D_out_dim=dims[3]), device
    ).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(
        PNGClips(root),
        batch_size=2,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    it = iter(loader)

    def step():
        nonlocal it
        try:
            frames, poses = next(it)
        except StopIteration:
            it = iter(loader)
            frames, poses = next(it)
        frames, poses = frames.to(device), poses.to(device)
        train_update(model, opt, lab_clip_loss(model, frames, poses))

    step()  # warm-up (cuDNN autotune, worker start)
    n, s = timed_loop(step, device, seconds, min_iters)
    return dict(batch=2, iters=n, seconds=round(s, 3), frames_per_s=n * 2 * (CLIP - 1) / s, workers=workers)
