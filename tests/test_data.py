"""Loading the official layout: shapes, numeric order, the cache, every bad input, PNG modes, clips."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lab4.datasets import official as D
from lab4.datasets.synth import PRESETS
from lab4.util.errors import Lab4Error

TINY = PRESETS["tiny"]


def _snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _expected(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((64, 32), Image.BILINEAR))


@pytest.fixture
def copy(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB4_CACHE", str(tmp_path / "cache"))
    dst = tmp_path / "sd"
    shutil.copytree(tiny_root, dst)
    return dst


def test_load_split_shapes_numeric_order_and_read_only(tiny_root):
    before = _snapshot(tiny_root)
    tr = D.load_split(tiny_root, "train", progress=False)
    val = D.load_split(tiny_root, "val", progress=False)
    assert tr.frames.shape == tr.poses.shape == (TINY["n_train"], 3, 32, 64)
    assert val.frames.shape == (TINY["n_val"], 3, 32, 64)
    assert tr.frames.dtype == torch.uint8 and tr.poses.dtype == torch.uint8
    img = tiny_root / "train" / "train_img"
    for i in (0, 2, 9, 10, 11, 20, TINY["n_train"] - 1):  # frame10 comes after frame9, not after frame1
        assert np.array_equal(tr.frames[i].permute(1, 2, 0).numpy(), _expected(img / f"frame{i}.png")), i
        assert np.array_equal(
            tr.poses[i].permute(1, 2, 0).numpy(),
            _expected(tiny_root / "train" / "train_label" / f"frame{i}.png"),
        ), i
    test = D.load_test(tiny_root, progress=False)
    assert len(test) == TINY["n_test"]
    first, poses = test[0]
    assert first.shape == (3, 32, 64) and poses.shape == (TINY["test_len"], 3, 32, 64)
    assert _snapshot(tiny_root) == before  # nothing in the dataset touched
    assert not list(tiny_root.rglob("*.pt"))


def test_cache_reused_under_lab4_cache_and_rebuilt_on_change(copy, tmp_path, monkeypatch):
    before = _snapshot(copy)
    calls = []
    real = D.decode_many

    def counting(paths, *a, **k):
        calls.append(len(paths))
        return real(paths, *a, **k)

    monkeypatch.setattr(D, "decode_many", counting)
    first = D.load_split(copy, "train", progress=False)
    assert calls, "the first load decodes"
    cached = list((tmp_path / "cache").glob("*.pt"))
    assert len(cached) == 1
    assert _snapshot(copy) == before  # the cache is not written into the dataset

    def boom(*a, **k):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(D, "decode_many", boom)
    second = D.load_split(copy, "train", progress=False)
    assert torch.equal(first.frames, second.frames) and torch.equal(first.poses, second.poses)

    # rewrite one frame with other content: the cache must be rebuilt and show the new pixels
    monkeypatch.setattr(D, "decode_many", counting)
    calls.clear()
    target = copy / "train" / "train_img" / "frame5.png"
    shutil.copyfile(copy / "train" / "train_img" / "frame40.png", target)
    os.utime(target, ns=(1, 1))  # a different mtime in any case
    third = D.load_split(copy, "train", progress=False)
    assert calls
    assert torch.equal(third.frames[5], first.frames[40])
    assert not torch.equal(third.frames[5], first.frames[5])


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB4_CACHE", str(tmp_path / "elsewhere"))
    assert D.cache_dir() == tmp_path / "elsewhere"


def test_lab4_home_holds_data_and_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB4_CACHE")
    monkeypatch.setenv("LAB4_HOME", str(tmp_path / "home"))
    assert D.cache_dir() == tmp_path / "home" / "data" / "cache"
    assert D.default_synth_root("tiny") == tmp_path / "home" / "data" / "synthdance-tiny"


def test_atomic_writes_follow_the_umask_and_importing_lab4_leaves_it_alone(tmp_path, monkeypatch):
    import importlib

    import lab4.checkpoint
    import lab4.util.files

    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: (calls.append(m), real(m))[1])
    importlib.reload(lab4.util.files)
    importlib.reload(lab4.checkpoint)  # the module that used to set the umask at import
    assert calls == []
    monkeypatch.undo()
    from lab4.util.files import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640 and (tmp_path / "f.txt").read_text() == "x"


def _err(fn, *args, **kw) -> str:
    with pytest.raises(Lab4Error) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_folder(tmp_path):
    msg = _err(D.load_split, tmp_path / "nope", "train", progress=False)
    assert str(tmp_path / "nope") in msg and "missing folder" in msg
    msg = _err(D.resolve_data_root, str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in msg


def test_missing_split_folder(copy):
    shutil.rmtree(copy / "val" / "val_label")
    msg = _err(D.load_split, copy, "val", progress=False)
    assert str(copy / "val" / "val_label") in msg


def test_no_frames(copy):
    for d in ("train_img", "train_label"):
        shutil.rmtree(copy / "train" / d)
        (copy / "train" / d).mkdir()
    msg = _err(D.load_split, copy, "train", progress=False)
    assert str(copy / "train" / "train_img") in msg and "no frame" in msg


def test_image_without_label(copy):
    (copy / "train" / "train_label" / "frame7.png").unlink()
    msg = _err(D.load_split, copy, "train", progress=False)
    assert str(copy / "train" / "train_img" / "frame7.png") in msg and "no pose" in msg


def test_label_without_image(copy):
    (copy / "train" / "train_img" / "frame12.png").unlink()
    msg = _err(D.load_split, copy, "train", progress=False)
    assert str(copy / "train" / "train_label" / "frame12.png") in msg and "no frame" in msg


@pytest.mark.parametrize("name", ["img_3.png", "frame.png", "frame3.jpg", "frame-1.png", "Frame3.png"])
def test_bad_file_name(copy, name):
    bad = copy / "train" / "train_img" / name
    shutil.copyfile(copy / "train" / "train_img" / "frame3.png", bad)
    msg = _err(D.load_split, copy, "train", progress=False)
    assert str(bad) in msg and "frame<N>.png" in msg


def test_truncated_png(copy):
    p = copy / "train" / "train_img" / "frame3.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    msg = _err(D.load_split, copy, "train", progress=False)
    assert str(p) in msg and "PNG" in msg


@pytest.mark.parametrize("kind", ["jpeg", "text"])
def test_non_png_named_png(copy, kind):
    p = copy / "val" / "val_label" / "frame4.png"
    if kind == "jpeg":
        Image.new("RGB", (128, 64), (10, 200, 30)).save(p, format="JPEG")
    else:
        p.write_text("not an image at all\n")
    msg = _err(D.load_split, copy, "val", progress=False)
    assert str(p) in msg and "PNG" in msg


def test_fewer_frames_than_one_clip(tmp_path):
    msg = _err(D.ClipSampler, 15, 16, 2, source=str(tmp_path / "mydata"))
    assert str(tmp_path / "mydata") in msg and "15" in msg
    assert D.ClipSampler(16, 16, 2).n_clips == 1


def test_short_training_set_through_trainer(copy, tmp_path):
    """A dataset with fewer frames than one clip stops training with a Lab4Error naming the dataset."""
    from lab4.config import make_config
    from lab4.train import Trainer

    for n in range(10, TINY["n_train"]):
        (copy / "train" / "train_img" / f"frame{n}.png").unlink()
        (copy / "train" / "train_label" / f"frame{n}.png").unlink()
    cfg = make_config("tiny", data_root=str(copy), run_dir=str(tmp_path / "run"))
    msg = _err(Trainer, cfg)
    assert str(copy) in msg and "fewer than one clip" in msg


def test_test_sequence_without_first_frame(copy):
    d = copy / "test" / "test_img" / "2"
    for p in d.iterdir():
        p.unlink()
    msg = _err(D.load_test, copy, progress=False)
    assert str(d) in msg and "first frame" in msg


def test_test_sequence_without_poses(copy):
    d = copy / "test" / "test_label" / "1"
    shutil.rmtree(d)
    d.mkdir()
    msg = _err(D.load_test, copy, progress=False)
    assert str(d) in msg and "pose" in msg


def test_missing_test_folder(copy):
    shutil.rmtree(copy / "test" / "test_img")
    msg = _err(D.load_test, copy, progress=False)
    assert str(copy / "test" / "test_img") in msg


def test_png_modes_are_converted_to_rgb(copy):
    img = copy / "train" / "train_img"
    with Image.open(img / "frame0.png") as im:
        rgb = im.convert("RGB")
    rgb.convert("L").save(img / "frame0.png")
    rgb.convert("P", palette=Image.ADAPTIVE, colors=16).save(img / "frame1.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(img / "frame2.png")
    rgb.convert("LA").save(img / "frame3.png")
    modes = []
    for i in range(4):
        with Image.open(img / f"frame{i}.png") as im:
            modes.append(im.mode)
    assert modes == ["L", "P", "RGBA", "LA"]
    split = D.load_split(copy, "train", progress=False)
    for i in range(4):
        got = split.frames[i].permute(1, 2, 0).numpy()
        assert got.shape == (32, 64, 3)
        assert np.array_equal(got, _expected(img / f"frame{i}.png")), i
    grey = split.frames[0]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert grey.float().std() > 0
    # RGBA keeps the colour channels (alpha dropped, not composited)
    assert np.array_equal(
        split.frames[2].permute(1, 2, 0).numpy(), np.asarray(rgb.resize((64, 32), Image.BILINEAR))
    )


def test_clip_sampler_non_overlapping_shuffled_deterministic():
    n_frames, T, bs = 16 * 20 + 5, 16, 3
    s = D.ClipSampler(n_frames, T, bs, seed=1)
    assert s.n_clips == 20
    epochs = [s.batches() for _ in range(3)]
    for batches in epochs:
        assert all(len(b) <= bs for b in batches) and all(len(b) == bs for b in batches[:-1])
        starts = torch.cat(batches).tolist()
        assert sorted(starts) == list(range(0, 320, 16))  # every clip once, no overlap
    orders = [torch.cat(b).tolist() for b in epochs]
    assert orders[0] != sorted(orders[0])  # shuffled
    assert orders[0] != orders[1] != orders[2]  # reshuffled each epoch
    s2 = D.ClipSampler(n_frames, T, bs, seed=1)
    assert [torch.cat(s2.batches()).tolist() for _ in range(3)] == orders  # deterministic with the seed
    s3 = D.ClipSampler(n_frames, T, bs, seed=2)
    assert torch.cat(s3.batches()).tolist() != orders[0]


def test_clip_sampler_partial_and_gather():
    s = D.ClipSampler(16 * 20, 16, 4, seed=0)
    half = torch.cat(s.batches(0.5)).tolist()
    assert sorted(half) == list(range(0, 160, 16))  # the first half of the clips
    assert len(torch.cat(s.batches(0.01))) == 1  # at least one clip
    data = torch.arange(16 * 20).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    starts = torch.tensor([32, 0, 304])
    clips = s.gather(data, starts)
    assert clips.shape == (3, 16, 3, 2, 2)
    for b, st in enumerate(starts.tolist()):
        assert clips[b, :, 0, 0, 0].tolist() == list(range(st, st + 16))


def test_to_float_scaling():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(D.to_float(x), torch.tensor([0.0, 0.2, 1.0]))
    assert x.tolist() == [0, 51, 255]  # input not modified
