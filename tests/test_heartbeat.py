"""A stopped or frozen kernel is found by its heartbeat within HEARTBEAT_S, not at the cell's deadline: it is
killed (nothing is left behind), the execution ends in one line, and the grid retries the run from last.pt."""

from __future__ import annotations

import io
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import psutil
import pytest
import yaml
from test_deadlines import notebook

from lab4.cli import main
from lab4.run.folder import RunDir
from lab4.util import notebooks as notebook_run
from lab4.util.errors import Lab4Error

STOP_SELF = (
    "import os, signal\nopen('kernel.pid', 'w').write(str(os.getpid()))\nos.kill(os.getpid(), signal.SIGSTOP)"
)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def kernels() -> list[psutil.Process]:
    """The ipykernel processes below this one (papermill's kernels, a Dask worker's too)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("ipykernel" in part for part in p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.mark.timeout(120)
def test_a_stopped_kernel_is_found_by_its_heartbeat_and_killed(tmp_path):
    src = notebook(tmp_path / "stops.ipynb", "x = 1", STOP_SELF)
    t0 = time.monotonic()
    with pytest.raises(notebook_run.KernelUnresponsive) as e:
        notebook_run.execute(src, tmp_path / "out.ipynb", {}, cwd=tmp_path, cell_timeout=600, heartbeat=5)
    waited = time.monotonic() - t0
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(
        "stops.ipynb: the kernel stopped answering (no heartbeat for 5 s) during cell 2 "
        "(`import os, signal`); the executed notebook so far:"
    ), msg
    assert isinstance(e.value, notebook_run.NotebookStopped)  # the grid driver retries it as it is
    # kernel start included
    assert waited < 5 + 40, f"found after {waited:.0f}s (the cell's deadline was 600 s)"
    assert gone(int((tmp_path / "kernel.pid").read_text()))  # SIGKILL ends a stopped process
    assert not kernels()


@pytest.mark.timeout(120)
def test_a_kernel_busy_in_a_cell_keeps_beating(tmp_path):
    """ipykernel answers heartbeats from a thread of its own: a cell sleeping past the limit, or holding the
    GIL inside a C call (ctypes.PyDLL), is not taken for a stopped kernel."""
    src = notebook(
        tmp_path / "slow.ipynb",
        "import time\ntime.sleep(5)",
        "import ctypes\nctypes.PyDLL(None).sleep(4)\nprint('woke')",
    )
    out = tmp_path / "out.ipynb"
    notebook_run.execute(src, out, {}, cwd=tmp_path, cell_timeout=60, heartbeat=2)
    assert "woke" in out.read_text()


def test_the_heartbeat_limit_comes_from_the_environment_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB4_HEARTBEAT", raising=False)
    assert notebook_run.heartbeat_limit() == notebook_run.HEARTBEAT_S == 60
    monkeypatch.setenv("LAB4_HEARTBEAT", "7.5")
    assert notebook_run.heartbeat_limit() == 7.5
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv("LAB4_HEARTBEAT", bad)
        with pytest.raises(Lab4Error, match="LAB4_HEARTBEAT") as e:
            notebook_run.heartbeat_limit()
        assert "\n" not in str(e.value)
        with pytest.raises(Lab4Error, match="LAB4_HEARTBEAT"):  # before any kernel starts
            notebook_run.execute(
                notebook(tmp_path / "x.ipynb", "x = 1"), tmp_path / "out.ipynb", {}, cwd=tmp_path
            )
    assert not (tmp_path / "out.ipynb").exists()


def _stop_the_kernel_after_last_pt(run_dir: Path, done: threading.Event, stopped: list) -> None:
    """When the run's first last.pt appears, SIGSTOP the kernel training it: the one holding its .lock."""
    lock = str(run_dir.resolve() / ".lock")
    while not done.is_set() and not stopped:
        if (run_dir / "last.pt").is_file():
            for p in kernels():
                try:
                    if any(f.path == lock for f in p.open_files()):
                        p.suspend()
                        stopped.append(p.pid)
                except psutil.Error:
                    pass
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_grid_run_whose_kernel_is_stopped_is_retried_and_the_grid_ends(tiny_root, tmp_path, monkeypatch):
    """The issue's hung grid: one run's kernel SIGSTOPped, the other finishing; without the heartbeat the grid
    waited for the tiny profile's 15 min training deadline."""
    monkeypatch.setenv("LAB4_HEARTBEAT", "5")  # the Dask workers and their kernels inherit it
    monkeypatch.delenv("LAB4_TRAIN_DEADLINE", raising=False)
    entry = dict(data_root=str(tiny_root), train_vi_len=4)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "experiments": [
                    {"name": "victim", "overrides": {**entry, "num_epoch": 4}},
                    {"name": "other", "overrides": {**entry, "num_epoch": 2}},
                ]
            }
        )
    )
    runs = tmp_path / "runs"
    done, stopped = threading.Event(), []
    watcher = threading.Thread(target=_stop_the_kernel_after_last_pt, args=(runs / "victim", done, stopped))
    watcher.start()
    out = io.StringIO()
    t0 = time.monotonic()
    try:
        with redirect_stdout(out), redirect_stderr(out):
            code = main(
                ["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--jobs", "2"]
            )
    finally:
        done.set()
        watcher.join()
    waited, text = time.monotonic() - t0, out.getvalue()
    assert stopped, "the watcher never saw the victim's kernel"
    assert code == 0, text
    assert waited < 240, f"the grid took {waited:.0f}s"
    log = (runs / "victim" / "attempts.log").read_text().splitlines()
    assert (
        len(log) == 1
        and "attempt 1: 02_train.ipynb: the kernel stopped answering (no heartbeat for 5 s) during cell"
        in log[0]
    ), log
    assert not (runs / "other" / "attempts.log").exists()
    assert "2/2 run(s) complete (1 after a retry), 0 failed" in text, text
    assert RunDir(runs / "victim").epochs_done() == 4 and RunDir(runs / "other").epochs_done() == 2
    assert gone(stopped[0])
