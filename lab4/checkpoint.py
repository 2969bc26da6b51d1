"""Checkpoints: written atomically, read without unpickling code, in our layout or the course template's.

The template's layout is mapped to ours by name on the way in and out. Our modules are the template's,
parameter for parameter and in the same order; only some names differ (``DepthConvBlock`` is a plain
Sequential here, the template wraps it in ``.block``; its convs are named for what they do; the Gaussian
predictor's layers sit in ``.net``). The template's file is a dict: ``state_dict`` (its names),
``optimizer``, ``lr``, ``tfr``, ``last_epoch``.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import torch

from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_bytes

# our DepthConvBlock parameters -> the template's, inside "<module>.<index>."
_OURS_TO_TEMPLATE = {
    "0.pw1": "block.0.conv1.0",
    "0.dw": "block.0.depth_conv",
    "0.pw2": "block.0.conv2",
    "0.skip": "block.0.adaptor",
    "1.expand": "block.1.conv",
    "1.project": "block.1.conv_out",
}
_TEMPLATE_TO_OURS = {v: k for k, v in _OURS_TO_TEMPLATE.items()}
_TOP = ("frame_transformation", "label_transformation", "Gaussian_Predictor", "Decoder_Fusion", "Generator")

_OURS_RE = re.compile(
    r"^(?P<top>\w+?)(?P<net>\.net)?\.(?P<i>\d+)\.(?P<sub>[01]\.(?:pw1|dw|pw2|skip|expand|project))"
    r"\.(?P<leaf>weight|bias)$"
)
_TEMPLATE_RE = re.compile(
    r"^(?P<top>\w+?)\.(?P<i>\d+)\.(?P<sub>block\.[01]\.(?:conv1\.0|depth_conv|conv2|adaptor|conv_out|conv))"
    r"\.(?P<leaf>weight|bias)$"
)


def template_key(ours: str) -> str:
    """'frame_transformation.1.0.pw1.weight' -> 'frame_transformation.1.block.0.conv1.0.weight'."""
    m = _OURS_RE.match(ours)
    if m:
        return f"{m['top']}.{m['i']}.{_OURS_TO_TEMPLATE[m['sub']]}.{m['leaf']}"
    return ours.replace("Gaussian_Predictor.net.", "Gaussian_Predictor.", 1)


def our_key(template: str) -> str:
    """The inverse of :func:`template_key`."""
    m = _TEMPLATE_RE.match(template)
    key = f"{m['top']}.{m['i']}.{_TEMPLATE_TO_OURS[m['sub']]}.{m['leaf']}" if m else template
    if key.startswith("Gaussian_Predictor."):
        key = "Gaussian_Predictor.net." + key[len("Gaussian_Predictor.") :]
    return key


def is_template(state) -> bool:
    """A template checkpoint: a dict with a 'state_dict' of the template's module names (not our 'model')."""
    if not isinstance(state, dict) or "model" in state or not isinstance(state.get("state_dict"), dict):
        return False
    keys = state["state_dict"].keys()
    return any(k.startswith(_TOP) for k in keys) and not any(".net." in k or ".pw1." in k for k in keys)


def from_template(state: dict) -> dict:
    """A template checkpoint -> our layout: 'model' (our names) plus what the template knows (epoch, lr,
    tfr)."""
    model = {our_key(k): v for k, v in state["state_dict"].items()}  # order kept: same as our modules'
    return dict(
        model=model,
        epoch=int(state.get("last_epoch", 0) or 0),
        optimizer=state.get("optimizer") or {},
        template=dict(lr=state.get("lr"), tfr=state.get("tfr"), last_epoch=state.get("last_epoch")),
    )


def to_template(state: dict) -> dict:
    """Our checkpoint -> the template's layout, loadable by its ``load_state_dict(..., strict=True)``."""
    from lab4.config import FIELDS, make_config
    from lab4.schedules import teacher_forcing_ratio

    cfg = make_config(**{k: v for k, v in (state.get("config") or {}).items() if k in FIELDS})
    epoch = int(state.get("epoch", 0))
    optimizer = state.get("optimizer") or {}
    known = state.get("template") or {}  # a template checkpoint read back: keep what it said
    lr = known.get("lr")
    if lr is None:
        lr = optimizer["param_groups"][0]["lr"] if optimizer.get("param_groups") else cfg.lr
    tfr = known.get("tfr")
    if tfr is None:
        tfr = teacher_forcing_ratio(epoch, cfg.tfr, cfg.tfr_sde, cfg.tfr_d_step)
    return dict(
        state_dict={template_key(k): v for k, v in state["model"].items()},
        optimizer=optimizer,
        lr=float(lr),
        tfr=float(tfr),
        last_epoch=epoch,
    )


def save_template(path, state: dict) -> None:
    """Write ``state`` (ours) in the template's layout, atomically."""
    buf = io.BytesIO()
    torch.save(to_template(state), buf)
    atomic_write_bytes(path, buf.getvalue())


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
        raise Lab4Error(
            f"{path}: checkpoint does not match this model's architecture ({detail[:200]})"
        ) from None


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
