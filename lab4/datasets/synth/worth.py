"""What a latent z could carry in a SynthDance look, measured on rendered frames: the report's positive
control states these numbers, and tests/test_control.py checks them.

``innovation`` is the MSE of frame t against its own scene rendered in frame t-1's light and wall: what a
model that sees frame t-1 and pose t cannot know without z. ``look_gap`` is the MSE between two renders of
the same poses lit by two streams: how much the look varies at all.
"""

from __future__ import annotations

import numpy as np

from .dataset import render_at, sequence
from .look import WALLS
from .render import render_frame

H, W, FRAMES = 32, 64, 120  # the lab's frame size; 4 s of the val split's first sequence


def frames(seq: dict, n: int = FRAMES) -> np.ndarray:
    """(n, H, W, 3) float in [0, 1], as the model sees them."""
    return np.stack([render_at(seq, i, H, W) for i in range(n)]).astype(np.float64) / 255


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).mean())


def innovation(seq: dict, n: int = FRAMES) -> float:
    """Mean MSE a frame that only z can remove (see the module docstring)."""
    guess = [
        render_frame(
            H,
            W,
            seq["joints"][t],
            seq["tail"][t],
            float(seq["phi"][t]),
            float(seq["flicker"][t - 1]),
            seq["scale"],
            wall=WALLS[int(seq["wall"][t - 1])] if "wall" in seq else WALLS[0],
        )
        for t in range(1, n)
    ]
    return mse(frames(seq, n)[1:], np.stack(guess).astype(np.float64) / 255)


def look_gap(look: str, n: int = FRAMES) -> float:
    """The MSE between the val split's first sequence under two look streams (seeds 1 and 2)."""
    a, b = (sequence(0, "val", 0, n, H, W, look=look, look_seed=[s]) for s in (1, 2))
    return mse(frames(a, n), frames(b, n))


def worth(n: int = FRAMES) -> dict[str, float]:
    """The control's and SynthDance's own innovation and look gap, on the val split's first sequence."""
    return dict(
        control_innovation=innovation(sequence(0, "val", 0, n, H, W, look="control"), n),
        flicker_innovation=innovation(sequence(0, "val", 0, n, H, W), n),
        control_gap=look_gap("control", n),
        flicker_gap=look_gap("flicker", n),
    )
