"""SynthDance: a procedurally generated stand-in for the Lab 4 dance-video dataset.

The course data (one dancer, RGB frames + OpenPose label images) cannot be
downloaded here, so we render a dancer with the same folder layout, the same
kind of pose conditioning, and some appearance the pose does not determine
(a swinging ponytail and a slow light flicker) so a latent has work to do.

One sequence flows through the modules top to bottom:

    moves.py         seeded random chain of MOVES -> pose channels over time (n, 13)
    body.py          pose -> 2D joints of a 2.5D stick figure (n, 25, 2); ponytail spring
    look.py          light and wall colour per frame: a flicker, or the control presets' random ones
    render.py        joints -> RGB frame: studio, shadow, shaded capsules (H, W, 3) uint8
    pose_image.py    joints -> OpenPose COCO-18 label image (H, W, 3) uint8
    dataset.py       presets, seeds per sequence, parallel PNG writing, atomic install

Everything is a pure function of (seed, split, sequence, frame), and the
output is byte-identical for a seed (tests/test_synth.py checks it).

    from lab4.datasets.synth import make_synthdance
    make_synthdance("data/synthdance-small", preset="small", seed=0)
"""

from .body import JOINTS, ponytail, skeleton
from .dataset import PRESETS, VERSION, make_synthdance, sequence
from .moves import CHANNELS, FPS, MOVES, choreography
from .pose_image import keypoints, render_pose
from .render import background, render_frame

__all__ = [
    "CHANNELS",
    "FPS",
    "JOINTS",
    "MOVES",
    "PRESETS",
    "VERSION",
    "background",
    "choreography",
    "make_synthdance",
    "keypoints",
    "ponytail",
    "render_frame",
    "render_pose",
    "sequence",
    "skeleton",
]
