"""Fault injection: every fault listed in docs/reliability.md has a test here.

Training runs use a deliberately small model and 8x16 frames (FAST) and one torch thread per process,
so the whole module stays well under a minute and a half on 2 CPU cores. Subprocesses run the real CLI
(`python -m lab4 ...`); in-process tests monkeypatch the one thing they break.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from lab4 import checkpoint as ckpt, cli
from lab4.checkpoint import load_checkpoint, save_checkpoint
from lab4.config import make_config
from lab4.datasets.official import load_split, load_test
from lab4.model import CVAE
from lab4.run.after_training import write_summary
from lab4.run.folder import RunDir
from lab4.train import Trainer, load_trained
from lab4.util.errors import Lab4Error, NonFiniteLoss, OutOfMemory

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(frame_H=8, frame_W=16, train_vi_len=4, F_dim=8, L_dim=4, N_dim=4, D_out_dim=8, val_every=0)
FAST_ARGS = [a for k, v in FAST.items() for a in (f"--{k}", str(v))]
SUB_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
COMPARED = ["kind", "epoch", "iter", "loss", "mse", "kl", "beta", "tfr", "teacher_forcing", "lr"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """2 shared cores: oversubscribed intra-op threads make a tiny epoch ~50x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def fast_cfg(root, run, **kw):
    return make_config("tiny", data_root=str(root), run_dir=str(run), **{**FAST, **kw})


def lab4_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "lab4", *map(str, args)]


class Background:
    """CLI commands started at once, side by side (each pays the torch import); results on first use."""

    def __init__(self, cmds: dict[str, list[str]]):
        self.procs = {
            name: subprocess.Popen(
                cmd, cwd=ROOT, env=SUB_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for name, cmd in cmds.items()
        }
        self.done: dict[str, subprocess.CompletedProcess] = {}

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        if name not in self.done:
            proc = self.procs[name]
            stdout, stderr = proc.communicate(timeout=300)
            self.done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        return self.done[name]

    def close(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def assert_one_line_cli_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, no traceback, the error as one line (the last; only tqdm decode bars may come before it)."""
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    errors = [line for line in lines if re.match(r"lab4 [a-z-]+: error: ", line)]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr[-2000:]
    assert all("it/s]" in line or not line.strip() for line in lines[:-1]), res.stderr[-2000:]
    err = errors[0]
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def epoch_rows(run) -> list[dict]:
    return [r for r in RunDir(run).metric_rows() if r["kind"] == "epoch"]


def strays(run) -> list[str]:
    """Anything in a run folder besides the files a run is made of (temp files, probes)."""
    return sorted(
        p.name
        for p in Path(run).iterdir()
        if p.name not in {"config.json", "metrics.csv", "last.pt", ".lock"}
    )


@pytest.fixture(scope="module")
def fast_run(tiny_root, tmp_path_factory) -> Path:
    """A finished 2-epoch FAST run; tests copy it before breaking anything."""
    run = tmp_path_factory.mktemp("rel") / "fast"
    Trainer(fast_cfg(tiny_root, run)).fit()
    return run


def copy_run(src, dst) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return Path(dst)


# == interruption ==================================================================================
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tiny_root, tmp_path, capsys, real_cli):
    """SIGKILL of `python -m lab4 train` mid-run: last.pt stays loadable and --resume ends bit-identical
    to an uninterrupted run (a second CLI subprocess, started alongside, same seed, one thread each)."""
    common = [
        "train",
        "--profile",
        "tiny",
        "--data_root",
        tiny_root,
        "--num_epoch",
        6,
        "--per_save",
        1,
        "--partial",
        0.5,
        *FAST_ARGS,
    ]
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    ref_proc = subprocess.Popen(
        lab4_cmd(*common, "--run-dir", ref),
        cwd=ROOT,
        env=SUB_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc = subprocess.Popen(
        lab4_cmd(*common, "--run-dir", killed),
        cwd=ROOT,
        env=SUB_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["epoch"] == 2 for r in epoch_rows(killed)):  # three epochs done: kill inside the fourth
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    state = load_checkpoint(killed / "last.pt")  # intact and loadable
    assert 2 <= state["epoch"] < 6
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # a SIGKILL can only leave hidden temp files, never a partial last.pt / metrics.csv
    assert all(n.startswith(".") and n.endswith(".tmp") for n in strays(killed)), strays(killed)

    # --resume through the CLI entry point (in-process: the same code as `python -m lab4`, minus an import)
    rc = cli.main([str(a) for a in (*common, "--run-dir", killed, "--resume")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "trained 6/6 epochs, resumed after epoch" in out.out
    ref_out, ref_err = ref_proc.communicate(timeout=240)
    assert ref_proc.returncode == 0, ref_err[-2000:]

    a, b = load_checkpoint(killed / "last.pt"), load_checkpoint(ref / "last.pt")
    assert a["epoch"] == b["epoch"] == 6
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # the resumed metrics have every epoch exactly once, with the uninterrupted run's numbers
    got = [{k: r[k] for k in COMPARED} for r in RunDir(killed).metric_rows()]
    want = [{k: r[k] for k in COMPARED} for r in RunDir(ref).metric_rows()]
    assert got == want
    assert [r["epoch"] for r in epoch_rows(killed)] == list(range(6))


class _Died(BaseException):
    """Stands in for the process dying (not an Exception, so nothing on the way catches it)."""


@pytest.mark.parametrize("dies_in", ["save", "write_metrics"])
def test_death_between_checkpoint_and_metrics_loses_no_rows(tiny_root, tmp_path, monkeypatch, dies_in):
    """Dying at either side of the epoch-end writes, then resuming, leaves each epoch once in metrics.csv."""
    run = tmp_path / "run"
    calls = {"n": 0}
    original = getattr(Trainer, dies_in)

    def dying(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # end of the second epoch
            raise _Died()
        return original(self, *a, **kw)

    monkeypatch.setattr(Trainer, dies_in, dying)
    with pytest.raises(_Died):
        Trainer(fast_cfg(tiny_root, run, num_epoch=3, partial=0.125)).fit()
    monkeypatch.undo()
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    Trainer(fast_cfg(tiny_root, run, num_epoch=3, partial=0.125)).fit(resume=True)
    rows = RunDir(run).metric_rows()
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [0, 1, 2]
    assert [(r["epoch"], r["iter"]) for r in rows if r["kind"] == "iter"] == [(e, 0) for e in range(3)]


# == checkpoints ===================================================================================
class _Payload:
    """Unpickling this runs os.makedirs(marker): the arbitrary code a checkpoint must not run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _bad_checkpoint(kind: str, good: Path, dest: Path, marker: Path) -> None:
    data = good.read_bytes()
    if kind == "truncated":
        dest.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        dest.write_bytes(random.Random(0).randbytes(len(data)))
    elif kind == "wrong_arch":
        save_checkpoint(dest, {"model": CVAE(16, 8, 4, 16).state_dict(), "epoch": 1})
    elif kind == "pickled_object":
        state = torch.load(good, weights_only=True)
        state["extra"] = _Payload(marker)
        torch.save(state, dest)
        with zipfile.ZipFile(dest) as z:  # the payload is in the file: unpickling it would call os.makedirs
            assert b"makedirs" in z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    else:
        raise ValueError(kind)


CKPT_FAULTS = {
    "truncated": "not a readable lab4 checkpoint",
    "corrupt": "not a readable lab4 checkpoint",
    "wrong_arch": "does not match this model's architecture",
    "pickled_object": "not a readable lab4 checkpoint",
}


@pytest.mark.parametrize("kind", list(CKPT_FAULTS))
def test_bad_checkpoint_is_one_line_error_naming_file(kind, fast_run, tiny_root, tmp_path):
    run = copy_run(fast_run, tmp_path / "run")
    marker = tmp_path / "pwned"
    _bad_checkpoint(kind, fast_run / "last.pt", run / "last.pt", marker)
    with pytest.raises(Lab4Error) as ei:
        load_trained(run, device="cpu")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(run / "last.pt")) and CKPT_FAULTS[kind] in msg
    with pytest.raises(Lab4Error) as ei:  # --resume refuses it the same way, before any training
        Trainer(fast_cfg(tiny_root, run, num_epoch=3)).fit(resume=True)
    assert str(ei.value) == msg
    assert not marker.exists()


@pytest.mark.parametrize("kind", list(CKPT_FAULTS))
def test_cli_evaluate_bad_checkpoint_exit_2(kind, fast_run, tiny_root, tmp_path, capsys):
    run = copy_run(fast_run, tmp_path / "run")
    _bad_checkpoint(kind, fast_run / "last.pt", run / "last.pt", tmp_path / "pwned")
    rc = cli.main(["evaluate", "--run-dir", str(run), "--data-root", str(tiny_root), "--device", "cpu"])
    res = subprocess.CompletedProcess([], rc, *capsys.readouterr())
    assert_one_line_cli_error(res, str(run / "last.pt"), CKPT_FAULTS[kind])
    assert not (tmp_path / "pwned").exists()
    assert not (run / "val_summary.json").exists()


def test_cli_subprocess_evaluate_truncated_checkpoint(real_cli):
    run = real_cli["base"] / "truncated"
    assert_one_line_cli_error(
        real_cli["results"]["evaluate_truncated"], str(run / "last.pt"), CKPT_FAULTS["truncated"]
    )


# == numerical faults ==============================================================================
def _nan_from(monkeypatch, call: int) -> None:
    """Make CVAE.clip_loss return a NaN loss (with a NaN gradient) from its `call`-th call on."""
    original, calls = CVAE.clip_loss, {"n": 0}

    def clip_loss(self, *a, **kw):
        out = original(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] >= call:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(CVAE, "clip_loss", clip_loss)


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tiny_root, tmp_path, monkeypatch):
    run = tmp_path / "run"
    tr = Trainer(fast_cfg(tiny_root, run, num_epoch=4))
    n_iter = tr.iters_per_epoch(0)
    good = {}
    tr.add_callback(
        "on_epoch_end",
        lambda t, row: good.update(
            epoch=t.epoch, model={k: v.clone() for k, v in t.model.state_dict().items()}
        ),
    )
    _nan_from(monkeypatch, call=n_iter + 3)  # epoch 2, iteration 3 (1-based, as printed)
    with pytest.raises(NonFiniteLoss) as ei:
        tr.fit()
    msg = str(ei.value)
    assert "\n" not in msg and "epoch 2 iteration 3" in msg and str(run / "last.pt") in msg
    assert good["epoch"] == 1
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 1
    for k, v in state["model"].items():
        assert torch.equal(v, good["model"][k]), k
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    rows = RunDir(run).metric_rows()  # whole, parseable, only the good epoch, all finite
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [0]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    # where it happened: the grid settles the run instead of retrying it
    assert strays(run) == ["diverged.json"]
    assert {k: RunDir(run).diverged()[k] for k in ("epoch", "iteration", "num_epoch")} == dict(
        epoch=2, iteration=3, num_epoch=4
    )
    # a later --resume continues from the good checkpoint
    tr2 = Trainer(fast_cfg(tiny_root, run, num_epoch=4))
    tr2.load(run / "last.pt")
    assert tr2.epoch == 1 and len(tr2.rows) == n_iter + 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_cli_nonfinite_loss_is_one_line_exit_2(tiny_root, tmp_path, monkeypatch, capsys, bad):
    original = CVAE.clip_loss

    def clip_loss(self, *a, **kw):
        out = original(self, *a, **kw)
        out["loss"] = out["loss"] + bad
        return out

    monkeypatch.setattr(CVAE, "clip_loss", clip_loss)
    run = tmp_path / "run"
    rc = cli.main(
        ["train", "--profile", "tiny", "--data_root", str(tiny_root), "--run-dir", str(run), *FAST_ARGS]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "non-finite at epoch 1 iteration 1" in err, err
    assert not (run / "last.pt").exists()  # nothing good to keep yet, and nothing bad was written


# == a GPU that cannot compile, a batch too big for its memory ====================================
def _raising_backend(gm, example_inputs):
    raise RuntimeError("no working C compiler (injected)")


def _compile_fails(monkeypatch, only: str = "") -> None:
    """torch.compile as on a machine without Triton or a C compiler: Dynamo traces at the first call, then the
    backend raises. ``only`` names the one step that fails to compile; the other then stays eager."""
    real = torch.compile

    def compile(fn, mode=None, **kw):
        return fn if only and fn.__name__ != only else real(fn, backend=_raising_backend, **kw)

    monkeypatch.setattr(torch, "compile", compile)


def _one_warning(capfd) -> str:
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab4: warning: ") and "going on eagerly" in lines[0], (
        lines
    )
    assert "no working C compiler (injected)" in lines[0]  # the cause, unwrapped from Dynamo's error
    return lines[0]


def test_compile_failure_trains_eagerly_after_one_warning(tiny_root, tmp_path, monkeypatch, capfd):
    _compile_fails(monkeypatch)
    tr = Trainer(fast_cfg(tiny_root, tmp_path / "fell_back", compile=True, num_epoch=1, partial=0.25))
    assert tr.speed["compile"]  # asked for, and not failed yet
    tr.fit()
    assert "torch.compile failed" in _one_warning(capfd)
    assert tr.compiled_step is None and tr.compiled_rollout is None and not tr.speed["compile"]
    summary = write_summary(tr, {}, {})  # what summary.json records: the options used, and why one was not
    assert summary["speed"] == tr.speed and "no working C compiler" in summary["speed_fallback"]
    monkeypatch.undo()
    eager = Trainer(fast_cfg(tiny_root, tmp_path / "eager", num_epoch=1, partial=0.25)).fit()
    # the failed attempt left nothing behind (RNG, BatchNorm statistics): the eager run's weights exactly
    for k, v in eager.model.state_dict().items():
        assert torch.equal(tr.model.state_dict()[k], v), k


def test_rollout_compile_failure_validates_eagerly(tiny_root, tmp_path, monkeypatch, capfd):
    from lab4.evaluate import validate

    _compile_fails(monkeypatch, only="rollout_step")
    tr = Trainer(fast_cfg(tiny_root, tmp_path / "run", compile=True, num_epoch=1, partial=0.25))
    assert tr.compiled_rollout is not None
    tr.fit()  # validates after its last epoch
    _one_warning(capfd)
    assert tr.compiled_rollout is None and tr.last_val is not None
    assert torch.equal(tr.last_val["pred"], validate(tr.model, tr.val_data, seed=tr.cfg.seed)["pred"])


def test_cuda_out_of_memory_is_one_line_naming_batch_size(tiny_root, tmp_path, monkeypatch, capsys):
    original = Trainer.loss_backward

    def forward_backward(self, *a, **kw):
        if self.epoch == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return original(self, *a, **kw)

    monkeypatch.setattr(Trainer, "loss_backward", forward_backward)
    run = tmp_path / "run"
    rc = cli.main(
        [
            "train",
            "--profile",
            "tiny",
            "--data-root",
            str(tiny_root),
            "--run-dir",
            str(run),
            "--num-epoch",
            "3",
            "--batch-size",
            "4",
            "--partial",
            "0.25",
            *FAST_ARGS,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "out of memory at batch size 4 in epoch 2" in err and "--batch-size 2" in err, err
    assert f"last checkpoint kept at {run / 'last.pt'}" in err
    assert load_checkpoint(run / "last.pt")["epoch"] == 1 and [r["epoch"] for r in epoch_rows(run)] == [0]


def test_out_of_memory_is_not_taken_for_a_compile_failure(tiny_root, tmp_path, capfd):
    tr = Trainer(fast_cfg(tiny_root, tmp_path / "run", num_epoch=1))

    def compiled_step(*a):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    tr.compiled_step = compiled_step  # as if compiled: the fallback guard is on
    with pytest.raises(OutOfMemory, match="batch size 2 in epoch 1; .*; no checkpoint written yet"):
        tr.fit()
    assert tr.compiled_step is compiled_step and tr.fallback is None
    assert "warning" not in capfd.readouterr().err


# == disk ==========================================================================================
def test_run_dir_under_a_file_fails_before_training(tiny_root, tmp_path, monkeypatch, capsys):
    """As root, chmod cannot make a folder unwritable; a run folder under a regular file cannot exist
    either."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    run = blocker / "run"
    monkeypatch.setattr(Trainer, "train_epoch", lambda *a: pytest.fail("training started"))
    with pytest.raises(Lab4Error, match="run folder is not writable") as ei:
        Trainer(fast_cfg(tiny_root, run)).fit()
    assert str(run) in str(ei.value) and "\n" not in str(ei.value)
    rc = cli.main(
        ["train", "--profile", "tiny", "--data_root", str(tiny_root), "--run-dir", str(run), *FAST_ARGS]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "not writable" in err and str(run) in err


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_unwritable_run_dir_fails_before_training(tiny_root, tmp_path, monkeypatch, err):
    """Permission denied / read-only / full filesystem at the write probe (simulated: tests run as root)."""
    run = tmp_path / "run"
    real_open = open

    def deny(path, *a, **kw):
        if Path(path).parent == run:
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(ckpt, "open", deny, raising=False)
    monkeypatch.setattr(Trainer, "train_epoch", lambda *a: pytest.fail("training started"))
    with pytest.raises(Lab4Error) as ei:
        Trainer(fast_cfg(tiny_root, run)).fit()
    msg = str(ei.value)
    assert msg.startswith(str(run)) and "not writable" in msg and os.strerror(err) in msg
    assert list(run.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_chmod_readonly_parent_fails_before_training(tiny_root, tmp_path, monkeypatch):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        monkeypatch.setattr(Trainer, "train_epoch", lambda *a: pytest.fail("training started"))
        with pytest.raises(Lab4Error, match="not writable"):
            Trainer(fast_cfg(tiny_root, parent / "run")).fit()
    finally:
        parent.chmod(0o700)


def _fd_name(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("target", ["last.pt", "metrics.csv"])
@pytest.mark.parametrize("where", ["fsync", "write"])
def test_full_disk_keeps_previous_file_and_no_temp(fast_run, tiny_root, tmp_path, monkeypatch, target, where):
    """ENOSPC while writing last.pt or metrics.csv: the previous file is untouched, no temp file stays."""
    run = copy_run(fast_run, tmp_path / "run")
    before = {n: sha(run / n) for n in ("last.pt", "metrics.csv")}
    tmp_names = []
    if where == "fsync":
        real_fsync = os.fsync

        def fsync(fd):
            name = _fd_name(fd)
            if Path(name).name.startswith(f".{target}."):
                tmp_names.append(name)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        real_fdopen = os.fdopen

        class HalfWriter(io.FileIO):
            def write(self, b):
                super().write(bytes(b)[: len(b) // 2])  # half the bytes land, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def fdopen(fd, mode="r", *a, **kw):
            name = _fd_name(fd)
            if "w" in mode and Path(name).name.startswith(f".{target}."):
                tmp_names.append(name)
                return HalfWriter(fd, "wb")
            return real_fdopen(fd, mode, *a, **kw)

        monkeypatch.setattr(os, "fdopen", fdopen)
    tr = Trainer(fast_cfg(tiny_root, run, num_epoch=3))
    with pytest.raises(Lab4Error) as ei:
        tr.fit(resume=True)
    monkeypatch.undo()
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(run / target)) and "No space left on device" in msg
    # a reader never takes it for last.pt
    assert len(tmp_names) == 1 and Path(tmp_names[0]).name.endswith(".tmp")
    assert not Path(tmp_names[0]).exists()
    assert strays(run) == []
    assert sha(run / "last.pt") == before["last.pt"]  # the previous checkpoint, byte for byte
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    if target == "metrics.csv":
        assert sha(run / "metrics.csv") == before["metrics.csv"]
    assert [r["epoch"] for r in epoch_rows(run)][:2] == [0, 1]


# == data ==========================================================================================
def _png(path: Path, size=(16, 8), mode="RGB", seed=0, fmt="PNG") -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if mode == "I;16":
        im = Image.fromarray((arr[..., 0].astype(np.uint16) * 257))
    elif mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)


def test_dataset_changed_after_caching_is_reloaded(tiny_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_root / "train", root / "train")
    first = load_split(root, "train", progress=False)
    again = load_split(root, "train", progress=False)  # served from the cache
    assert torch.equal(first.frames, again.frames)
    frame = root / "train" / "train_img" / "frame5.png"
    st_before = frame.stat()
    Image.new("RGB", Image.open(frame).size, (255, 255, 255)).save(frame)
    os.utime(frame, ns=(st_before.st_atime_ns, st_before.st_mtime_ns + 1_000_000))
    changed = load_split(root, "train", progress=False)
    assert (changed.frames[5] == 255).all() and not torch.equal(changed.frames[5], first.frames[5])
    keep = [i for i in range(len(first)) if i != 5]
    assert torch.equal(changed.frames[keep], first.frames[keep])
    assert torch.equal(changed.poses, first.poses)


def test_mixed_image_sizes_are_resized(tmp_path):
    sizes = [(64, 32), (128, 64), (40, 30), (17, 99), (64, 32)]
    for split in ("train",):
        for i, size in enumerate(sizes):
            _png(tmp_path / split / f"{split}_img" / f"frame{i}.png", size, seed=i)
            _png(tmp_path / split / f"{split}_label" / f"frame{i}.png", sizes[-1 - i], seed=10 + i)
    s = load_split(tmp_path, "train", 32, 64, progress=False)
    assert s.frames.shape == s.poses.shape == (5, 3, 32, 64) and s.frames.dtype == torch.uint8
    exact = np.array(Image.open(tmp_path / "train" / "train_img" / "frame0.png"))
    assert torch.equal(s.frames[0], torch.from_numpy(exact).permute(2, 0, 1))  # right size: untouched


LEAVES = [
    "train/train_img",
    "train/train_label",
    "val/val_img",
    "val/val_label",
    "test/test_img/0",
    "test/test_label/0",
    "test/test_img/1",
    "test/test_label/1",
]
FAULTS = [
    "missing_folder",
    "extra_file",
    "extra_file_outside",
    "bad_name",
    "truncated",
    "garbage",
    "empty",
    "missing_label",
    "missing_frame",
    "grayscale",
    "rgba",
    "palette",
    "16bit",
    "1bit",
    "jpeg_named_png",
    "other_size",
    "too_few_frames",
    "no_frames",
    "dir_named_like_frame",
    "hidden_file",
]


def _make_tree(root: Path, n: int) -> None:
    for leaf in LEAVES:
        count = 1 if leaf.startswith("test/test_img") else n
        for i in range(count):
            _png(root / leaf / f"frame{i}.png", seed=hash((leaf, i)) % 1000)


def _break(root: Path, fault: str, pick: int) -> None:
    leaf = root / LEAVES[pick % len(LEAVES)]
    files = sorted(p for p in leaf.glob("frame*.png") if p.is_file()) if leaf.is_dir() else []
    f = files[pick % len(files)] if files else None
    if fault == "missing_folder":
        shutil.rmtree([leaf, leaf.parent, root / "test"][pick % 3], ignore_errors=True)
    elif fault == "extra_file" and leaf.is_dir():
        (leaf / ["notes.txt", "Thumbs.db", "frame1.png.bak"][pick % 3]).write_text("x")
    elif fault == "extra_file_outside":
        (root / "train").mkdir(exist_ok=True)
        (root / "train" / "README.txt").write_text("x")
    elif fault == "bad_name" and f:
        f.rename(
            f.with_name(["Frame1.png", "frame_1.png", "frame1.jpg", "frame.png", "frame-1.png"][pick % 5])
        )
    elif fault == "truncated" and f:
        data = f.read_bytes()
        f.write_bytes(data[: max(1, (pick * 7919) % len(data))])
    elif fault == "garbage" and f:
        f.write_bytes(random.Random(pick).randbytes(1 + pick % 300))
    elif fault == "empty" and f:
        f.write_bytes(b"")
    elif fault in ("missing_label", "missing_frame") and f:
        other = "label" if fault == "missing_label" else "img"
        target = (
            Path(str(f).replace("_img", "_label"))
            if other == "label"
            else Path(str(f).replace("_label", "_img"))
        )
        target.unlink(missing_ok=True)
    elif fault in ("grayscale", "rgba", "palette", "16bit", "1bit") and f:
        _png(
            f,
            mode={"grayscale": "L", "rgba": "RGBA", "palette": "P", "16bit": "I;16", "1bit": "1"}[fault],
            seed=pick,
        )
    elif fault == "jpeg_named_png" and f:
        _png(f, fmt="JPEG", seed=pick)
    elif fault == "other_size" and f:
        _png(f, size=(1 + pick % 50, 1 + (pick * 3) % 40), seed=pick)
    elif fault in ("too_few_frames", "no_frames") and files:
        for g in files[(1 if fault == "too_few_frames" else 0) :]:
            g.unlink()
    elif fault == "dir_named_like_frame" and leaf.is_dir():
        (leaf / "frame99.png").mkdir(exist_ok=True)
    elif fault == "hidden_file" and leaf.is_dir():
        (leaf / ".DS_Store").write_bytes(b"\0\1")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 4),
    faults=st.lists(st.tuples(st.sampled_from(FAULTS), st.integers(0, 10_000)), max_size=4),
)
def test_broken_dataset_trees_fail_cleanly(n, faults):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        _make_tree(root, n)
        for fault, pick in faults:
            _break(root, fault, pick)
        loaders = [
            lambda: load_split(root, "train", 8, 16, progress=False),
            lambda: load_split(root, "val", 8, 16, progress=False),
            lambda: load_test(root, 8, 16, progress=False),
        ]
        for load in loaders:
            try:
                out = load()
            except Lab4Error as e:
                msg = str(e)
                assert msg and "\n" not in msg, msg
                assert str(root) in msg, msg
                continue
            tensors = [out.frames, out.poses] if hasattr(out, "frames") else [t for pair in out for t in pair]
            for t in tensors:
                assert t.dtype == torch.uint8 and tuple(t.shape[-3:]) == (3, 8, 16)


# == submissions (CLI score) =======================================================================
GT_SEQS, GT_LEN, NV = 2, 3, 3 * 32 * 64


def _submission_variants(gt_values: np.ndarray) -> dict[str, str]:
    header = ["id"] + [str(i) for i in range(NV)]
    rows = [[str(i)] + [str(v) for v in r] for i, r in enumerate(gt_values)]

    def text(h, rs):
        return "\n".join(",".join(x) for x in ([h] if h else []) + rs) + "\n"

    def with_value(v):
        rs = [list(r) for r in rows]
        rs[1][5] = v
        return text(header, rs)

    return {
        "valid": text(header, rows),
        "extra_column": text(header + [str(NV)], [r + ["0"] for r in rows]),
        "missing_column": text(header[:-1], [r[:-1] for r in rows]),
        "row_missing_value": text(header, rows[:2] + [rows[2][:-1]] + rows[3:]),
        "too_few_rows": text(header, rows[:-1]),
        "too_many_rows": text(header, rows + [[str(len(rows))] + rows[0][1:]]),
        "missing_header": text(None, rows),
        "nan": with_value("nan"),
        "negative": with_value("-1"),
        "over_255": with_value("256"),
        "non_integer": with_value("12.5"),
        "non_numeric": with_value("abc"),
        "empty": "",
    }


SCORE_FAULTS = {
    "extra_column": "columns",
    "missing_column": "columns",
    "row_missing_value": "line 4 has",
    "too_few_rows": "rows, expected",
    "too_many_rows": "more than the expected",
    "missing_header": "header",
    "nan": "NaN",
    "negative": "outside 0-255",
    "over_255": "outside 0-255",
    "non_integer": "non-integer",
    "non_numeric": "non-numeric",
    "empty": "empty",
}


def _write_score_inputs(base: Path) -> dict[str, Path]:
    gt = []
    for k in range(GT_SEQS):
        for j in range(GT_LEN):
            _png(base / "gt" / str(k) / f"frame{j}.png", size=(64, 32), seed=100 * k + j)
            gt.append(
                np.asarray(Image.open(base / "gt" / str(k) / f"frame{j}.png")).transpose(2, 0, 1).reshape(-1)
            )
    paths = {}
    for name, body in _submission_variants(np.stack(gt)).items():
        paths[name] = base / f"{name}.csv"
        paths[name].write_text(body)
    return paths


@pytest.fixture(scope="module")
def real_cli(fast_run, tiny_root, tmp_path_factory):
    """The few faults also checked through real `python -m lab4` subprocesses (started early, side by
    side)."""
    base = tmp_path_factory.mktemp("real_cli")
    subs = _write_score_inputs(base)
    run = copy_run(fast_run, base / "truncated")
    _bad_checkpoint("truncated", fast_run / "last.pt", run / "last.pt", base / "pwned")
    cmds = {
        "score_valid": lab4_cmd("score", subs["valid"], "--gt", base / "gt"),
        "score_nan": lab4_cmd("score", subs["nan"], "--gt", base / "gt"),
        "evaluate_truncated": lab4_cmd(
            "evaluate", "--run-dir", run, "--data-root", tiny_root, "--device", "cpu"
        ),
    }
    bg = Background(cmds)
    yield dict(base=base, subs=subs, results=bg)
    bg.close()


def test_cli_subprocess_score(real_cli):
    res = real_cli["results"]["score_valid"]
    assert res.returncode == 0, res.stderr
    assert "public 100.000 dB" in res.stdout  # exact frames get the PSNR cap
    assert_one_line_cli_error(real_cli["results"]["score_nan"], str(real_cli["subs"]["nan"]), "NaN")


@pytest.fixture(scope="module")
def score_inputs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("score")
    return dict(base=base, paths=_write_score_inputs(base))


@pytest.mark.parametrize("fault", ["valid", *SCORE_FAULTS])
def test_cli_score_malformed_submission_exit_2(fault, score_inputs, capsys):
    path = score_inputs["paths"][fault]
    rc = cli.main(["score", str(path), "--gt", str(score_inputs["base"] / "gt")])
    res = subprocess.CompletedProcess([], rc, *capsys.readouterr())
    if fault == "valid":
        assert rc == 0 and "public 100.000 dB" in res.stdout, res.stderr
    else:
        assert_one_line_cli_error(res, str(path), SCORE_FAULTS[fault])


# == concurrency ===================================================================================
def test_second_trainer_on_same_run_is_refused(fast_run, tiny_root, tmp_path, capsys):
    """Another process holds the run's lock: training refuses, touches nothing; after release it resumes."""
    run = copy_run(fast_run, tmp_path / "run")
    before = {n: sha(run / n) for n in ("last.pt", "metrics.csv", "config.json")}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); sys.stdin.read()",
            str(run / ".lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Lab4Error, match="another process is training this run") as ei:
            Trainer(fast_cfg(tiny_root, run, num_epoch=3)).fit(resume=True)
        assert str(run) in str(ei.value) and "\n" not in str(ei.value)
        rc = cli.main(
            [
                "train",
                "--profile",
                "tiny",
                "--data_root",
                str(tiny_root),
                "--run-dir",
                str(run),
                "--resume",
                "--num_epoch",
                "3",
                *FAST_ARGS,
            ]
        )
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "another process is training this run" in err
        assert {n: sha(run / n) for n in before} == before
    finally:
        holder.communicate("", timeout=30)
    tr = Trainer(fast_cfg(tiny_root, run, num_epoch=3)).fit(resume=True)
    assert tr.epoch == 3 and [r["epoch"] for r in epoch_rows(run)] == [0, 1, 2]


# == papermill driver ==============================================================================
def _papermill_missing() -> bool:
    try:
        import papermill  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(_papermill_missing(), reason="papermill is not installed")
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_sigkill_papermill_driver_then_rerun_resumes(tiny_root, tmp_path):
    """SIGKILL of `python -m lab4 grid` (driver, papermill and its kernel) mid-run: last.pt stays loadable,
    no summary.json; re-running the driver resumes from last.pt and ends bit-identical to an uninterrupted
    run."""
    import json

    import psutil
    import yaml

    name = "killed"
    overrides = {**FAST, "num_epoch": 6, "per_save": 1, "partial": 0.5}
    grid, runs = tmp_path / "grid.yaml", tmp_path / "runs"
    grid.write_text(
        yaml.safe_dump(
            {"experiments": [{"name": name, "overrides": {**overrides, "data_root": str(tiny_root)}}]}
        )
    )
    run = runs / name
    cmd = [
        sys.executable,
        "-m",
        "lab4",
        "grid",
        "--grid",
        str(grid),
        "--profile",
        "tiny",
        "--runs",
        str(runs),
    ]
    # os.environ now has conftest's LAB4_CACHE
    env = {k: v for k, v in os.environ.items() if k != "LAB4_DATA"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    driver = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if (run / "last.pt").exists() and (run / "metrics.csv").exists() and len(epoch_rows(run)) >= 2:
                break
            time.sleep(0.005)
        assert driver.poll() is None, (
            f"driver ended before it could be killed: {driver.stdout.read()[-2000:]}"
        )
        # jupyter_client starts the kernel in a session of its own: kill its group along with the driver's
        kernels = psutil.Process(driver.pid).children(recursive=True)
        groups = {os.getpgid(driver.pid)} | {os.getpgid(p.pid) for p in kernels}
        for pgid in groups:
            os.killpg(pgid, signal.SIGKILL)
        driver.wait(timeout=30)
        assert driver.returncode == -signal.SIGKILL
        _, alive = psutil.wait_procs(kernels, timeout=30)
        assert not alive, alive
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        driver.stdout.close()

    state = load_checkpoint(run / "last.pt")  # intact and loadable
    assert 1 <= state["epoch"] < 6
    assert not (run / "summary.json").exists()

    # re-run the driver (it resumes from last.pt) while the uninterrupted reference trains in this process
    rerun = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        ref = tmp_path / "ref"
        # 02_train.ipynb: make_config(profile, **{**extra, **flat}),
        # flat = name, data_root, run_dir (+ unset Nones)
        Trainer(make_config("tiny", name=name, data_root=str(tiny_root), run_dir=str(ref), **overrides)).fit()
        out, _ = rerun.communicate(timeout=240)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.communicate()
    assert rerun.returncode == 0, out[-3000:]
    assert "[1/1] killed: done in" in out, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 6 and summary["name"] == name

    got, want = json.loads((run / "config.json").read_text()), json.loads((ref / "config.json").read_text())
    assert got.pop("run_dir") != want.pop("run_dir") and got == want  # same config but for the folder
    a, b = load_checkpoint(run / "last.pt"), load_checkpoint(ref / "last.pt")
    assert a["epoch"] == b["epoch"] == 6
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["epoch"] for r in epoch_rows(run)] == list(range(6))
