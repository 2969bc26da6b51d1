"""The control presets (lab4.datasets.synth.look): content the pose does not determine, large enough to be
worth nats, against SynthDance's own flicker, which is not."""

import json

import numpy as np
import pytest
from PIL import Image

from lab4.datasets.synth import PRESETS, make_synthdance, sequence, worth
from lab4.datasets.synth.look import WALLS

H, W, N = worth.H, worth.W, worth.FRAMES
_frames, _mse, _innovation = worth.frames, worth.mse, worth.innovation


@pytest.mark.timeout(60)
def test_two_streams_on_the_same_poses_differ_by_a_stated_mse():
    """The same poses lit by two streams: control's renders differ by 0.0154 MSE (0.009-0.019 over eight
    pairs of streams), small's by 5.8e-4 (0.6-6.3e-4): at least 0.008 against at most 0.001."""
    a, b = (sequence(0, "val", 0, N, H, W, look="control", look_seed=[s]) for s in (1, 2))
    fa, fb = (sequence(0, "val", 0, N, H, W, look_seed=[s]) for s in (1, 2))
    for s in (b, fa, fb):  # the same dancer: only the look differs
        assert np.array_equal(s["joints"], a["joints"]) and np.array_equal(s["tail"], a["tail"])
    control, small = _mse(_frames(a), _frames(b)), _mse(_frames(fa), _frames(fb))
    assert control >= 0.008, control
    assert small <= 0.001, small
    assert control > 10 * small


@pytest.mark.timeout(60)
def test_the_next_frame_is_worth_nats_only_in_the_control():
    """Frame t against its own scene in frame t-1's light and wall: 1.4e-3 MSE a frame in the control over
    these frames (9.6e-4 over 600), at least 5e-4, where the first nat buys 1e-3 MSE (look.py's arithmetic);
    3.8e-6 with the flicker, at most 2e-5."""
    control = _innovation(sequence(0, "val", 0, N, H, W, look="control"))
    small = _innovation(sequence(0, "val", 0, N, H, W))
    assert control >= 5e-4, control
    assert small <= 2e-5, small


def _chroma(rgb) -> np.ndarray:
    """Colour without its brightness: the light scales all three channels alike, a wall changes their mix."""
    rgb = np.asarray(rgb, np.float64)
    return rgb / rgb.sum(-1, keepdims=True)


@pytest.mark.timeout(120)
def test_control_tiny_is_tiny_with_the_control_look(tmp_path):
    """Written in the course's layout like tiny: the same pose images byte for byte, a manifest naming the
    look, and in every frame the wall colour its look drew (four colours over the 64 frames here)."""
    cfg = PRESETS["control-tiny"]
    assert {k: v for k, v in cfg.items() if k != "look"} == PRESETS["tiny"] and cfg["look"] == "control"
    ctl = make_synthdance(tmp_path / "ctl", "control-tiny", seed=0, workers=1, progress=False)
    tiny = make_synthdance(tmp_path / "tiny", "tiny", seed=0, workers=1, progress=False)
    assert json.loads((ctl / "synthdance.json").read_text())["look"] == "control"
    n = cfg["n_train"]
    labels = sorted((ctl / "train/train_label").glob("*.png"))
    assert len(labels) == n
    assert all(p.read_bytes() == (tiny / "train/train_label" / p.name).read_bytes() for p in labels)
    imgs = np.stack([np.asarray(Image.open(ctl / f"train/train_img/frame{i}.png")) for i in range(n)])
    corner = _chroma(imgs[:, :4, :4].reshape(n, -1, 3).mean(1))  # (n, 3) the wall's top-left corner
    seen = np.abs(corner[:, None] - _chroma(WALLS)[None]).sum(-1).argmin(1)  # (n,) nearest wall colour
    drawn = sequence(0, "train", 0, n, 64, 128, look="control")["wall"]
    assert np.array_equal(seen, drawn) and len(set(drawn)) >= 3
    ref = np.stack([np.asarray(Image.open(tiny / f"train/train_img/frame{i}.png")) for i in range(n)])
    # frame by frame the two differ in look alone: 0.049 MSE on average here
    assert ((imgs.astype(np.float64) - ref) ** 2).mean() / 255**2 > 0.01
