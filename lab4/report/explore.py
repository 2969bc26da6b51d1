"""What notebooks/04_explore.ipynb needs besides widgets: finding runs, frames as PNG for image widgets,
and the spread of the rollout over several z samples (does the latent change anything?)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lab4.evaluate import validate
from lab4.run.folder import RunDir
from lab4.util.paths import home

RUNS_ENV = "LAB4_RUNS"


def runs_folder(runs_dir: str = "") -> Path:
    """The folder searched for runs: ``runs_dir``, else $LAB4_RUNS, else runs/; relative ones under lab4's
    home."""
    path = Path(runs_dir or os.environ.get(RUNS_ENV, "") or "runs").expanduser()
    return path if path.is_absolute() else home() / path


def find_runs(folder: Path) -> dict[str, Path]:
    """{label: run folder} of every run with a last.pt under ``folder``; labels are relative paths."""
    folder = Path(folder)
    found = {}
    for ckpt in sorted(folder.glob(f"**/{RunDir.LAST}")):
        if ".ipynb_checkpoints" not in ckpt.parts:
            found[ckpt.parent.relative_to(folder).as_posix()] = ckpt.parent
    return found


def newest(found: dict[str, Path]) -> str:
    """The label of the run whose last.pt was written last."""
    return max(found, key=lambda k: (found[k] / RunDir.LAST).stat().st_mtime)


def how_to_make_a_run(folder: Path) -> str:
    """What to tell a user who opens the explorer before training anything (instead of a traceback)."""
    return (
        f"No runs yet: nothing under {folder} has a last.pt.\n"
        "Make one, then run this notebook again:\n"
        '  * open 02_train.ipynb and run all cells (a few minutes with profile = "quick"), or\n'
        "  * make demo                      (trains runs/demo), or\n"
        "  * make experiments PROFILE=quick  (the report's grid, into runs/quick).\n"
        f"To look elsewhere, set runs_dir in the first cell or ${RUNS_ENV}."
    )


def checkpoints(run_dir: Path) -> list[str]:
    """The run's checkpoint files, last.pt first."""
    names = sorted(p.name for p in Path(run_dir).glob("*.pt"))
    return sorted(names, key=lambda n: n != RunDir.LAST)


def frame_png(frame: torch.Tensor, scale: int = 3) -> bytes:
    """One frame, uint8 or float in [0, 1], (3, H, W) -> PNG bytes upscaled ``scale`` times (nearest),
    for an image widget: small frames stay sharp and redraw without matplotlib."""
    if frame.is_floating_point():
        frame = (frame.clamp(0, 1) * 255).round().to(torch.uint8)
    arr = frame.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    arr = np.ascontiguousarray(arr.repeat(scale, axis=0).repeat(scale, axis=1))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def z_spread(model, val, seeds, step_fn=None, max_frames: int | None = None) -> dict:
    """Roll out the validation video once per seed (a different z from the prior each time) and measure
    how much the result moves: per generated frame, the PSNR's mean and standard deviation over the
    samples, and the pixels' standard deviation (0-255 units, averaged over the frame).

    A spread of zero means the decoder ignores z (posterior collapse, or a KL weight that won);
    the mean PSNR alone cannot tell, because it averages the differences away.
    """
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ValueError("z_spread needs at least two seeds")
    runs = [validate(model, val, seed=s, step_fn=step_fn, max_frames=max_frames) for s in seeds]
    psnr = torch.stack([r["psnr"] for r in runs])  # (K, T-1)
    pred = torch.stack([r["pred"][1:] for r in runs]).double() * 255  # (K, T-1, 3, H, W)
    return dict(
        frame=runs[0]["frame"],
        seeds=seeds,
        psnr=psnr,
        psnr_mean=psnr.mean(0),
        psnr_std=psnr.std(0, unbiased=False),
        pixel_std=pred.std(0, unbiased=False).flatten(1).mean(1),  # (T-1,)
        mean_psnr=[r["mean_psnr"] for r in runs],
    )


def describe_spread(spread: dict) -> str:
    """One line for the explorer: how far z moves the frames and their PSNR."""
    k = len(spread["seeds"])
    ps, px = spread["psnr_std"], spread["pixel_std"]
    means = spread["mean_psnr"]
    return (
        f"z spread over {k} samples: PSNR std per frame {ps.mean():.3f} dB on average (max {ps.max():.3f}); "
        f"pixels move by {px.mean():.2f}/255 on average; mean PSNR {min(means):.2f}..{max(means):.2f} dB"
    )
