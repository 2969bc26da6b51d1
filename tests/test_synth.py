"""Tests for lab4.datasets.synth: layout, determinism, continuity and safety of SynthDance."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from lab4.datasets import synth
from lab4.datasets.synth import PRESETS, dataset, make_synthdance, moves

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One shared tiny dataset (generation is the slow part of these tests)."""
    return make_synthdance(tmp_path_factory.mktemp("sd") / "data", "tiny", seed=0, workers=2, progress=False)


def _names(d):
    return sorted(p.name for p in d.iterdir())


def _frames(n):
    return sorted(f"frame{i}.png" for i in range(n))


def _load(p):
    return np.asarray(Image.open(p)).astype(np.float32)


def _all_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_manifest(tiny):
    assert _names(tiny) == ["synthdance.json", "test", "test_gt", "train", "val"]
    for split, n in (("train", TINY["n_train"]), ("val", TINY["n_val"])):
        assert _names(tiny / split) == [f"{split}_img", f"{split}_label"]
        assert _names(tiny / split / f"{split}_img") == _frames(n)
        assert _names(tiny / split / f"{split}_label") == _frames(n)
    ks = [str(k) for k in range(TINY["n_test"])]
    assert _names(tiny / "test") == ["test_img", "test_label"]
    for d in ("test/test_img", "test/test_label", "test_gt"):
        assert _names(tiny / d) == sorted(ks)
    for k in ks:
        assert _names(tiny / "test/test_img" / k) == ["frame0.png"]
        assert _names(tiny / "test/test_label" / k) == _frames(TINY["test_len"])
        assert _names(tiny / "test_gt" / k) == _frames(TINY["test_len"])
        assert (tiny / "test/test_img" / k / "frame0.png").read_bytes() == (
            tiny / "test_gt" / k / "frame0.png"
        ).read_bytes()
    assert all(re.fullmatch(r"frame\d+\.png", p.name) for p in tiny.rglob("*.png"))
    m = json.loads((tiny / "synthdance.json").read_text())
    assert m == {
        "generator": "SynthDance",
        "version": 1,
        "preset": "tiny",
        "seed": 0,
        "height": 64,
        "width": 128,
        **TINY,
    }
    assert not list(tiny.parent.glob("*.partial-*"))


def test_image_size_and_mode(tiny):
    for p in [
        tiny / "train/train_img/frame0.png",
        tiny / "train/train_label/frame0.png",
        tiny / "test_gt/3/frame5.png",
        tiny / "test/test_label/3/frame5.png",
    ]:
        im = Image.open(p)
        assert im.mode == "RGB" and im.size == (128, 64)


def test_deterministic_and_independent_of_workers(tiny, tmp_path):
    again = make_synthdance(tmp_path / "a", "tiny", seed=0, workers=1, progress=False)
    assert _all_bytes(again) == _all_bytes(tiny)
    other = make_synthdance(tmp_path / "b", "tiny", seed=1, workers=2, progress=False)
    a = (tiny / "train/train_img/frame10.png").read_bytes()
    assert a != (other / "train/train_img/frame10.png").read_bytes()


# Fingerprints of seed 0, made with the code that made every dataset of VERSION 1. A dataset on disk is
# reused whenever its manifest's version matches, so a change to the output must bump synth.VERSION
# (and these numbers). Tolerances absorb last-bit float differences between CPUs, not real changes.
PINNED_IMAGES = {  # file: (mean grey level, mean weighted by x / width * 2)
    "train/train_img/frame40.png": (173.3598, 173.1147),
    "train/train_label/frame40.png": (4.7354, 4.842),
    "val/val_img/frame23.png": (172.5676, 173.0337),
    "val/val_label/frame23.png": (4.6672, 4.3358),
    "test_gt/4/frame12.png": (167.3577, 166.593),
    "test/test_label/4/frame12.png": (4.5839, 5.0344),
}


def _weighted(a):
    """Sum of a flattened array weighted by position (1..N)/N: moves if values change, swap or mirror."""
    a = np.asarray(a, np.float64).ravel()
    return (a * (np.arange(1, a.size + 1) / a.size)).sum()


def test_output_is_pinned_for_a_seed(tiny):
    assert synth.VERSION == 1, "VERSION changed: re-pin the fingerprints below from the new output"
    x = (np.arange(128) + 0.5) / 128
    for name, (mean, x_mean) in PINNED_IMAGES.items():
        a = _load(tiny / name)
        assert abs(a.mean() - mean) < 0.01 and abs((a.mean(axis=(0, 2)) * x).mean() * 2 - x_mean) < 0.01, name
    seq = synth.sequence(0, "train", 0, 2400, 64, 128)  # the small preset's train split: all ten moves
    assert _weighted(seq["joints"]) == pytest.approx(3027872.414798405, abs=1e-3)  # pixels
    assert _weighted(seq["tail"]) == pytest.approx(7092.710515224999, abs=1e-3)
    assert _weighted(seq["flicker"]) == pytest.approx(1200.4435607482988, abs=1e-5)


@pytest.mark.parametrize("name", list(synth.MOVES))
def test_every_move_in_the_table_is_danceable(name):
    """A move may be drawn rarely; check each one here, not only those a tiny dataset happens to draw."""
    move = synth.MOVES[name]
    t = np.arange(90) / synth.FPS  # (90,) three seconds
    rest = moves.move_curves(moves.Move(1.0, lambda b: {}), t, 12.0, 1.0, 1)
    for side in (-1, 1):
        out = moves.move_curves(move, t, 12.0, 1.0, side)  # (90, D)
        assert out.shape == (90, len(synth.CHANNELS)) and np.isfinite(out).all()
        moving = np.ptp(out, axis=0) > 0.05
        assert moving.any() and (out != rest).any(), f"{name} does not move"
        assert not moving[[synth.CHANNELS.index("x"), synth.CHANNELS.index("phi")]].any()
    x, phi = move.travel(np.random.default_rng(0), 0.9, 1.1)
    assert -1 <= x <= 1 and -1.2 <= phi <= 1.2


def test_motion_is_continuous(tiny):
    imgs = np.stack([_load(tiny / f"train/train_img/frame{i}.png") for i in range(TINY["n_train"])])
    near = np.abs(imgs[1:] - imgs[:-1]).mean(axis=(1, 2, 3))  # (n-1,)
    far = np.abs(imgs[30:] - imgs[:-30]).mean(axis=(1, 2, 3))
    assert (near > 0).all(), "every frame should move a little"
    assert near.mean() < 0.5 * far.mean()
    assert near.max() < 5.0  # grey levels: no jumps between neighbours


def test_pose_images_look_like_openpose(tiny):
    lbl = _load(tiny / "val/val_label/frame3.png")
    lit = lbl.max(axis=2) > 30
    assert 0.01 < lit.mean() < 0.25, "mostly black, with a skeleton"
    sat = lbl.max(axis=2) - lbl.min(axis=2)
    assert (sat[lit] > 100).mean() > 0.5, "skeleton pixels are saturated colours"
    img = _load(tiny / "val/val_img/frame3.png")
    assert img.mean() > 120, "bright studio"
    # the skeleton sits on the dancer: label pixels are where the frame differs from the wall
    bg = synth.background(64, 128)
    body = np.abs(img - bg).max(axis=2) > 40
    assert body[lit].mean() > 0.6


def test_splits_differ(tiny):
    a = _load(tiny / "train/train_img/frame0.png")
    b = _load(tiny / "val/val_img/frame0.png")
    c = _load(tiny / "test_gt/0/frame0.png")
    assert np.abs(a - b).mean() > 1 and np.abs(b - c).mean() > 1


def test_skip_if_same_and_refuse_otherwise(tiny, tmp_path):
    stamp = (tiny / "train/train_img/frame0.png").stat().st_mtime_ns
    assert make_synthdance(tiny, "tiny", seed=0, progress=False) == tiny
    assert (tiny / "train/train_img/frame0.png").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="data"):
        make_synthdance(tiny, "tiny", seed=1, progress=False)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        make_synthdance(user, "tiny", progress=False)
    assert (user / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "kw",
    [
        dict(preset="huge"),
        dict(height=62),
        dict(width=0),
        dict(height=128, width=64),
        dict(height=-4),
        dict(height=64.0),
        dict(seed=-1),
    ],
)
def test_bad_arguments(tmp_path, kw):
    with pytest.raises(ValueError):
        make_synthdance(tmp_path / "x", **{"preset": "tiny", **kw}, progress=False)
    assert not (tmp_path / "x").exists()


def test_bad_preset_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="full.*small.*tiny"):
        make_synthdance(tmp_path / "x", "medium", progress=False)


def test_empty_target_dir_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    root = make_synthdance(tmp_path / "empty", "tiny", seed=3, progress=False)
    assert (root / "synthdance.json").exists()


def test_crash_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(job):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(dataset, "render_chunk", boom)
    with pytest.raises(RuntimeError, match="crashed"):
        make_synthdance(tmp_path / "d", "tiny", workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
