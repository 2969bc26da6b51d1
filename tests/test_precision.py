"""The training precision chosen per device (bf16, fp16 with a GradScaler, fp32), its fp16 step on the CPU,
the scaler's state across a resume, and what summary.json records about the precision and the machine.

GPUs are faked (compute capability and name monkeypatched): nothing here allocates on CUDA. The fp16 runs use
the CPU's float16 autocast with the Trainer's precision forced, a small model on 8x16 frames and one thread.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import lab4.train
from lab4.checkpoint import load_checkpoint, save_checkpoint
from lab4.config import make_config
from lab4.datasets.official import load_split
from lab4.run.after_training import write_summary
from lab4.run.folder import RunDir
from lab4.train import Trainer
from lab4.util.device import Precision, choose_precision

FAST = dict(
    frame_H=8,
    frame_W=16,
    train_vi_len=4,
    F_dim=8,
    L_dim=4,
    N_dim=4,
    D_out_dim=8,
    val_every=0,
    device="cpu",
    kl_anneal_type="none",
)
X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
FP16 = Precision("fp16", True, True, "fp16 with a GradScaler: forced for the test")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """2 shared cores: oversubscribed intra-op threads make a tiny epoch many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def splits(tiny_root):
    return (
        load_split(tiny_root, "train", 8, 16, progress=False),
        load_split(tiny_root, "val", 8, 16, progress=False),
    )


@pytest.fixture
def fp16(monkeypatch):
    """The Trainer's precision forced to fp16 with a GradScaler where amp is on, as on a 7.x GPU."""
    monkeypatch.setattr(
        lab4.train, "choose_precision", lambda amp, device: FP16 if amp else choose_precision(amp, device)
    )


def _cfg(tiny_root, run_dir, **kw):
    return make_config("tiny", data_root=str(tiny_root), run_dir=str(run_dir), **{"amp": True, **FAST, **kw})


def _fake_gpu(monkeypatch, capability, name="Fake GPU"):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "capability, dtype, scaler, compile_ok",
    [
        ((9, 0), "bf16", False, True),
        ((8, 0), "bf16", False, True),
        ((7, 5), "fp16", True, True),
        ((7, 0), "fp16", True, True),
        ((6, 0), "fp32", False, False),
    ],
)
def test_cuda_precision_follows_the_compute_capability(monkeypatch, capability, dtype, scaler, compile_ok):
    _fake_gpu(monkeypatch, capability, "Tesla Test")
    p = choose_precision(True, torch.device("cuda"))
    assert (p.dtype, p.scaler, p.compile_ok) == (dtype, scaler, compile_ok)
    assert p.reason.startswith(dtype) and "Tesla Test" in p.reason and "{}.{}".format(*capability) in p.reason
    off = choose_precision(False, torch.device("cuda"))  # no amp: fp32, compile where Triton runs
    assert (off.dtype, off.scaler, off.compile_ok) == ("fp32", False, compile_ok)


@pytest.mark.timeout(30)
def test_compile_and_cuda_graphs_go_off_where_triton_cannot_run(monkeypatch, tiny_root):
    cfg = make_config("tiny", data_root=str(tiny_root), compile=True, cuda_graphs=True)
    _fake_gpu(monkeypatch, (6, 0), "Tesla P100-PCIE-16GB")
    fast, why = choose_precision(True, torch.device("cuda")).fast_path(cfg)
    # the run's own config keeps what it asked
    assert not fast.compile and not fast.cuda_graphs and cfg.compile
    assert why.startswith("torch.compile: ") and "Triton" in why and "6.0" in why
    _fake_gpu(monkeypatch, (7, 5))
    assert choose_precision(True, torch.device("cuda")).fast_path(cfg) == (cfg, None)
    _fake_gpu(monkeypatch, (6, 0))
    eager = cfg.replace(compile=False, cuda_graphs=False)
    assert choose_precision(True, torch.device("cuda")).fast_path(eager) == (eager, None)


@pytest.mark.timeout(30)
def test_cpu_precision_is_bf16_only_with_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    native = choose_precision(True, cpu, cpuinfo=X86_BF16)
    assert (native.dtype, native.scaler, native.compile_ok) == ("bf16", False, True)
    plain = choose_precision(True, cpu, cpuinfo=X86_PLAIN)
    assert (plain.dtype, plain.scaler, plain.compile_ok) == (
        "fp32",
        False,
        True,
    ) and "no native bf16" in plain.reason
    monkeypatch.setenv("LAB4_CPU_BF16", "0")  # how `make report` measures as on a CPU without it
    env = choose_precision(True, cpu)
    assert env.dtype == "fp32" and "LAB4_CPU_BF16=0" in env.reason
    monkeypatch.delenv("LAB4_CPU_BF16")
    for device in (cpu, torch.device("meta")):
        off = choose_precision(False, device, cpuinfo=X86_BF16)
        assert (off.dtype, off.scaler, off.compile_ok) == ("fp32", False, True) and "amp is off" in off.reason


@pytest.mark.timeout(30)
def test_autocast_and_scaler_of_each_precision():
    cpu = torch.device("cpu")
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 6, 6)
    for p, want in (
        (FP16, torch.float16),
        (Precision("bf16", False, True, ""), torch.bfloat16),
        (Precision("fp32", False, True, ""), torch.float32),
    ):
        with p.autocast(cpu):
            assert conv(x).dtype == want
        assert p.grad_scaler(cpu).is_enabled() is p.scaler


@pytest.mark.timeout(120)
def test_fp16_with_grad_scaler_trains_on_the_cpu(fp16, tiny_root, splits, tmp_path):
    """Two epochs in fp16 autocast with the GradScaler: finite losses, steps taken once the scale has come
    down from 65536 (the first ones overflow fp16 and are skipped), the logged gradient norm the true
    (unscaled) one, and summary.json saying which precision and why."""
    tr = Trainer(_cfg(tiny_root, tmp_path / "fp16"), *splits).fit()
    assert tr.precision == FP16 and tr.scaler.is_enabled() and tr.amp and tr.speed["amp"] is True
    iters = [r for r in tr.rows if r["kind"] == "iter"]
    assert len(iters) > 2 and all(math.isfinite(r["loss"]) for r in iters)
    assert any(math.isfinite(r["grad_norm"]) for r in iters) and 1 < tr.scaler.get_scale() < 2.0**16
    # one step from the same weights, clips and noise in fp16 and in fp32: the logged norms agree
    a, b = (
        Trainer(_cfg(tiny_root, tmp_path / name, amp=amp), *splits)
        for name, amp in (("a", True), ("b", False))
    )
    assert b.precision.dtype == "fp32" and not b.scaler.is_enabled()
    a.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)  # small enough not to overflow
    starts, norms = a.sampler.batches(1.0)[0], []
    for t in (a, b):
        torch.manual_seed(0)
        norms.append(t.step(starts, 0.0).values[3].item())
    assert norms[0] == pytest.approx(norms[1], rel=0.05)  # not 16 times it
    summary = write_summary(tr, {}, {})
    saved = json.loads((tr.run_dir / RunDir.SUMMARY).read_text())
    assert saved["precision"] == summary["precision"] == "fp16"
    assert saved["precision_reason"] == FP16.reason and saved["speed"]["amp"] is True
    assert {"processor", "cpus", "threads", "device"} <= set(saved)  # what readers already use
    mach = saved["machine"]
    assert mach["torch"] == torch.__version__ and mach["cpus"] == saved["cpus"]
    assert saved["processor"] == mach["cpu_model_name"] and mach["cpu"].startswith(mach["cpu_model_name"])


@pytest.mark.timeout(120)
def test_a_skipped_fp16_step_is_not_a_non_finite_loss(fp16, tiny_root, splits, tmp_path):
    """A scale so large that every gradient overflows in fp16: the scaler skips those steps and lowers its
    scale, the losses stay finite, and the run is not stopped as diverged."""
    tr = Trainer(_cfg(tiny_root, tmp_path / "overflow", num_epoch=1), *splits)
    tr.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**60)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    log = tr.step(tr.sampler.batches(1.0)[0], 0.0)
    assert math.isfinite(log.loss.item()) and not math.isfinite(log.values[3].item())  # norm inf: skipped
    assert tr.scaler.get_scale() == 2.0**59
    # no weight moved (BatchNorm statistics do, in the forward)
    assert all(
        torch.equal(v, before[k])
        for k, v in tr.model.state_dict().items()
        if v.is_floating_point() and "running" not in k
    )
    tr.fit()  # an epoch of such steps
    assert not (tr.run_dir / RunDir.DIVERGED).exists() and tr.epoch == 1
    assert tr.scaler.get_scale() < 2.0**59
    assert all(math.isfinite(r["loss"]) for r in tr.rows if r["kind"] == "iter")


@pytest.mark.timeout(180)
def test_scaler_state_is_saved_and_restored_on_resume(fp16, tiny_root, splits, tmp_path):
    """last.pt keeps the GradScaler's state; a resumed fp16 run restores it and ends with the weights of an
    uninterrupted one. A checkpoint without it (older, or from a bf16/fp32 run) still loads."""
    straight = Trainer(_cfg(tiny_root, tmp_path / "straight"), *splits).fit()
    run = tmp_path / "resumed"
    first = Trainer(_cfg(tiny_root, run, num_epoch=1), *splits).fit()
    saved = load_checkpoint(run / RunDir.LAST, map_location="cpu")["scaler"]
    assert saved == first.scaler.state_dict() and saved["scale"] > 0
    again = Trainer(_cfg(tiny_root, run), *splits)
    again.load(run / RunDir.LAST)
    assert again.scaler.state_dict() == saved
    resumed = Trainer(_cfg(tiny_root, run), *splits).fit(resume=True)
    assert resumed.epoch == 2 and resumed.scaler.state_dict() == straight.scaler.state_dict()
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # an older checkpoint, without the scaler's state: it loads, and the scaler starts afresh
    state = load_checkpoint(run / RunDir.LAST, map_location="cpu")
    del state["scaler"]
    save_checkpoint(tmp_path / "old.pt", state)
    old = Trainer(_cfg(tiny_root, tmp_path / "old"), *splits)
    old.load(tmp_path / "old.pt")
    assert old.epoch == 2 and old.scaler.state_dict() == FP16.grad_scaler(torch.device("cpu")).state_dict()
