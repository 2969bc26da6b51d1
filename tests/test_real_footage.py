"""The real-footage dataset (lab4/datasets/real_footage.py): condition images, the official layout, loading,
errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lab4.cli import main
from lab4.datasets.official import load_split, scan_pairs, scan_test, split_dirs
from lab4.datasets.real_footage import CELL, VTEST, build, silhouettes
from lab4.util.errors import Lab4Error

try:
    import av  # noqa: F401

    HAVE_AV = True
except ImportError:
    HAVE_AV = False
needs_av = pytest.mark.skipif(not HAVE_AV, reason="PyAV missing: pip install -e .")
needs_vtest = pytest.mark.skipif(
    not (HAVE_AV and VTEST.is_file()),
    reason=f"{VTEST} or PyAV missing: run `make real-footage` and `make setup`",
)


def test_silhouette_marks_exactly_the_cells_that_move():
    bg = np.zeros((8, 16, 3), np.float32)  # black scene
    frames = np.zeros((2, 8, 16, 3), np.uint8)
    frames[1, 4:8, 8:12] = 255  # one white cell in frame 1 only
    cond = silhouettes(frames, bg)  # (2, 8, 16, 3)
    assert cond.dtype == np.uint8 and cond.shape == frames.shape
    assert not cond[0].any()  # a still frame has no silhouette
    want = np.zeros((8, 16), bool)
    want[4:8, 8:12] = True
    assert (cond[1, ..., 0] == 255).tolist() == want.tolist()
    assert (cond[1, ..., 0] == cond[1, ..., 2]).all()  # white on black


def test_silhouette_ignores_noise_below_the_threshold():
    bg = np.full((4, 8, 3), 0.5, np.float32)
    frames = np.full((1, 4, 8, 3), 128 + 5, np.uint8)  # +5/255 everywhere: noise, not motion
    assert not silhouettes(frames, bg).any()


def test_missing_video_is_one_line_error(tmp_path):
    with pytest.raises(Lab4Error, match="nowhere.avi: video not found"):
        build(tmp_path / "out", video=tmp_path / "nowhere.avi", progress=False)
    assert not (tmp_path / "out").exists()


@needs_vtest
def test_build_writes_the_official_layout_and_loads(tmp_path):
    root = build(tmp_path / "real", frames=40, val_frames=24, progress=False)
    info = json.loads((root / "real_footage.json").read_text())
    assert (info["n_train"], info["n_val"], info["height"], info["width"]) == (16, 24, 64, 128)
    assert [len(scan_pairs(*split_dirs(root, s))) for s in ("train", "val")] == [16, 24]
    [(first, poses)] = scan_test(root)
    assert first.name == "frame0.png" and len(poses) == 24
    train, val = load_split(root, "train", progress=False), load_split(root, "val", progress=False)
    assert train.frames.shape == (16, 3, 32, 64) and val.poses.shape == (24, 3, 32, 64)
    assert train.frames.float().std() > 20  # a real scene, not a blank
    label = np.asarray(Image.open(root / "val" / "val_label" / "frame0.png"))  # (64, 128, 3) as written
    assert label.shape == (64, 128, 3) and set(np.unique(label)) <= {0, 255}
    assert val.poses.float().mean() > 0  # the walkers show up in the conditions
    assert not (val.frames[0] == train.frames[-1]).all()  # val starts where train ends, not a copy
    # the same request again is a no-op; another one into the same folder is refused
    stamp = (root / "real_footage.json").stat().st_mtime_ns
    assert build(root, frames=40, val_frames=24, progress=False) == root
    assert (root / "real_footage.json").stat().st_mtime_ns == stamp
    with pytest.raises(Lab4Error, match="refusing to touch it"):
        build(root, frames=40, val_frames=20, progress=False)


@needs_vtest
def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(["real-footage", "build", "--out", str(tmp_path / "r"), "--frames", "10", "--val-frames", "10"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("lab4 real-footage: error:") and "too few" in err and err.count("\n") == 1


@needs_av
def test_cli_builds_from_any_video(tmp_path, capsys):
    import av

    video = tmp_path / "moving.avi"
    with av.open(str(video), "w") as out:  # a white square crossing a grey scene
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 64, "yuvj420p"
        for t in range(12):
            img = np.full((64, 128, 3), 90, np.uint8)
            img[24:40, 8 * t : 8 * t + 16] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    assert (
        main(
            [
                "real-footage",
                "build",
                "--out",
                str(tmp_path / "r"),
                "--video",
                str(video),
                "--val-frames",
                "4",
            ]
        )
        == 0
    )
    assert "8 train + 4 val frames" in capsys.readouterr().out
    val = load_split(tmp_path / "r", "val", H=64, W=128, progress=False)
    cols = np.flatnonzero(np.asarray(val.poses[0, 0]).any(axis=0))  # the square of frame 8: x 64..80
    assert cols.min() >= 64 - CELL and cols.max() < 80 + CELL
