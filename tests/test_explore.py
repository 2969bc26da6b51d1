"""lab4.report.explore: runs are found (or the user is told how to make one), frames become sharp PNGs, and
the spread over z samples is zero exactly when z cannot matter."""

from __future__ import annotations

import io
import os
import time

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from lab4.config import make_config
from lab4.datasets.official import load_split
from lab4.evaluate import validate
from lab4.grid import execution
from lab4.report import explore
from lab4.train import build_model


@pytest.fixture(scope="module")
def model_and_val(tiny_root):
    cfg = make_config("tiny", data_root=str(tiny_root))
    torch.manual_seed(0)
    model = build_model(cfg).eval()  # untrained: its decoder certainly reads z
    return model, load_split(tiny_root, "val", cfg.frame_H, cfg.frame_W, progress=False)


def test_z_spread_measures_what_z_changes(model_and_val):
    model, val = model_and_val
    spread = explore.z_spread(model, val, seeds=[3, 4, 5], max_frames=8)
    assert (
        spread["psnr"].shape == (3, 7)
        and spread["psnr_std"].shape == (7,)
        and spread["pixel_std"].shape == (7,)
    )
    assert spread["frame"].tolist() == list(range(1, 8))
    assert float(spread["pixel_std"].min()) > 0  # three different z: the frames differ
    one = validate(model, val, seed=4, max_frames=8)
    assert torch.allclose(spread["psnr"][1], one["psnr"])  # sample k is exactly the rollout with seed k
    assert torch.allclose(spread["psnr_mean"], spread["psnr"].mean(0))
    line = explore.describe_spread(spread)
    assert line.startswith("z spread over 3 samples") and "dB" in line


def test_z_spread_is_zero_when_z_is_the_same(model_and_val):
    model, val = model_and_val
    spread = explore.z_spread(model, val, seeds=[7, 7], max_frames=6)
    assert float(spread["psnr_std"].abs().max()) == 0.0 and float(spread["pixel_std"].abs().max()) == 0.0
    with pytest.raises(ValueError):
        explore.z_spread(model, val, seeds=[1])


def test_frame_png_is_the_frame_upscaled():
    frame = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    img = np.asarray(Image.open(io.BytesIO(explore.frame_png(frame, scale=3))))
    assert img.shape == (12, 15, 3)
    assert (img[::3, ::3] == frame.permute(1, 2, 0).numpy()).all() and (
        img[2::3, 2::3] == img[::3, ::3]
    ).all()
    as_float = np.asarray(Image.open(io.BytesIO(explore.frame_png(frame.float() / 255, scale=1))))
    assert (as_float == frame.permute(1, 2, 0).numpy()).all()


def test_runs_are_found_newest_first_and_checkpoints_last_first(tmp_path, monkeypatch):
    for name, age in [("quick/a", 20), ("quick/b", 10), (".ipynb_checkpoints/c", 0)]:
        (tmp_path / name).mkdir(parents=True)
        for ckpt in ("epoch_1.pt", "last.pt"):
            (tmp_path / name / ckpt).write_bytes(b"")
            os.utime(tmp_path / name / ckpt, (time.time() - age,) * 2)
    (tmp_path / "empty").mkdir()
    found = explore.find_runs(tmp_path)
    assert list(found) == ["quick/a", "quick/b"] and found["quick/a"] == tmp_path / "quick" / "a"
    assert explore.newest(found) == "quick/b"
    assert explore.checkpoints(found["quick/a"]) == ["last.pt", "epoch_1.pt"]
    monkeypatch.setenv(explore.RUNS_ENV, str(tmp_path))
    assert explore.runs_folder("") == tmp_path and explore.runs_folder(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv(explore.RUNS_ENV)
    assert explore.runs_folder("").name == "runs" and explore.runs_folder("").is_absolute()


def test_explore_notebook_without_runs_says_how_to_make_one(tmp_path):
    (tmp_path / "runs").mkdir()
    out = tmp_path / "04.ipynb"
    execution.execute_notebook(
        execution.NOTEBOOKS / "04_explore.ipynb", out, dict(runs_dir=str(tmp_path / "runs"))
    )
    nb = nbformat.read(str(out), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "No runs yet" in text and "02_train.ipynb" in text and "make demo" in text
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
