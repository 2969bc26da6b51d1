"""Checkpoints: written atomically, read without unpickling code, in our layout or the course template's."""
from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from .errors import Lab4Error
from .io import atomic_write_bytes
from .template import from_template, is_template


def save_checkpoint(path, state: dict) -> None:
    """Serialise to memory first so a full disk or a kill never truncates the previous checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load without unpickling arbitrary objects; any damage becomes a one-line error naming the file.

    A checkpoint in the course template's layout (``state_dict``, ``lr``, ``tfr``, ``last_epoch``) comes
    back in ours, with the weights under ``model`` and our names.
    """
    path = Path(path)
    if not path.is_file():
        raise Lab4Error(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, foreign object: all the same to the user
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Lab4Error(f"{path}: not a readable lab4 checkpoint ({msg[:160]})") from None
    if is_template(state):
        return from_template(state)
    if not isinstance(state, dict) or "model" not in state:
        raise Lab4Error(f"{path}: not a lab4 or course-template checkpoint (no model weights inside)")
    return state


def load_model_weights(model: torch.nn.Module, state: dict, path) -> None:
    """Load weights strictly; a checkpoint from other model dims names the first mismatch."""
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise Lab4Error(f"{path}: checkpoint does not match this model's architecture ({detail[:200]})") from None


def check_writable(folder) -> None:
    """Fail before hours of training, not at the first checkpoint."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise Lab4Error(f"{folder}: run folder is not writable ({e.strerror or e})") from None
