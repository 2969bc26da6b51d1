"""The GPU session command, rehearsed on the CPU: every step's record and file, the budget that skips
late steps, and the epoch plan that sizes the grid. The full dry run with its papermill grid is slow."""

from __future__ import annotations

import json

import pytest
import torch

from lab4.cli import main
from lab4.config import PROFILES
from lab4.perf import gpucheck
from lab4.perf.fastcheck import probe_speed_options
from lab4.perf.gpucheck import Budget, GpuCheck
from lab4.perf.gpuplan import gpu_schedule, plan_epochs, run_boxed
from lab4.schedules import KL_STRATEGIES

BENCH_KEYS = {
    "device",
    "ratio_vs_lab",
    "train_frames_per_s",
    "lab_train_frames_per_s",
    "rollout_5x630_s",
    "val_rollout_630_s",
    "peak_gpu_mem_gib",
    "targets",
}


def test_budget_counts_down_and_stops_at_zero():
    now = [100.0]
    b = Budget(30, clock=lambda: now[0])
    assert b.left() == 30
    now[0] += 12.5
    assert b.left() == 17.5
    now[0] += 60
    assert b.left() == 0.0


def test_gpu_profile_is_the_schedule_for_four_epochs():
    sched = gpu_schedule(4)
    prof = PROFILES["gpu"]
    assert {k: (list(v) if k == "milestones" else v) for k, v in prof.items() if k in sched} == sched
    for epochs in (1, 2, 3, 7, 12):  # every stretched schedule is a valid config of the gpu profile
        s = gpu_schedule(epochs)
        assert s["num_epoch"] == epochs and 1 <= s["milestones"][0] <= max(1, epochs)
        from lab4.config import make_config

        make_config("gpu", **s)


def test_epoch_plan_grows_with_time_and_speed_and_stays_in_range():
    plan = lambda box, fps: plan_epochs(box, fps, fps / 3, 23410, 9)  # noqa: E731
    assert plan(60, 5000) == 1  # not even the overhead fits: still one epoch
    assert plan(300, 5000) <= plan(300, 20000) <= 12
    assert plan(200, 10000) <= plan(400, 10000)
    assert plan(10_000, 1e6) == 12
    # free-running epochs cost more: a slower free-running rate never buys more epochs
    assert plan_epochs(300, 10000, 1000, 23410, 9) <= plan_epochs(300, 10000, 9000, 23410, 9)


def test_speed_option_probe_runs_on_cpu():
    got = probe_speed_options(torch.device("cpu"))
    assert set(got) == {"amp", "channels_last", "fused_adam"}
    assert got["channels_last"] == "engaged"
    assert all(v == "engaged" or v.startswith("not engaged: ") for v in got.values())


@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_dry_run_records_every_step_and_skips_what_the_budget_cannot_hold(tiny_root, tmp_path, capsys):
    """Budget frozen at 10 s: env, data, correctness and bench run; the grid (needs 15 s) is skipped."""
    out = tmp_path / "gpu"
    check = GpuCheck(out, budget_s=10, dry_run=True, data_root=str(tiny_root))
    check.budget = Budget(10, clock=lambda: 0.0)
    rec = check.run()
    assert json.loads((out / "gpucheck.json").read_text()) == json.loads(json.dumps(rec, default=str))
    steps = rec["steps"]
    assert list(steps) == list(gpucheck.STEPS)
    assert steps["env"]["status"] == "ok" and steps["env"]["cuda_available"] is torch.cuda.is_available()
    assert steps["data"]["status"] == "ok" and steps["data"]["train_frames"] > 0

    corr = steps["correctness"]
    assert corr["status"] == "skipped: no CUDA"  # not pretended: the CPU rehearsal is recorded apart
    reh = corr["cpu_rehearsal"]
    assert reh["ok"] and reh["loss"]["ok"] and reh["rollout"]["ok"] and reh["fused_adam"]["ok"], reh
    assert reh["fused_adam"]["max_step"] > 0  # the optimizer step really moved the weights

    bench = steps["bench"]
    assert bench["status"] == "ok", bench
    saved = json.loads((out / "results" / "bench" / "cpu-dry-run.json").read_text())
    assert BENCH_KEYS <= set(saved) and saved["dry_run"] is True
    assert saved["ratio_vs_lab"] == pytest.approx(
        saved["train_frames_per_s"] / saved["lab_train_frames_per_s"], rel=0.02
    )
    assert saved["peak_gpu_mem_gib"] == "skipped: no CUDA"
    assert set(saved["targets"]) == {"ratio_vs_lab", "train_frames_per_s", "rollout_5x630_s"}
    if not all(t["met"] for t in saved["targets"].values()):  # on a CPU they are missed: the profile says why
        assert (out / "results" / "bench" / "cpu-dry-run-profile.txt").is_file()
        assert saved["profile"]["top"] and saved["profile"]["why"].startswith("missed: ")

    assert steps["grid"]["status"].startswith("skipped: out of budget (10 s left, the step needs 15 s)")
    assert steps["figures"]["status"] == "skipped: no grid runs with metrics"
    assert rec["speed_options"]["cuda_graphs"] == "skipped: no CUDA"
    assert "bench" in capsys.readouterr().out

    # a second call for some steps keeps the other steps' records from the first
    again = GpuCheck(out, budget_s=10, dry_run=True, steps=("figures",), data_root=str(tiny_root)).run()
    assert again["steps"]["bench"]["from_earlier_call"] is True
    assert again["steps"]["bench"]["train_frames_per_s"] == bench["train_frames_per_s"]


def test_bad_steps_and_budget_are_one_line_errors(tmp_path, capsys):
    assert main(["gpucheck", "--out", str(tmp_path), "--steps", "env,warp"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lab4 gpucheck: error: --steps: unknown step(s) warp; "
        "choose from env, data, correctness, bench, grid, figures"
    )
    assert main(["gpucheck", "--out", str(tmp_path), "--budget_s", "0"]) == 2  # snake_case accepted too
    assert "--budget-s must be > 0" in capsys.readouterr().err


def test_boxed_call_is_killed_at_its_deadline(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("experiments:\n  - name: a\n")
    res = run_boxed("lab4.grid.driver:run_grid", (str(grid), "tiny", str(tmp_path / "runs")), {}, 0.5)
    assert res["timed_out"] is True and res["exit_code"] != 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, --device cuda would start a benchmark")
def test_bench_without_a_gpu_is_a_one_line_error(tmp_path, capsys):
    # snake_case parses; the missing GPU is then a one-line error, before any data is made
    assert main(["bench", "--data_root", str(tmp_path), "--rollout_frames", "8", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("lab4 bench: error: device 'cuda' asked for")


@pytest.mark.slow
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_dry_run_end_to_end_with_grid_and_figures(tiny_root, tmp_path):
    """The whole rehearsal: 3 KL strategies through papermill, then 03_compare, files where the GPU
    session leaves them (minutes on 2 busy cores)."""
    out = tmp_path / "gpu"
    rec = GpuCheck(out, budget_s=900, dry_run=True, data_root=str(tiny_root)).run()
    grid, figs = rec["steps"]["grid"], rec["steps"]["figures"]
    assert grid["status"] == "ok" and grid["complete_runs"] == 3, grid
    results = out / "results" / "gpu"
    for name in KL_STRATEGIES:
        run = results / name
        assert (run / "metrics.csv").is_file() and json.loads((run / "summary.json").read_text())[
            "epochs"
        ] == 1
        assert not list(run.glob("*.pt")) and not list(run.glob("*.ipynb"))
        assert grid["per_run"][name]["epoch_seconds"]
    assert figs["status"] == "ok", figs
    assert (results / "figures" / "psnr_per_frame.png").is_file()
    # the CPU study belongs to the report, not the session
    assert not (results / "figures" / "study").exists()
    assert (results / "generated" / "macros.tex").is_file()
    assert "seeds" in (results / "grid.yaml").read_text()
