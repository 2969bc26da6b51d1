"""The course template's checkpoint layout, mapped to ours by name on the way in and out.

Our modules are the template's, parameter for parameter and in the same order; only some names differ
(``DepthConvBlock`` is a plain Sequential here, the template wraps it in ``.block``; its convs are named
for what they do; the Gaussian predictor's layers sit in ``.net``). The template's file is a dict:
``state_dict`` (its names), ``optimizer``, ``lr``, ``tfr``, ``last_epoch``.
"""
from __future__ import annotations

import io
import re

import torch


# our DepthConvBlock parameters -> the template's, inside "<module>.<index>."
_OURS_TO_TEMPLATE = {"0.pw1": "block.0.conv1.0", "0.dw": "block.0.depth_conv", "0.pw2": "block.0.conv2",
                     "0.skip": "block.0.adaptor", "1.expand": "block.1.conv", "1.project": "block.1.conv_out"}
_TEMPLATE_TO_OURS = {v: k for k, v in _OURS_TO_TEMPLATE.items()}
_TOP = ("frame_transformation", "label_transformation", "Gaussian_Predictor", "Decoder_Fusion", "Generator")

_OURS_RE = re.compile(r"^(?P<top>\w+?)(?P<net>\.net)?\.(?P<i>\d+)\.(?P<sub>[01]\.(?:pw1|dw|pw2|skip|expand|project))"
                      r"\.(?P<leaf>weight|bias)$")
_TEMPLATE_RE = re.compile(r"^(?P<top>\w+?)\.(?P<i>\d+)\.(?P<sub>block\.[01]\.(?:conv1\.0|depth_conv|conv2|adaptor|conv_out|conv))"
                          r"\.(?P<leaf>weight|bias)$")


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
        key = "Gaussian_Predictor.net." + key[len("Gaussian_Predictor."):]
    return key


def is_template(state) -> bool:
    """A template checkpoint: a dict with a 'state_dict' of the template's module names (not our 'model')."""
    if not isinstance(state, dict) or "model" in state or not isinstance(state.get("state_dict"), dict):
        return False
    keys = state["state_dict"].keys()
    return any(k.startswith(_TOP) for k in keys) and not any(".net." in k or ".pw1." in k for k in keys)


def from_template(state: dict) -> dict:
    """A template checkpoint -> our layout: 'model' (our names) plus what the template knows (epoch, lr, tfr)."""
    model = {our_key(k): v for k, v in state["state_dict"].items()}  # order kept: same as our modules'
    return dict(model=model, epoch=int(state.get("last_epoch", 0) or 0), optimizer=state.get("optimizer") or {},
                template=dict(lr=state.get("lr"), tfr=state.get("tfr"), last_epoch=state.get("last_epoch")))


def to_template(state: dict) -> dict:
    """Our checkpoint -> the template's layout, loadable by its ``load_state_dict(..., strict=True)``."""
    from .config import FIELDS, make_config
    from .schedules import teacher_forcing_ratio
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
    return dict(state_dict={template_key(k): v for k, v in state["model"].items()}, optimizer=optimizer,
                lr=float(lr), tfr=float(tfr), last_epoch=epoch)


def save_template(path, state: dict) -> None:
    """Write ``state`` (ours) in the template's layout, atomically."""
    from .io import atomic_write_bytes
    buf = io.BytesIO()
    torch.save(to_template(state), buf)
    atomic_write_bytes(path, buf.getvalue())
