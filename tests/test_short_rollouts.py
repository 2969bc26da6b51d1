"""lab4.short_rollouts, the report's primary score: short rollouts from start points spread along the
validation video, each with two z draws and z = 0 in one batch, the same draws for every run; and what a
trained run records of it (summary.json, short_psnr.csv)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lab4 import short_rollouts as SR
from lab4.run.folder import RunDir

torch.set_num_threads(1)  # 2 shared cores: one thread per process is far faster under contention
HORIZON, STARTS = 8, 4  # the tiny validation video has 24 frames: 4 starts of 8 frames fit in it


@pytest.fixture(scope="module")
def val(tiny_root):
    from lab4.config import make_config
    from lab4.datasets.official import load_split

    cfg = make_config("tiny")
    return load_split(tiny_root, "val", cfg.frame_H, cfg.frame_W, progress=False)


def tiny_model(seed: int):
    from lab4.config import make_config
    from lab4.train import build_model

    torch.manual_seed(seed)
    return build_model(make_config("tiny")).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model(0)


def test_start_points_are_spread_evenly_inside_the_video():
    points = SR.start_points(630, 32, 16)
    assert (
        len(points) == 16 and points[0] == 0 and points[-1] == 630 - 1 - 32
    )  # the last rollout ends the video
    assert set(np.diff(points)) <= {39, 40}  # 597 / 15 = 39.8 apart
    assert SR.start_points(24, HORIZON, STARTS) == [0, 5, 10, 15]
    assert SR.start_points(33, 32, 16) == [0]  # room for one rollout only
    assert SR.start_points(12, 5, 16) == [0, 1, 2, 3, 4, 5, 6]  # fewer places than starts: each once
    for frames, horizon in ((32, 32), (5, 10)):
        with pytest.raises(ValueError, match=f"a video of {frames} frames is too short"):
            SR.start_points(frames, horizon)


def test_short_rollouts_shapes_and_the_z0_draw(model, val):
    from lab4.datasets.official import to_float
    from lab4.evaluate import psnr_per_frame

    res = SR.short_rollouts(model, val, horizon=HORIZON, starts=STARTS, draws=2)
    assert res["psnr"].shape == (STARTS, 3, HORIZON) and res["baseline"].shape == (STARTS, HORIZON)
    assert res["starts"] == [0, 5, 10, 15] and np.isfinite(res["psnr"]).all()
    # the last draw is z = 0: the model's own deterministic rollout from the same start
    s = res["starts"][2]
    clip = slice(s, s + HORIZON + 1)
    gt, poses = to_float(val.frames[clip]), to_float(val.poses[clip])
    with torch.no_grad():
        pred = model.rollout(gt[:1], poses[None], zero_z=True)[0, 1:].clamp(0, 1)
    z0 = psnr_per_frame(pred, gt[1:]).numpy()
    np.testing.assert_allclose(res["psnr"][2, -1], z0, atol=1e-3)
    # the copy baseline: the start frame repeated
    copy = psnr_per_frame(gt[:1].expand(HORIZON, -1, -1, -1), gt[1:]).numpy()
    np.testing.assert_allclose(res["baseline"][2], copy, rtol=1e-6)
    # a video shorter than the horizon is rolled out over its whole length, from its first frame
    whole = SR.short_rollouts(model, val, starts=STARTS, draws=1)
    assert whole["psnr"].shape == (1, 2, len(val) - 1) and whole["starts"] == [0]
    assert whole["diversity"] is None  # one draw: nothing to differ from


def test_the_diversity_is_the_mse_between_two_draws_and_zero_when_z_is_ignored(model, val, monkeypatch):
    """Two draws of the same start differ only through z: the diversity is their frames' MSE, as recomputed
    from the rollout, and a model whose decoder ignores z has none."""
    frames = []

    def recording(prev, pose_feat, z):
        out = model.rollout_step(prev, pose_feat, z)
        frames.append(out.detach().float().clamp(0, 1))
        return out

    res = SR.short_rollouts(model, val, HORIZON, STARTS, draws=2, step_fn=recording)
    assert res["diversity"].shape == (STARTS, HORIZON) and (res["diversity"] >= 0).all()
    pred = torch.stack(frames, 1).unflatten(0, (STARTS, 3))  # (S, draws + 1, T, 3, H, W)
    mse = (pred[:, 0] - pred[:, 1]).pow(2).mean((-3, -2, -1))  # (S, T)
    np.testing.assert_allclose(res["diversity"], mse.numpy(), rtol=1e-4, atol=1e-9)
    assert res["diversity"].mean() > 0  # the untrained model's decoder reads z
    monkeypatch.setattr(
        model,
        "rollout_step",
        lambda prev, pose_feat, z: model.__class__.rollout_step(model, prev, pose_feat, torch.zeros_like(z)),
    )
    ignored = SR.short_rollouts(model, val, HORIZON, STARTS, draws=2)
    assert np.abs(ignored["diversity"]).max() == 0.0


def test_every_run_is_scored_on_the_same_draws(model, val, monkeypatch):
    """Two models see the very same z at every step (SCORE_SEED), so the draws are common to both sides of a
    comparison; the same model scores the same twice; the z = 0 rollout does not depend on the seed."""
    seen = {}

    def recording(m, key):
        def step(prev, pose_feat, z):
            seen.setdefault(key, []).append(z.clone())
            return m.rollout_step(prev, pose_feat, z)

        return step

    other = tiny_model(1)
    first = SR.short_rollouts(model, val, HORIZON, STARTS, step_fn=recording(model, "a"))
    SR.short_rollouts(other, val, HORIZON, STARTS, step_fn=recording(other, "b"))
    assert len(seen["a"]) == HORIZON and all(torch.equal(x, y) for x, y in zip(seen["a"], seen["b"]))
    z = torch.stack(seen["a"]).unflatten(1, (STARTS, 3))  # (steps, starts, draws + 1, N, H, W)
    assert not z[:, :, -1].any() and not torch.equal(z[:, :, 0], z[:, :, 1])  # z = 0 last; two draws
    again = SR.short_rollouts(model, val, HORIZON, STARTS)
    assert np.array_equal(again["psnr"], first["psnr"]) and np.array_equal(
        again["baseline"], first["baseline"]
    )
    monkeypatch.setattr(SR, "SCORE_SEED", SR.SCORE_SEED + 1)
    reseeded = SR.short_rollouts(model, val, HORIZON, STARTS)
    assert np.array_equal(reseeded["psnr"][:, -1], first["psnr"][:, -1])  # z = 0: no draw to change
    assert not np.allclose(reseeded["psnr"][:, :-1], first["psnr"][:, :-1])  # the drawn ones move


def test_short_scores_are_the_means_they_claim():
    rng = np.random.default_rng(0)
    psnr, baseline = rng.normal(25.0, 2.0, (5, 3, 40)), rng.normal(20.0, 1.0, (5, 40))
    res = dict(psnr=psnr, baseline=baseline, starts=[0, 10, 20, 30, 40])
    s = SR.short_scores(res, horizon=32)
    drawn = psnr[:, :2, :32]
    assert s["short_psnr"] == pytest.approx(drawn.mean())  # the drawn rollouts, every start, 32 frames
    assert s["short_psnr_z0"] == pytest.approx(psnr[:, 2, :32].mean())
    assert s["short_psnr_early"] == pytest.approx(psnr[:, :2, : SR.EARLY].mean())
    assert s["short_baseline_psnr"] == pytest.approx(baseline[:, :32].mean())
    assert (s["short_horizon"], s["short_starts"], s["short_draws"]) == (32, 5, 2)
    per_draw = [psnr[:, k, :32].mean() for k in range(2)]
    assert s["short_psnr_draw_sd"] == pytest.approx(np.std(per_draw, ddof=1))
    # best-of-K: at each start the draw that scored higher over its 32 frames
    assert s["short_psnr_best"] == pytest.approx(
        np.mean([max(drawn[i, 0].mean(), drawn[i, 1].mean()) for i in range(5)])
    )
    assert s["short_psnr_best"] >= s["short_psnr"] and s["short_diversity"] is None  # no diversity given
    res["diversity"] = np.full((5, 40), 2e-3)
    assert SR.short_scores(res, horizon=32)["short_diversity"] == pytest.approx(2e-3)
    one = SR.short_scores(dict(psnr=psnr[:, 1:], baseline=baseline, starts=res["starts"]), horizon=32)
    assert one["short_draws"] == 1 and one["short_psnr_draw_sd"] is None  # one draw has no spread
    rows = SR.score_rows(res, horizon=32)
    assert len(rows) == 5 * 3 and [r["draw"] for r in rows[:3]] == ["0", "1", "z0"]
    assert rows[4] == dict(
        start=10,
        draw="1",
        psnr=round(float(psnr[1, 1, :32].mean()), 4),
        psnr_early=round(float(psnr[1, 1, : SR.EARLY].mean()), 4),
    )
    assert np.mean([r["psnr"] for r in rows if r["draw"] != "z0"]) == pytest.approx(s["short_psnr"], abs=1e-4)


@pytest.mark.timeout(300)  # a tiny training run, its validation and the summary: 7 s alone, minutes when busy
def test_a_trained_run_records_the_short_rollout_score(tiny_root, tmp_path):
    """`lab4 train` on the tiny profile: summary.json carries the short-rollout numbers and short_psnr.csv
    holds one row per start point and draw, which average to them."""
    from lab4.cli import main

    run = tmp_path / "run"
    small = ["--F_dim", "8", "--L_dim", "4", "--N_dim", "4", "--D_out_dim", "8", "--device", "cpu"]
    args = ["train", "--profile", "tiny", "--data-root", str(tiny_root), "--run-dir", str(run)]
    assert main([*args, "--num-epoch", "1", "--predict", "false", "--val-draws", "1", *small]) == 0
    summary = json.loads((run / RunDir.SUMMARY).read_text())
    for key in ("short_psnr", "short_psnr_z0", "short_psnr_early", "short_baseline_psnr"):
        assert np.isfinite(summary[key]), key
    starts, draws = summary["short_starts"], summary["short_draws"]
    assert (draws, summary["short_horizon"]) == (SR.DRAWS, 23)  # the tiny video: 24 frames, one start
    rows = RunDir(run).short()
    assert len(rows) == starts * (draws + 1) and set(rows["draw"]) == {*map(str, range(draws)), "z0"}
    drawn = rows[rows["draw"] != "z0"]
    assert drawn["psnr"].mean() == pytest.approx(summary["short_psnr"], abs=1e-3)
    assert rows[rows["draw"] == "z0"]["psnr"].mean() == pytest.approx(summary["short_psnr_z0"], abs=1e-3)
    assert RunDir(run).number("short_psnr") == summary["short_psnr"]  # what the report's comparisons read


def test_the_summary_keeps_the_digits_of_small_numbers():
    """summary.json rounds to four decimals, but a number below 0.01 (the draws' MSE, ~1e-5) keeps four
    significant digits instead of becoming 0."""
    from lab4.run.after_training import _number

    assert _number(1.2239425e-05) == 1.224e-05 and _number(20.812534) == 20.8125
    assert _number(0.0) == 0.0 and _number(float("nan")) is None and _number(None) is None
