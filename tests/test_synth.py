"""Tests for lab4.synth: layout, determinism, continuity and safety of SynthDance."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from lab4 import synth
from lab4.synth import PRESETS, generate

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One shared tiny dataset (generation is the slow part of these tests)."""
    return generate(tmp_path_factory.mktemp("sd") / "data", "tiny", seed=0, workers=2,
                    progress=False)


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
        assert (tiny / "test/test_img" / k / "frame0.png").read_bytes() == \
            (tiny / "test_gt" / k / "frame0.png").read_bytes()
    assert all(re.fullmatch(r"frame\d+\.png", p.name) for p in tiny.rglob("*.png"))
    m = json.loads((tiny / "synthdance.json").read_text())
    assert m == {"generator": "SynthDance", "version": 1, "preset": "tiny", "seed": 0,
                 "height": 64, "width": 128, **TINY}
    assert not list(tiny.parent.glob("*.partial-*"))


def test_image_size_and_mode(tiny):
    for p in [tiny / "train/train_img/frame0.png", tiny / "train/train_label/frame0.png",
              tiny / "test_gt/3/frame5.png", tiny / "test/test_label/3/frame5.png"]:
        im = Image.open(p)
        assert im.mode == "RGB" and im.size == (128, 64)


def test_deterministic_and_independent_of_workers(tiny, tmp_path):
    again = generate(tmp_path / "a", "tiny", seed=0, workers=1, progress=False)
    assert _all_bytes(again) == _all_bytes(tiny)
    other = generate(tmp_path / "b", "tiny", seed=1, workers=2, progress=False)
    a = (tiny / "train/train_img/frame10.png").read_bytes()
    assert a != (other / "train/train_img/frame10.png").read_bytes()


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
    assert generate(tiny, "tiny", seed=0, progress=False) == tiny
    assert (tiny / "train/train_img/frame0.png").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="data"):
        generate(tiny, "tiny", seed=1, progress=False)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        generate(user, "tiny", progress=False)
    assert (user / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("kw", [dict(preset="huge"), dict(height=62), dict(width=0),
                                dict(height=128, width=64), dict(height=-4),
                                dict(height=64.0), dict(seed=-1)])
def test_bad_arguments(tmp_path, kw):
    with pytest.raises(ValueError):
        generate(tmp_path / "x", **{"preset": "tiny", **kw}, progress=False)
    assert not (tmp_path / "x").exists()


def test_bad_preset_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="full.*small.*tiny"):
        generate(tmp_path / "x", "medium", progress=False)


def test_empty_target_dir_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    root = generate(tmp_path / "empty", "tiny", seed=3, progress=False)
    assert (root / "synthdance.json").exists()


def test_crash_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(job):
        raise RuntimeError("renderer crashed")
    monkeypatch.setattr(synth, "_render_chunk", boom)
    with pytest.raises(RuntimeError, match="crashed"):
        generate(tmp_path / "d", "tiny", workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
