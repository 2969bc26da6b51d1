"""Files that must never be seen half-written: checkpoints, metrics, configs (write, fsync, rename)."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from .errors import Lab4Error


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise Lab4Error(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def atomic_write_text(path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def save_checkpoint(path, state: dict) -> None:
    """Serialise to memory first so a full disk or a kill never truncates the previous checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    _atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load without unpickling arbitrary objects; any damage becomes a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise Lab4Error(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, foreign object: all the same to the user
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Lab4Error(f"{path}: not a readable lab4 checkpoint ({msg[:160]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise Lab4Error(f"{path}: not a lab4 checkpoint (no model weights inside)")
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
