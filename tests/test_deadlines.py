"""Nothing waits forever (issue 21): every cell runs under a deadline, a timed-out or dead kernel ends the
execution in one line with the executed notebook kept, the grid tries such a run again from last.pt, and
kernel messages are awaited in slices so that a missed wake-up cannot hang the client."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from queue import Empty

import nbformat
import psutil
import pytest
import yaml

from lab4.cli import main
from lab4.grid import driver as experiments
from lab4.run.folder import RunDir
from lab4.util import notebooks as notebook_run
from lab4.util.errors import Lab4Error


def notebook(path: Path, *cells: str, tags: dict[int, list[str]] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "lab4", "display_name": "Python (lab4)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    for i, t in (tags or {}).items():
        nb.cells[i].metadata["tags"] = t
    nbformat.write(nb, str(path))
    return path


@pytest.mark.timeout(120)
def test_a_cell_past_its_deadline_fails_in_one_line_within_it(tmp_path):
    src = notebook(tmp_path / "sleepy.ipynb", "print('first cell ran')", "import time\ntime.sleep(300)")
    out = tmp_path / "out.ipynb"
    t0 = time.monotonic()
    with pytest.raises(notebook_run.NotebookTimeout) as e:
        notebook_run.execute(src, out, {}, cwd=tmp_path, cell_timeout=3)
    waited = time.monotonic() - t0
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("sleepy.ipynb: cell 2 (`import time`) ran past its 3 s deadline"), msg
    assert str(out) in msg or "out.ipynb" in msg
    # start, interrupt and shutdown included
    assert waited < 3 + 30, f"the deadline fired after {waited:.0f}s"
    kept = nbformat.read(str(out), as_version=4)  # the executed notebook, with the outputs so far
    assert kept.cells[0].outputs[0]["text"] == "first cell ran\n"


@pytest.mark.timeout(120)
def test_the_training_cell_gets_the_training_deadline(tmp_path):
    slow = "import time\ntime.sleep(4)"
    ok = notebook(tmp_path / "ok.ipynb", slow, tags={0: [notebook_run.TRAINING_TAG]})
    notebook_run.execute(ok, tmp_path / "ok-out.ipynb", {}, cwd=tmp_path, cell_timeout=2, training_timeout=60)
    late = notebook(tmp_path / "late.ipynb", slow)  # the same cell untagged: the general deadline
    with pytest.raises(notebook_run.NotebookTimeout, match="cell 1 .* 2 s deadline"):
        notebook_run.execute(
            late, tmp_path / "late-out.ipynb", {}, cwd=tmp_path, cell_timeout=2, training_timeout=60
        )


@pytest.mark.timeout(120)
def test_a_stopped_kernel_meets_the_deadline_and_is_ended(tmp_path):
    """A kernel that no longer answers (SIGSTOP, as in the issue's hung grid): the deadline fires, and the
    stopped process is killed rather than waited for."""
    src = notebook(
        tmp_path / "stops.ipynb",
        "import os, signal\nopen('kernel.pid', 'w').write(str(os.getpid()))\n"
        "os.kill(os.getpid(), signal.SIGSTOP)",
    )
    out = tmp_path / "out.ipynb"
    t0 = time.monotonic()
    with pytest.raises(
        notebook_run.NotebookTimeout, match="stops.ipynb: cell 1 .* ran past its 3 s deadline"
    ):
        notebook_run.execute(src, out, {}, cwd=tmp_path, cell_timeout=3)
    assert time.monotonic() - t0 < 3 + 30
    pid = int((tmp_path / "kernel.pid").read_text())  # the kernel runs in cwd
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.timeout(120)
def test_a_dead_kernel_is_one_line_naming_the_cell(tmp_path):
    src = notebook(
        tmp_path / "dies.ipynb", "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    with pytest.raises(notebook_run.KernelDied) as e:
        notebook_run.execute(src, tmp_path / "out.ipynb", {}, cwd=tmp_path, cell_timeout=60)
    assert str(e.value).startswith("dies.ipynb: the kernel died during cell 2 (`import os, signal`)")
    assert "\n" not in str(e.value)


def test_deadlines_come_from_the_profile_unless_set(monkeypatch):
    monkeypatch.delenv("LAB4_TRAIN_DEADLINE", raising=False)
    monkeypatch.delenv("LAB4_CELL_DEADLINE", raising=False)
    assert notebook_run.training_deadline("quick") == notebook_run.TRAINING_S["quick"]
    assert (
        notebook_run.training_deadline("full")
        > notebook_run.training_deadline("quick")
        > notebook_run.training_deadline("tiny")
    )
    assert notebook_run.cell_deadline() == notebook_run.CELL_S
    monkeypatch.setenv("LAB4_TRAIN_DEADLINE", "90")
    assert notebook_run.training_deadline("full") == 90
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv("LAB4_CELL_DEADLINE", bad)
        with pytest.raises(Lab4Error, match="LAB4_CELL_DEADLINE"):
            notebook_run.cell_deadline()
    assert [notebook_run.human(s) for s in (45, 1200, 3 * 3600)] == ["45 s", "20 min", "3 h"]


def test_the_driver_rejects_bad_deadlines_and_retries_in_one_line(tmp_path, capsys):
    for args, needle in (
        (["--train-deadline", "0"], "--train-deadline must be > 0"),
        (["--retries", "-1"], "--retries must be >= 0"),
    ):
        assert main(["grid", "--grid", str(tmp_path / "none.yaml"), *args]) == experiments.EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err


class MissesItsWakeUp:
    """A kernel channel that behaves like the hang of jupyter/nbclient#312: the message arrives, but a
    wait without a limit is never woken for it; a wait with a limit finds it when it looks again."""

    def __init__(self):
        self.arrived = False

    async def get_msg(self, timeout=None):
        if timeout is None:
            await asyncio.Event().wait()  # never set: the missed wake-up
        await asyncio.sleep(timeout)
        if self.arrived:
            return {"msg": "execute_reply"}
        raise Empty


def test_sliced_waits_pick_up_a_message_a_plain_wait_misses():
    async def scenario(channel, timeout):
        asyncio.get_running_loop().call_later(0.2, setattr, channel, "arrived", True)
        return await asyncio.wait_for(channel.get_msg(timeout=timeout), 5)

    plain = MissesItsWakeUp()
    with pytest.raises(asyncio.TimeoutError):  # without slices: it would wait forever
        asyncio.run(scenario(plain, None))
    sliced = MissesItsWakeUp()
    notebook_run.slice_waits(sliced, step=0.1)
    t0 = time.monotonic()
    assert asyncio.run(scenario(sliced, None)) == {"msg": "execute_reply"}
    assert time.monotonic() - t0 < 1.0
    late = MissesItsWakeUp()  # the caller's own timeout still holds
    notebook_run.slice_waits(late, step=0.1)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(late.get_msg(timeout=0.35))
    assert 0.3 < time.monotonic() - t0 < 1.0


def _kill_the_kernel_after_last_pt(run_dir: Path, done: threading.Event, killed: list) -> None:
    """Watch the run folder; when the first last.pt appears, SIGKILL the kernel that is training it."""
    me = psutil.Process()
    while not done.is_set():
        if (run_dir / "last.pt").is_file():
            for p in me.children(recursive=True):
                try:
                    if any("ipykernel" in part for part in p.cmdline()):
                        p.kill()
                        killed.append(p.pid)
                except psutil.Error:
                    pass
            if killed:
                return
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_run_whose_kernel_is_killed_is_retried_from_last_pt(tiny_root, tmp_path):
    entry = dict(data_root=str(tiny_root), num_epoch=4, train_vi_len=4)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"experiments": [{"name": "victim", "overrides": entry}]}))
    runs = tmp_path / "runs"
    done, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_the_kernel_after_last_pt, args=(runs / "victim", done, killed))
    watcher.start()
    out = io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(out):
            code = main(
                ["grid", "--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--jobs", "1"]
            )
    finally:
        done.set()
        watcher.join()
    text = out.getvalue()
    assert killed, "the watcher never saw a kernel to kill"
    assert code == 0, text
    run = runs / "victim"
    log = (run / "attempts.log").read_text().splitlines()
    assert len(log) == 1 and "attempt 1: 02_train.ipynb: the kernel died during cell" in log[0], log
    assert "victim: " in text and "-> trying again from last.pt" in text  # the progress display says so
    assert "[1/1] victim: done in" in text and "after 1 retry (resumed from last.pt)" in text
    assert "1/1 run(s) complete (1 after a retry), 0 failed" in text
    assert (run / "02_train.attempt1.ipynb").is_file()  # the stopped attempt's notebook is kept
    second = nbformat.read(str(run / "02_train.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in second.cells for o in c.get("outputs", []))
    assert "epochs, resumed after epoch" in printed, printed[-2000:]  # lab4.run.pipeline says so
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 4
    assert RunDir(run).epochs_done() == 4  # each epoch once: the retry continued, it did not start over


@pytest.mark.timeout(120)
def test_a_hung_test_is_stopped_and_its_processes_ended(tmp_path):
    """pytest-timeout stops a test that hangs, and conftest.py's hook ends the process it started."""
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    (tmp_path / "conftest.py").write_text(  # the suite's hook, and only it
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('suite_conftest', {str(tests / 'conftest.py')!r})\n"
        "suite = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(suite)\n"
        "pytest_runtest_call = suite.pytest_runtest_call\n"
    )
    (tmp_path / "test_hang.py").write_text(
        "import subprocess, time\n"
        "def test_hangs():\n"
        "    p = subprocess.Popen(['sleep', '300'])\n"
        "    open('child.pid', 'w').write(str(p.pid))\n"
        "    time.sleep(300)\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "3", "test_hang.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Timeout" in out, out[-3000:]
    assert "test_hang.py::test_hangs: timed out; ended the 1 process(es) it started (sleep)" in out, out[
        -3000:
    ]
    pid = int((tmp_path / "child.pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
