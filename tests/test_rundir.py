"""lab4.run.folder: the one reader and writer of a run folder."""

from __future__ import annotations

import json
import math

import pandas as pd

from lab4.config import make_config
from lab4.run.folder import RunDir, best_run, group, load_runs, strategy_of
from lab4.schedules import KL_STRATEGIES
from lab4.train_state import METRIC_FIELDS

ROWS = [
    dict(
        kind="iter",
        epoch=0,
        iter=0,
        progress=0.0,
        loss=0.25,
        mse=0.125,
        kl=3.5,
        grad_norm=1.75,
        beta=0.0,
        tfr=1.0,
        teacher_forcing=1,
        lr=0.001,
    ),
    dict(
        kind="iter",
        epoch=0,
        iter=1,
        progress=0.5,
        loss=float("nan"),
        mse=0.1,
        kl=2.0,
        grad_norm=1.5,
        beta=0.5,
        tfr=1.0,
        teacher_forcing=0,
        lr=0.001,
    ),
    dict(
        kind="epoch",
        epoch=0,
        iter=2,
        progress=1,
        loss=0.2,
        mse=0.1,
        kl=2.75,
        grad_norm=1.6,
        beta=0.5,
        tfr=1.0,
        teacher_forcing=0.5,
        lr=0.001,
        val_psnr=21.5,
        val_ssim=0.75,
        baseline_psnr=18.0,
        seconds=1.25,
        frames_per_s=12.0,
    ),
    dict(
        kind="epoch",
        epoch=1,
        iter=2,
        progress=2,
        loss=0.1,
        mse=0.05,
        kl=1.5,
        grad_norm=1.0,
        beta=1.0,
        tfr=0.5,
        teacher_forcing=1.0,
        lr=0.0005,
        seconds=1.5,
        frames_per_s=11.0,
    ),
]


def test_metrics_round_trip_typed(tmp_path):
    """Rows written and read back are the Trainer's numbers (blanks None), and rewriting them changes
    nothing."""
    rd = RunDir(tmp_path)
    rd.write_metrics(ROWS, METRIC_FIELDS)
    text = (tmp_path / RunDir.METRICS).read_text()
    rows = rd.metric_rows()
    assert len(rows) == 4 and set(rows[0]) == set(METRIC_FIELDS)
    for want, got in zip(ROWS, rows):
        for k in METRIC_FIELDS:
            v = want.get(k)
            if v is None:
                assert got[k] is None, k
            elif isinstance(v, float) and math.isnan(v):
                assert math.isnan(got[k])
            else:
                assert got[k] == v and type(got[k]) is type(v), (k, got[k], v)
    assert (
        isinstance(rows[0]["epoch"], int) and isinstance(rows[0]["loss"], float) and rows[0]["kind"] == "iter"
    )
    rd.write_metrics(rows, METRIC_FIELDS)  # a resume rewrites what it read: the same file
    assert (tmp_path / RunDir.METRICS).read_text() == text
    df = rd.metrics()
    assert all(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns if c != "kind")
    assert list(rd.epoch_metrics()["epoch"]) == [0, 1] and len(rd.iter_metrics()) == 2
    assert rd.epochs_done() == 2 and rd.last_val_psnr() == 21.5


def test_epochs_done_on_missing_partial_and_growing_files(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert (rd.epochs_done(), rd.last_val_psnr(), rd.metric_rows()) == (0, None, [])
    assert rd.metrics().empty and rd.epoch_metrics().empty and rd.psnr() is None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / RunDir.METRICS).write_text("")
    assert rd.epochs_done() == 0 and rd.metrics().empty
    rd.write_metrics(ROWS[:3], METRIC_FIELDS)
    assert rd.epochs_done() == 1 and len(rd.metrics()) == 3
    rd.write_metrics(ROWS, METRIC_FIELDS)  # seen at the next look, by the cached frame too
    assert rd.epochs_done() == 2 and len(rd.metrics()) == 4
    with open(tmp_path / "run" / RunDir.METRICS, "a") as f:
        f.write("epoch,2,2,3")  # a torn last row is not an epoch
    assert rd.epochs_done() == 2 and rd.last_val_psnr() == 21.5


def test_number_falls_back_summary_then_val_summary_then_files(tmp_path):
    rd = RunDir(tmp_path)
    rd.write_config(make_config("tiny", num_epoch=5), dataset={"root": "/data"})
    assert rd.config()["dataset"] == {"root": "/data"} and rd.load_config().num_epoch == 5
    assert math.isnan(rd.number("mean_psnr")) and rd.number("epochs") == 5.0  # nothing trained yet
    rd.write_metrics(ROWS, METRIC_FIELDS)
    assert rd.number("mean_psnr") == 21.5 and rd.number("mean_ssim") == 0.75 and rd.number("epochs") == 2.0
    assert rd.number("wall_seconds") == 2.75 and math.isnan(rd.number("active_units"))
    pd.DataFrame(dict(frame=[1, 2], psnr=[20.0, 22.0], ssim=[0.5, 0.7], baseline_psnr=[17.0, 19.0])).to_csv(
        tmp_path / RunDir.PSNR, index=False
    )
    assert rd.number("mean_psnr") == 21.0 and rd.number("baseline_mean_psnr") == 18.0
    assert len(rd.psnr()) == 2
    rd.write_val_summary(dict(name="x", mean_psnr=23.0, active_units=3, mean_psnr_z0=22.5))
    assert (rd.number("mean_psnr"), rd.number("active_units"), rd.number("mean_psnr_z0")) == (23.0, 3.0, 22.5)
    assert rd.val_summary()["name"] == "x"
    assert not rd.is_finished(2)
    rd.write_summary(
        dict(name="cyclical-s2", mean_psnr=24.0, active_units=None, epochs=2, public=float("nan"))
    )
    assert rd.number("mean_psnr") == 24.0 and rd.is_finished(2) and not rd.is_finished(3)
    assert rd.number("active_units") == 3.0  # null in summary.json: val_summary.json's
    assert math.isnan(rd.number("public"))
    assert json.loads((tmp_path / RunDir.SUMMARY).read_text())["epochs"] == 2


def test_attempts_log(tmp_path):
    rd = RunDir(tmp_path)
    assert rd.attempts() == []
    rd.add_attempt("2024-01-01 00:00:00 attempt 1: training deadline passed (a.ipynb)")
    rd.add_attempt("2024-01-01 00:10:00 attempt 2: kernel died (b.ipynb)\n")
    assert rd.attempts() == [
        "2024-01-01 00:00:00 attempt 1: training deadline passed (a.ipynb)",
        "2024-01-01 00:10:00 attempt 2: kernel died (b.ipynb)",
    ]


def test_names_strategies_and_a_runs_folder(tmp_path):
    assert [strategy_of(n) for n in ("cyclical", "cyclical-s1", "tf-half-s12", "free-bits", "s1")] == [
        "cyclical",
        "cyclical",
        "tf-half",
        "free-bits",
        "s1",
    ]
    assert KL_STRATEGIES == ("monotonic", "cyclical", "none")
    for name, psnr in (("tf-off", 19.0), ("cyclical-s1", 22.0), ("none", 20.0), ("cyclical", 21.0)):
        rd = RunDir(tmp_path / name)
        rd.path.mkdir()
        rd.write_metrics(ROWS, METRIC_FIELDS)
        rd.write_summary(dict(mean_psnr=psnr))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / RunDir.METRICS).write_text(",".join(METRIC_FIELDS) + "\n")  # no rows: not a run
    runs = load_runs(tmp_path)
    assert [r.name for r in runs] == ["cyclical", "cyclical-s1", "none", "tf-off"]
    assert runs[1].strategy == "cyclical"
    assert {s: [r.name for r in rs] for s, rs in group(runs).items()} == {
        "cyclical": ["cyclical", "cyclical-s1"],
        "none": ["none"],
        "tf-off": ["tf-off"],
    }
    assert best_run(runs).name == "cyclical-s1" and best_run([]) is None
    RunDir(tmp_path / "none").write_summary(dict(name="renamed", mean_psnr=20.0))
    assert runs[2].name == "renamed"  # summary.json's name wins over the folder's


def test_cached_files_follow_rewrites_and_keep_edits(tmp_path):
    """The report reads a file once while it is unchanged; a rewrite on disk is read again."""
    rd = RunDir(tmp_path)
    rd.write_summary(dict(mean_psnr=20.0))
    assert rd.summary() is rd.summary()
    rd.summary()["mean_psnr"] = 25.0  # an edit in memory holds while the file is unchanged
    assert rd.number("mean_psnr") == 25.0
    rd.write_summary(dict(mean_psnr=21.0, pad="x" * 10))
    assert rd.number("mean_psnr") == 21.0
