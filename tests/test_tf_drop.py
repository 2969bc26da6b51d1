"""The teacher-forcing evidence the report quotes (lab4/report/loss/tf_drop.py) and the KL's share of the loss
(lab4/report/loss/dynamics.py), on run folders whose logs have known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(60)

FIELDS = ["kind", "epoch", "iter", "progress", "loss", "mse", "kl", "beta", "tfr"]
PER_EPOCH = 40  # iterations an epoch: more than the 25-iteration window on each side of the fall


def run_folder(root, name, seed, ratios, loss_per_epoch, kl_share=0.01, one_step=None, psnr=None):
    """A run whose ratio and loss are constant inside each epoch (``loss_per_epoch``), with a little noise
    that differs by seed, so that tests over seeds have a spread."""
    from lab4.run.folder import RunDir

    rng = np.random.default_rng(seed)
    run = RunDir(root / name)
    run.path.mkdir(parents=True)
    run.write_config({"name": name, "seed": seed, "num_epoch": len(ratios), "train_vi_len": 4})
    rows = []
    for e, (ratio, loss) in enumerate(zip(ratios, loss_per_epoch)):
        for i in range(PER_EPOCH):
            value = loss * (1 + 0.05 * rng.standard_normal())
            rows.append(
                dict(
                    kind="iter", epoch=e, iter=i, progress=e + i / PER_EPOCH, loss=value,
                    mse=value * (1 - kl_share), kl=1.0, beta=1.0, tfr=ratio,
                )
            )  # fmt: skip
    run.write_metrics(rows, FIELDS)
    run.write_summary({"name": name, "one_step_psnr": one_step, "mean_psnr": psnr})
    return run


def runs_with(tmp_path, decay_jump: float, seeds=range(4)):
    """Cyclical and Monotonic with the ratio falling 1 -> 0.5 -> 0, TF off at 0 throughout; the loss of the
    decaying runs multiplies by ``decay_jump`` when the ratio falls, TF off's stays."""
    runs = []
    for s in seeds:
        suffix = f"-s{s}" if s else ""
        for name in ("cyclical", "monotonic"):
            runs.append(run_folder(tmp_path, name + suffix, s, [1.0, 0.5, 0.0], [1.0, decay_jump, 1.0]))
        runs.append(run_folder(tmp_path, "tf-off" + suffix, s, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]))
    return runs


def test_the_loss_jump_where_the_ratio_falls_is_measured_against_tf_off(tmp_path):
    from lab4.report.loss import tf_drop

    m = tf_drop.tf_drop_macros(runs_with(tmp_path / "a", decay_jump=3.0))
    assert (m["TFDropCase"], m["TFDropEpoch"], m["TFDropFrom"], m["TFDropTo"]) == (
        "measured",
        "2",
        "1",
        "0.5",
    )
    assert m["TFJumpRuns"] == "8" and m["TFJumpVsOffCase"] == "higher", m
    lo, hi = (float(x) for x in m["TFJumpRange"].split("--"))
    assert 2.5 < lo < 3.0 < hi < 3.5  # each decaying run's jump is about 3
    lo, hi = (float(x) for x in m["TFOffJumpRange"].split("--"))
    assert 0.85 < lo < 1.0 < hi < 1.15  # TF off over the same iterations: about 1
    assert "decades" in m["TFJumpVsOffTest"]


def test_no_jump_is_not_a_difference_and_no_fall_says_so(tmp_path):
    from lab4.report.loss import tf_drop

    flat = tf_drop.tf_drop_macros(runs_with(tmp_path / "flat", decay_jump=1.0))
    assert flat["TFJumpVsOffCase"] == "notdist", flat
    one_seed = tf_drop.tf_drop_macros(runs_with(tmp_path / "one", decay_jump=3.0, seeds=[0]))
    assert one_seed["TFJumpVsOffCase"] == "untested"
    off_only = [run_folder(tmp_path / "off", "tf-off", 0, [0.0] * 3, [1.0] * 3)]
    assert tf_drop.tf_drop_macros(off_only)["TFDropCase"] == "nodrop"
    decay_only = [r for r in runs_with(tmp_path / "d", 3.0) if not r.name.startswith("tf-off")]
    m = tf_drop.tf_drop_macros(decay_only)
    assert (m["TFDropCase"], m["TFJumpVsOffCase"], m["TFOffJumpRange"]) == ("measured", "missing", "n/a")


def test_loss_jump_is_the_mean_after_over_the_mean_before(tmp_path):
    from lab4.report.loss.tf_drop import drop_epoch, loss_jump

    run = run_folder(tmp_path, "cyclical", 0, [1.0, 1.0, 0.5], [2.0, 1.0, 4.0])
    assert drop_epoch(run) == 2
    assert loss_jump(run, 2) == pytest.approx(4.0, rel=0.1)
    assert math.isnan(loss_jump(run, 7))  # no such epoch


@pytest.mark.parametrize(
    ("one_step", "rollout", "seeds", "case"),
    [
        ({"tf-off": 30.0, "cyclical": 33.0}, {"tf-off": 29.0, "cyclical": 27.0}, 4, "bias"),
        ({"tf-off": 30.0, "cyclical": 33.0}, {"tf-off": 29.0, "cyclical": 27.0}, 1, "means"),  # untested
        ({"tf-off": 34.0, "cyclical": 33.0}, {"tf-off": 29.0, "cyclical": 27.0}, 4, "none"),
        ({"cyclical": 33.0}, {"cyclical": 27.0}, 4, "unknown"),
    ],
)
def test_exposure_bias_needs_the_worst_one_step_and_the_best_rollout(
    tmp_path, one_step, rollout, seeds, case
):
    """TF off's one-step PSNR below Cyclical's over the seeds (each seed a little apart, so the paired test
    has a spread) and its rollout the best: exposure bias; the means alone, without the test: "means"."""
    from lab4.report.loss.tf_drop import exposure_macros

    runs = [
        run_folder(
            tmp_path, name + (f"-s{k}" if k else ""), k, [0.0] * 3, [1.0] * 3,
            one_step=one_step[name] + (0.1 if name == "tf-off" else 0.05) * k, psnr=rollout[name],
        )
        for name in one_step
        for k in range(seeds)
    ]  # fmt: skip
    assert exposure_macros(runs)["ExposureCase"] == case


def test_the_kl_share_of_the_loss(tmp_path):
    from lab4.report.loss.dynamics import kl_share, kl_share_macros

    small = run_folder(tmp_path, "none", 0, [1.0] * 3, [1.0] * 3, kl_share=0.02)
    assert kl_share(small, first=False) == pytest.approx(0.02)
    assert kl_share_macros([small]) == {
        "KLShareCase": "small",
        "KLShareFirstPct": "2.0",
        "KLShareLatePct": "2.0",
    }
    large = run_folder(tmp_path, "monotonic", 0, [1.0] * 3, [1.0] * 3, kl_share=0.3)
    assert kl_share_macros([small, large])["KLShareCase"] == "large"
    assert kl_share_macros([])["KLShareCase"] == "unknown"
