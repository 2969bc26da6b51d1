"""The CPU speedrun harness and the levers it measures: bf16 detection, loss balance, lr warm-up/cosine,
init."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lab4 import train
from lab4.config import make_config
from lab4.model import CVAE
from lab4.perf import speedrun
from lab4.schedules import beta_at
from lab4.util import device
from lab4.util.errors import Lab4Error

X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_harness_stops_at_its_budget_and_writes_the_record(tiny_root, tmp_path):
    rec = speedrun.run_one("base", 3, 1.0, tmp_path, profile="tiny", data_root=str(tiny_root))
    saved = json.loads((tmp_path / "base" / "seed3.json").read_text())
    assert saved == json.loads(json.dumps(rec))
    # it stops at the first iteration past the budget: at
    # least the budget, less than budget + a few iterations
    assert 1.0 <= rec["train_cpu_s"] < 1.0 + 5 * rec["train_cpu_s"] / rec["iters"] and rec["iters"] >= 1
    assert rec["frames_trained"] == rec["iters"] * 2 * 15 and rec["seed"] == 3 and not rec["diverged"]
    assert math.isfinite(rec["val_psnr"]) and math.isfinite(rec["first10_psnr"])
    # tiny val: 24 frames
    assert rec["val_frames"] == 24 and rec["baseline_first10_psnr"] > rec["baseline_psnr"]
    assert {"cpu", "native_bf16"} <= set(rec["machine"]) and rec["threads"] == 1
    assert "| base | " in speedrun.table(tmp_path)
    with pytest.raises(Lab4Error, match="unknown variant 'warp'"):
        speedrun.run_one("warp", 0, 1.0, tmp_path, profile="tiny", data_root=str(tiny_root))


def test_bf16_detection_from_cpu_flags():
    assert device.cpu_has_native_bf16(X86_BF16) and device.cpu_has_native_bf16(ARM_BF16)
    assert not device.cpu_has_native_bf16(X86_PLAIN) and not device.cpu_has_native_bf16("")


@pytest.mark.parametrize("native", [True, False])
def test_amp_on_cpu_only_with_native_bf16(tiny_root, tmp_path, monkeypatch, native):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda cpuinfo=None: native)
    cfg = make_config("tiny", data_root=str(tiny_root), run_dir=str(tmp_path), device="cpu", amp=True)
    tr = train.Trainer(cfg)
    assert tr.amp is native and tr.speed["amp"] is native
    assert not train.Trainer(cfg.replace(amp=False)).amp  # never without asking
    if native:  # the layers run in bf16, the loss and its terms stay fp32
        frames = torch.rand(2, 4, 3, 32, 64)
        out = tr.loss_backward(frames, frames, 1.0, True)
        assert out["loss"].dtype == out["mse"].dtype == out["kl"].dtype == torch.float32


def test_kl_weight_scales_only_the_kl_and_defaults_to_the_labs_loss():
    torch.manual_seed(0)
    model = CVAE(16, 8, 4, 16).train()
    frames, poses = torch.rand(2, 4, 3, 32, 64), torch.rand(2, 4, 3, 32, 64)

    def loss(**kw):
        torch.manual_seed(1)
        return model.clip_loss(frames, poses, 0.5, True, **kw)

    lab, weighted = loss(), loss(kl_weight=1e-3)
    torch.testing.assert_close(lab["loss"], lab["mse"] + 0.5 * lab["kl"])
    torch.testing.assert_close(weighted["loss"], weighted["mse"] + 0.5 * 1e-3 * weighted["kl"])
    torch.testing.assert_close(weighted["kl"], lab["kl"])  # the logged KL is the lab's either way
    assert make_config("lab").kl_weight == 1.0
    with pytest.raises(Lab4Error, match="kl_weight must be >= 0"):
        make_config("tiny", kl_weight=-1.0)


def test_lr_follows_torchs_multisteplr_to_the_bit(tiny_root, tmp_path):
    """The Trainer sets the lr of each step from its fractional epoch; it must be torch's MultiStepLR at the
    lab's milestones, stepped once per epoch, value for value."""
    cfg = make_config(
        "tiny",
        data_root=str(tiny_root),
        run_dir=str(tmp_path),
        device="cpu",
        lr=3e-3,
        milestones=(2, 5),
        gamma=0.1,
        num_epoch=8,
    )
    tr = train.Trainer(cfg)
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), gamma=cfg.gamma)
    for epoch in range(cfg.num_epoch):
        for frac in (0.0, 0.5, 0.999):
            assert tr.lr_at(epoch + frac) == opt.param_groups[0]["lr"], (epoch, frac)
        opt.step(), sched.step()


def test_one_step_logs_and_moves_the_weights(tiny_root, tmp_path):
    cfg = make_config("tiny", data_root=str(tiny_root), run_dir=str(tmp_path), device="cpu")
    tr = train.Trainer(cfg)
    before = [p.detach().clone() for p in tr.model.parameters()]
    log = tr.step(tr.sampler.batches()[0], 1.5)
    assert log.values.shape == (4,) and torch.isfinite(log.values).all()
    assert log.beta == beta_at(cfg, 1.5) and tr.optimizer.param_groups[0]["lr"] == tr.lr_at(1.5)
    assert any(not torch.equal(p, b) for p, b in zip(tr.model.parameters(), before))


def test_per_frame_teacher_forcing_is_the_batched_loss(monkeypatch):
    """One frame at a time (the lab's step) and all frames as one batch compute the same loss. In training
    mode BatchNorm's batch statistics tell them apart, and the z draws fall in another order, so compare in
    eval mode with z = mu."""
    import lab4.model

    monkeypatch.setattr(lab4.model, "reparameterize", lambda mu, logvar: mu)
    torch.manual_seed(0)
    model = CVAE(16, 8, 4, 16).eval()
    frames, poses = torch.rand(2, 5, 3, 32, 64), torch.rand(2, 5, 3, 32, 64)

    def loss(batched):
        return model.clip_loss(frames, poses, 0.5, True, batched=batched)

    a, b = loss(True), loss(False)
    torch.testing.assert_close(a["mse"], b["mse"])
    torch.testing.assert_close(a["kl"], b["kl"])


def test_bf16_can_be_turned_off_to_measure_a_cpu_without_it(monkeypatch):
    monkeypatch.setenv("LAB4_CPU_BF16", "0")
    assert not device.cpu_has_native_bf16()
    assert device.cpu_has_native_bf16(X86_BF16)  # given flags are read as given
