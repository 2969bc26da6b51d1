"""Weight initialisation options (Config.init); ``default`` is PyTorch's, which the lab uses."""
from __future__ import annotations

import math

import torch

from .errors import Lab4Error
from .model import CVAE


def init_weights(model: CVAE, kind: str) -> CVAE:
    """``default`` keeps PyTorch's init (the lab's); ``kaiming``: He-normal conv weights for the
    LeakyReLU(0.01) layers, zero biases, and the last conv of every residual branch scaled by 0.1 so
    that the un-normalised residual stacks start close to their skips."""
    if kind == "default":
        return model
    if kind != "kaiming":
        raise Lab4Error(f"bad config: init must be default or kaiming, got {kind!r}")
    with torch.no_grad():  # torch's global RNG, which the Trainer seeds with cfg.seed
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.zero_()
        for m in model.modules():
            last = getattr(m, "conv2", None) or getattr(m, "pw2", None) or getattr(m, "project", None)
            if last is not None:
                last.weight.mul_(0.1)
    return model
