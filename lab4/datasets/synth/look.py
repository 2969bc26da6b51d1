"""The light and the wall of each frame: what the pose does not determine, so what a latent z could carry.

``flicker`` is SynthDance's own look (presets tiny, small, full): two slow sines of 2.5% and 1%. Given the
previous frame, the next frame's light is all but known (its change is 4e-6 MSE a frame), so it is worth
no nats.

``control`` is the positive control's (presets control, control-tiny): the same dancer in a room whose light
and wall colour change unpredictably, drawn from a stream of their own so that the poses (and the pose
images, byte for byte) are those of the flicker presets with the same seed. The light is a random walk of
LIGHT_STEP a frame, reflected at +-LIGHT_RANGE around EXPOSURE (which keeps the brightest wall below 255, so
the light scales every pixel); the wall takes another of WALLS' colours with chance SWITCH a frame.

What it is worth, per predicted frame of the lab's loss MSE + w * beta * KL (MSE: the mean over the
D = 3 x 32 x 64 = 3072 pixel values in [0, 1]; KL: nats summed over the latents; w: the config's kl_weight).
A Gaussian decoder N(x_hat, s2) has -log p(x|z) = D * MSE / (2 s2) + const, so the loss is (2 s2 / D) times
the negative ELBO when s2 = w * D / 2: a variance of 1536 (s = 39 on [0, 1] pixels) at w = 1, and 0.094
(s = 0.31) at the quick profile's w = 1/16384. A nat stored in z pays when it lowers the MSE by more than
w * beta. Measured at 32 x 64 over 600 frames of seed 0 (tests/test_control.py checks the sizes):

- the light step: without z the best guess of frame t is its scene in frame t-1's light, off by the step
  delta ~ N(0, (EXPOSURE * LIGHT_STEP)^2) on every value: m2 * 0.04^2 = 6.6e-4 MSE with m2 = 0.41 (the
  unlit frame's mean squared value), 5.8-6.1e-4 measured (the reflections shorten some steps). R nats a
  frame cut it to 6e-4 * exp(-2R) (a Gaussian's rate-distortion), so the first nat is worth 1.2e-3 MSE:
  encoding pays below w = 1.2e-3, and at w = 1/16384 up to R = 0.5 * ln(1.2e-3 * 16384) = 1.5 nats a frame,
  which saves 5.7e-4 MSE.
- the wall switch: a frame whose wall changed is off by 0.008 MSE in the old colour (the wall is about 40%
  of the values, a change of colour 0.030 MSE on them, times the light squared), 3.5-3.8e-4 MSE a frame on
  average, for h(SWITCH) + SWITCH * ln 3 = 0.25 nats a frame (whether it switched, and to which colour):
  1.4e-3 MSE a nat, paying below w = 1.4e-3.

Together about 9.6e-4 MSE a frame that a collapsed model cannot remove: on a one-step MSE of 1e-3 (30 dB),
2.9 dB. At the lab's w = 1 neither pays (a nat would have to buy 1.0 MSE, the whole range), so the control
trains at w = 1/16384, 20 times below the light's threshold and 23 times below the wall's.
"""

from __future__ import annotations

import numpy as np

from .moves import FPS
from .render import WALL

EXPOSURE = 0.8  # the control's mean light: 236 * 0.8 * 1.2 = 227 < 255, so no pixel clips
LIGHT_RANGE = 0.2  # the light wanders within +-20% of EXPOSURE
LIGHT_STEP = 0.05  # its step a frame (std, relative): the unpredictable part
SWITCH = 0.05  # the chance a frame's wall takes another colour: every 20 frames (2/3 s) on average
# SynthDance's cream, then blue, green and rose: a change is 0.030 MSE on the wall's values (mean over pairs)
WALLS = (WALL, (160.0, 190.0, 225.0), (170.0, 215.0, 180.0), (225.0, 170.0, 175.0))
LOOKS = ("flicker", "control")


def flicker(rng: np.random.Generator, n: int) -> np.ndarray:
    """SynthDance's light: two slow sines (n,) around 1, drawn from ``rng`` in the order that pins its
    bytes."""
    t = np.arange(n) / FPS
    f1, f2 = rng.uniform(0.1, 0.4), rng.uniform(0.6, 1.3)  # Hz
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    return 1 + 0.025 * np.sin(2 * np.pi * f1 * t + p1) + 0.01 * np.sin(2 * np.pi * f2 * t + p2)


def fold(x: np.ndarray, half: float) -> np.ndarray:
    """A free walk folded into [-half, half]: the walk reflected at both bounds (folding is 1-Lipschitz, so
    no step grows)."""
    r = np.mod(x + half, 4 * half)
    return np.where(r < 2 * half, r, 4 * half - r) - half


def control(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The control's light (n,) float and wall (n,) index into WALLS: a reflected random walk, and a switch
    to one of the other colours at random frames."""
    steps = rng.normal(0.0, LIGHT_STEP, n)
    steps[0] = rng.uniform(-LIGHT_RANGE, LIGHT_RANGE)  # the start, anywhere in the range
    light = EXPOSURE * (1 + fold(np.cumsum(steps), LIGHT_RANGE))
    switch = rng.random(n) < SWITCH
    switch[0] = False
    shift = np.where(switch, rng.integers(1, len(WALLS), n), 0)  # 1..K-1: never to the same colour
    wall = (rng.integers(len(WALLS)) + np.cumsum(shift)) % len(WALLS)
    return light, wall.astype(np.int8)
