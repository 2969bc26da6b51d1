"""The experiment driver: runs a grid through 02_train as Dask tasks, skips finished runs, survives a
failing run or a dead worker, respects another driver's lock, pins GPU runs to their GPU, and rejects
bad grids in one line (exit 2). The clusters are real LocalClusters on this machine's cores."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from lab4.cli import main
from lab4.grid import cluster as grid_dask, driver as experiments, execution
from lab4.grid.progress import GridProgress
from lab4.report import build

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(num_epoch=1, train_vi_len=4, partial=0.5)


def write_grid(path: Path, entries) -> Path:
    path.write_text(yaml.safe_dump({"experiments": entries}))
    return path


@pytest.fixture(scope="module")
def grid_run(tiny_root, tmp_path_factory):
    """A good run and one whose data_root does not exist, both at once: (grid, runs, exit code,
    stdout+err)."""
    tmp = tmp_path_factory.mktemp("driver")
    ok = {**FAST, "data_root": str(tiny_root)}
    grid = write_grid(
        tmp / "grid.yaml",
        [
            {"name": "ok-a", "overrides": {**ok, "kl_anneal_type": "monotonic"}},
            {"name": "bad", "overrides": {**FAST, "data_root": str(tmp / "no-such-data")}},
        ],
    )
    runs = tmp / "runs"
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--jobs", "2"])
    return grid, runs, code, out.getvalue()


def test_failing_run_is_reported_and_others_complete(grid_run):
    grid, runs, code, out = grid_run
    assert code == 1, out
    summary = json.loads((runs / "ok-a" / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["name"] == "ok-a" and summary["kl_anneal_type"] == "monotonic"
    assert "[2/2] ok-a: done in" in out or "[1/2] ok-a: done in" in out
    # not a terminal: a line per epoch
    assert "ok-a: running -> " in out and "  ok-a: epoch 1/1, val PSNR" in out
    failed_nb = runs / "bad" / "02_train.ipynb"
    assert failed_nb.is_file()  # the failed notebook is kept, with the error in it
    assert "Lab4Error" in failed_nb.read_text()
    line = next(x for x in out.splitlines() if x.strip().startswith("bad:") and "running ->" not in x)
    assert str(failed_nb) in line and "Lab4Error" in line and "does not exist" in line


def test_rerun_skips_completed_runs(grid_run, capsys):
    grid, runs, _, _ = grid_run
    before = (runs / "ok-a" / "summary.json").stat().st_mtime_ns
    assert (
        main(["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--only", "ok-*"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("skipped (already complete)") == 1
    assert (runs / "ok-a" / "summary.json").stat().st_mtime_ns == before


def test_locked_run_is_skipped_with_a_message(grid_run, capsys):
    grid, runs, _, _ = grid_run
    with FileLock(str(runs / "ok-a" / ".driver.lock")):
        code = main(["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--only", "ok-a"])
    captured = capsys.readouterr()
    assert code == experiments.EXIT_LOCKED
    assert "skipped: ok-a is being run by another process" in captured.out


def test_parameters_split_into_flat_and_extra(tmp_path):
    run = execution.Entry("x", {"tfr": 0.5, "milestones": (3,), "F_dim": 8}, tmp_path / "x", "tiny")
    params = execution.notebook_parameters(run)
    assert params["tfr"] == 0.5 and params["extra"] == {"milestones": [3], "F_dim": 8}
    assert params["run_dir"] == str(tmp_path / "x") and params["resume"] is True


def test_committed_grid_is_valid():
    names = [n for n, _ in experiments.load_grid(ROOT / "experiments.yaml", "quick")]
    strategies = ["cyclical", "monotonic", "none", "tf-off"]
    # 4 seeds of each: the short-rollout score's power at 4 seeds (the report's power table)
    assert names == [f"{s}{k}" for s in strategies for k in ("", "-s1", "-s2", "-s3")]
    # the questions fixed before the runs: each annealed schedule against none, teacher forcing off against on
    qs = {q.key: (q.reference, q.compare) for q in experiments.load_questions(ROOT / "experiments.yaml")}
    assert qs == {"KL": ("none", ("monotonic", "cyclical")), "TF": ("cyclical", ("tf-off",))}
    full = [n for n, _ in experiments.load_grid(ROOT / "experiments.yaml", "full")]
    assert {"cyclical-s1", "monotonic-s2", "tf-off-s2"} <= set(full) and len(full) == 12
    runs = dict(experiments.load_grid(ROOT / "experiments.yaml", "quick"))
    # only the first seed rolls out the test sequences (the submission); the extra seeds skip it
    assert "predict" not in runs["cyclical"] and runs["cyclical-s1"]["predict"] is False
    assert runs["cyclical-s2"] == {**runs["cyclical"], "seed": 2, "predict": False}
    extra = dict(experiments.load_grid(ROOT / "experiments-extra.yaml", "quick"))
    assert sorted(extra) == sorted(f"{s}{k}" for s in ("tf-half", "free-bits") for k in ("", "-s1", "-s2"))
    assert not set(extra) & set(runs)  # the extra grid adds to the report's runs folder, never overwrites


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such grid file"),
        ("experiments: [name: x\n", "bad YAML"),
        (
            "experiments:\n  - name: x\n    overrides: {not_a_field: 1}\n",
            "unknown config field(s) not_a_field",
        ),
        ("experiments:\n  - name: x\n    overrides: {tfr: 2.0}\n", "tfr must be in [0, 1]"),
        ("experiments:\n  - name: x\n    overrides: {run_dir: y}\n", "set by the driver"),
        ("experiments:\n  - name: x\n  - name: x\n", "duplicate run name"),
    ],
)
def test_bad_grid_is_one_line_exit_2(tmp_path, capsys, text, message):
    grid = tmp_path / "grid.yaml"
    if text is not None:
        grid.write_text(text)
    assert main(["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_profile_and_only(tmp_path, capsys):
    grid = write_grid(tmp_path / "grid.yaml", [{"name": "x"}])
    assert main(["grid", "--grid", str(grid), "--profile", "huge", "--runs", str(tmp_path)]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
    assert (
        main(["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(tmp_path), "--only", "y"]) == 2
    )
    assert "--only y: no such run" in capsys.readouterr().err


def test_figures_and_html_need_a_runs_folder(tmp_path, capsys):
    missing = str(tmp_path / "nothing")
    assert main(["report", "html", "--runs", missing, "--build", str(tmp_path / "build")]) == 2
    assert "no such runs folder" in capsys.readouterr().err
    if build.COMPARE_NB.is_file():
        assert main(["report", "figures", "--runs", missing, "--build", str(tmp_path / "build")]) == 2
        assert "no such runs folder" in capsys.readouterr().err


def test_prepare_data_decodes_each_dataset_once_and_skips_bad_ones(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB4_CACHE", str(tmp_path / "cache"))
    good = {**FAST, "data_root": str(tiny_root)}
    runs = [
        execution.Entry("a", good, tmp_path / "a", "tiny"),
        execution.Entry("b", {**good, "kl_anneal_type": "none"}, tmp_path / "b", "tiny"),
        execution.Entry("bad", {**FAST, "data_root": str(tmp_path / "missing")}, tmp_path / "bad", "tiny"),
    ]
    experiments.prepare_data(runs)  # the missing dataset is left for its run's notebook to report
    cached = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").glob("*.pt"))
    tag = tiny_root.resolve().name
    assert cached == [f"{tag}-test", f"{tag}-test_gt", f"{tag}-train", f"{tag}-val"]


def test_import_leaves_jupyter_path_alone_and_messages_use_repo_paths(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PATH"}
    code = "import os, lab4.grid.driver; print(os.environ.get('JUPYTER_PATH'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "None"
    assert experiments.shown(execution.PROJECT_ROOT / "runs" / "quick" / "a.ipynb") == "runs/quick/a.ipynb"
    assert experiments.shown(tmp_path / "a.ipynb") == str(tmp_path / "a.ipynb")


# -- the live view ------------------------------------------------------------------------------
def write_epochs(path: Path, n: int) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["kind", "epoch", "val_psnr"])
        w.writeheader()
        for e in range(n):
            w.writerows([dict(kind="iter", epoch=e), dict(kind="epoch", epoch=e, val_psnr=20 + e + 0.5)])


def test_progress_prints_a_line_per_finished_epoch_off_a_terminal(tmp_path):
    run = execution.Entry("a", {}, tmp_path / "a", "tiny")
    run.run_dir.mkdir()
    out = io.StringIO()
    progress = GridProgress([run], {"a": 3}, total_runs=2, done_runs=1, live=False, out=out)
    progress.tick({"a"})
    write_epochs(run.run_dir / "metrics.csv", 2)  # two epochs finished between two looks: two lines
    progress.tick({"a"})
    progress.finish("a", "[2/2] a: done")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("a: running -> ") and lines[0].endswith("metrics.csv)")
    assert [line.split("[")[0].strip() for line in lines[1:3]] == [
        "a: epoch 1/3",
        "a: epoch 2/3, val PSNR 21.50 dB",
    ]
    assert "1/2 runs done" in lines[1] and "elapsed, ETA" in lines[1]
    assert lines[3:] == ["[2/2] a: done"]


def test_progress_on_a_terminal_is_one_bar_over_the_grid(tmp_path, capsys):
    runs = [execution.Entry(n, {}, tmp_path / n, "tiny") for n in ("a", "b")]
    for r in runs:
        r.run_dir.mkdir()
    write_epochs(runs[0].run_dir / "metrics.csv", 1)  # a resumed run starts part-way
    with GridProgress(runs, {"a": 3, "b": 2}, total_runs=2, live=True, out=io.StringIO()) as progress:
        assert progress.bar.n == 1 and progress.bar.total == 5
        write_epochs(runs[0].run_dir / "metrics.csv", 2)
        progress.tick({"a", "b"})
        assert progress.bar.n == 2 and progress.bar.postfix == "a 2/3, b 0/2"
        progress.finish("a", "[1/2] a: done")
        assert progress.bar.n == 3 and progress.bar.desc == "grid: 1/2 runs done"  # a: all 3 epochs
    assert "grid: 1/2 runs done" in capsys.readouterr().err


# -- GPUs and a shared cluster --------------------------------------------------------------------
FAKE_GPUS = ["0", "1"]


@pytest.fixture(scope="module")
def gpu_cluster():
    """A real 2-worker LocalCluster built as the driver builds it on a 2-GPU machine. There is no GPU here:
    the workers only carry the GPU resource and their pinned CUDA_VISIBLE_DEVICES; torch sees no CUDA."""
    from distributed import Client

    with grid_dask.local_cluster(2, FAKE_GPUS) as cluster, Client(cluster) as client:
        client.register_plugin(grid_dask.PinGPU(FAKE_GPUS))
        yield cluster.scheduler_address, client


def test_gpu_count_gives_the_ids_and_the_default_jobs(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert grid_dask.visible_gpus() == ["0", "1", "2"] and grid_dask.default_jobs(["0", "1", "2"]) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    assert grid_dask.visible_gpus() == ["4", "6", "7"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert grid_dask.visible_gpus() == [] and grid_dask.default_jobs([]) == grid_dask.CPU_JOBS
    assert [grid_dask.gpu_for_worker(i, ["4", "6"]) for i in range(4)] == ["4", "6", "4", "6"]  # JOBS > GPUs


def test_each_worker_and_its_kernels_see_only_their_gpu(gpu_cluster):
    _, client = gpu_cluster
    workers = client.scheduler_info()["workers"]
    assert [w["resources"] for w in workers.values()] == [{"GPU": 1}, {"GPU": 1}]
    pinned = client.run(os.getenv, "CUDA_VISIBLE_DEVICES")
    assert sorted(pinned.values()) == FAKE_GPUS
    child = [sys.executable, "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"]
    for worker, gpu in pinned.items():  # the notebook's kernel is a child process of the worker
        out = client.submit(
            subprocess.check_output, child, text=True, workers=[worker], resources={"GPU": 1}, pure=False
        ).result()
        assert out.strip() == gpu


def _resources_asked(dask_scheduler, keys):
    return {k: dask_scheduler.tasks[k].resource_restrictions for k in keys}


def test_a_cpu_run_asks_for_no_gpu(gpu_cluster, tmp_path):
    from lab4.config import make_config

    _, client = gpu_cluster
    cfgs = {
        n: make_config("tiny", name=n, device=d)
        for n, d in [("cpu", "cpu"), ("auto", "auto"), ("cuda", "cuda")]
    }
    assert grid_dask.gpu_runs(cfgs, have_gpus=True) == {"auto", "cuda"}
    assert grid_dask.gpu_runs(cfgs, have_gpus=False) == set()  # without GPUs nothing asks for one
    runs = [execution.Entry(n, {"device": n}, tmp_path / n, "tiny") for n in ("cpu", "auto")]
    futures = grid_dask.submit(client, str, runs, grid_dask.gpu_runs(cfgs, have_gpus=True))
    client.gather(list(futures))
    asked = client.run_on_scheduler(_resources_asked, keys=[f.key for f in futures])
    by_name = {run.name: asked[f.key] for f, run in futures.items()}
    assert not by_name["cpu"] and by_name["auto"] == {"GPU": 1}


def test_a_waiting_run_starts_on_the_first_free_worker(gpu_cluster, tmp_path):
    """Two workers, one long run and three short ones. A run must never be handed to a worker that is busy
    (it would wait there behind the other run although another worker may be free, as happened when every
    task was submitted at once): the scheduler never has more runs assigned than the workers have threads,
    and the short runs all start while the long one is still running."""
    _, client = gpu_cluster

    def job(run):
        start = time.time()
        time.sleep(run.overrides["sleep"])
        return start

    runs = [
        execution.Entry(f"r{i}", {"sleep": d}, tmp_path / f"r{i}", "tiny")
        for i, d in enumerate([5, 0.3, 0.3, 0.3])
    ]
    starts, assigned = {}, []
    t0 = time.time()
    grid_dask.run_all(
        client,
        job,
        runs,
        set(),
        lambda run, value, error: starts.update({run.name: value - t0}),
        lambda running: assigned.append(sum(map(len, client.processing().values()))),
    )
    assert set(starts) == {"r0", "r1", "r2", "r3"}
    assert max(assigned) <= 2, assigned
    assert max(starts["r2"], starts["r3"]) < 4.0, starts  # the long run ends at 5 s


def _paces(server) -> dict:
    """The periods (ms) of a Dask server's housekeeping; None where it does not run."""
    cbs = server.periodic_callbacks
    return {
        k: cbs[k].callback_time if k in cbs else None for k in ("profile", "tick", "monitor", "heartbeat")
    }


def test_the_driver_paces_dasks_housekeeping_for_long_tasks():
    """The driver's LocalCluster runs with QUIET (no worker profiler, a tick a second, the system monitor
    every 5 s) in its scheduler and, through their nannies, its workers, which heartbeat every HEARTBEAT_S;
    Dask's own heartbeat pace is back once the cluster is closed."""
    from dask.utils import parse_timedelta
    from distributed import scheduler

    dask_pace = scheduler.heartbeat_interval
    ms = {
        k: parse_timedelta(grid_dask.QUIET[f"distributed.admin.{k}.interval"]) * 1000
        for k in ("tick", "system-monitor")
    }
    with grid_dask.connect(None, 1, []) as (client, _):
        assert scheduler.heartbeat_interval(1) == grid_dask.HEARTBEAT_S
        on_scheduler = client.run_on_scheduler(lambda dask_scheduler: _paces(dask_scheduler))
        assert (on_scheduler["tick"], on_scheduler["monitor"]) == (ms["tick"], ms["system-monitor"])
        t0 = time.monotonic()
        while True:  # a worker's first heartbeat is 1 s after it starts; the scheduler's reply sets the pace
            (worker,) = client.run(lambda dask_worker: _paces(dask_worker)).values()
            if worker["heartbeat"] != 1000 or time.monotonic() - t0 > 60:
                break
            time.sleep(0.5)
    assert worker == dict(
        profile=None, tick=ms["tick"], monitor=ms["system-monitor"], heartbeat=grid_dask.HEARTBEAT_S * 1000
    )
    assert scheduler.heartbeat_interval is dask_pace


def epoch_rows(metrics: Path) -> list[dict]:
    if not metrics.is_file():
        return []
    with open(metrics, newline="") as f:
        return [r for r in csv.DictReader(f) if r["kind"] == "epoch"]


def wait_for(condition, proc, what: str, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while not condition():
        assert proc.poll() is None, f"the driver ended before {what}: {proc.communicate()[0]}"
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_second_driver_skips_and_a_killed_worker_resumes(gpu_cluster, tiny_root, tmp_path, capsys):
    """Two drivers on one scheduler and runs folder: the second skips the locked run (exit 3). Then the
    worker running it is killed mid-run: Dask resubmits the task and the notebook resumes from last.pt."""
    address, client = gpu_cluster
    grid = write_grid(
        tmp_path / "grid.yaml",
        [{"name": "long", "overrides": {**FAST, "num_epoch": 3, "data_root": str(tiny_root)}}],
    )
    runs = tmp_path / "runs"
    args = ["--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--scheduler", address]
    first = subprocess.Popen(
        [sys.executable, "-m", "lab4", "grid", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    metrics = runs / "long" / "metrics.csv"
    try:
        wait_for(lambda: (runs / "long" / "02_train.ipynb").is_file(), first, "the run started")
        assert main(["grid", *args]) == experiments.EXIT_LOCKED
        assert "skipped: long is being run by another process" in capsys.readouterr().out
        wait_for(lambda: (runs / "long" / "last.pt").is_file() and epoch_rows(metrics), first, "a checkpoint")
        first_epoch = epoch_rows(metrics)[0]
        (worker,) = [w for w, keys in client.processing().items() if keys]
        os.kill(client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        out = first.communicate(timeout=240)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out
    assert "[1/1] long: done in" in out and "distributed." not in out  # no Dask log lines
    rows = epoch_rows(metrics)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and rows[0] == first_epoch  # resumed, not redone
    assert json.loads((runs / "long" / "summary.json").read_text())["epochs"] == 3
