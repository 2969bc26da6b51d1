"""The CPU speedrun harness and the levers it measures: bf16 detection, loss balance, lr warm-up/cosine, init."""
from __future__ import annotations

import json
import math

import pytest
import torch

from lab4 import hardware, speedrun, train
from lab4.config import make_config
from lab4.errors import Lab4Error
from lab4.model import CVAE
from lab4.schedules import lr_multiplier, step_factor

X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_harness_stops_at_its_budget_and_writes_the_record(tiny_root, tmp_path):
    rec = speedrun.run_one("base", 3, 1.0, tmp_path, profile="tiny", data_root=str(tiny_root))
    saved = json.loads((tmp_path / "base" / "seed3.json").read_text())
    assert saved == json.loads(json.dumps(rec))
    # it stops at the first iteration past the budget: at least the budget, less than budget + a few iterations
    assert 1.0 <= rec["train_cpu_s"] < 1.0 + 5 * rec["train_cpu_s"] / rec["iters"] and rec["iters"] >= 1
    assert rec["frames_trained"] == rec["iters"] * 2 * 15 and rec["seed"] == 3 and not rec["diverged"]
    assert math.isfinite(rec["val_psnr"]) and math.isfinite(rec["first10_psnr"])
    assert rec["val_frames"] == 24 and rec["baseline_first10_psnr"] > rec["baseline_psnr"]  # tiny val: 24 frames
    assert {"cpu", "native_bf16"} <= set(rec["machine"]) and rec["threads"] == 1
    assert "| base | " in speedrun.table(tmp_path)
    with pytest.raises(Lab4Error, match="unknown variant 'warp'"):
        speedrun.run_one("warp", 0, 1.0, tmp_path, profile="tiny", data_root=str(tiny_root))


def test_bf16_detection_from_cpu_flags():
    assert hardware.cpu_has_native_bf16(X86_BF16) and hardware.cpu_has_native_bf16(ARM_BF16)
    assert not hardware.cpu_has_native_bf16(X86_PLAIN) and not hardware.cpu_has_native_bf16("")


@pytest.mark.parametrize("native", [True, False])
def test_amp_on_cpu_only_with_native_bf16(tiny_root, tmp_path, monkeypatch, native):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda cpuinfo=None: native)
    cfg = make_config("tiny", data_root=str(tiny_root), run_dir=str(tmp_path), device="cpu", amp=True)
    tr = train.Trainer(cfg)
    assert tr.amp is native and tr.speed["amp"] is native
    assert not train.Trainer(cfg.replace(amp=False)).amp  # never without asking
    if native:  # the layers run in bf16, the loss and its terms stay fp32
        frames = torch.rand(2, 4, 3, 32, 64)
        out = tr._forward_backward(frames, frames, 1.0, True)
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
    assert make_config("lab").kl_weight == 1.0 and make_config("lab").init == "default"
    assert make_config("lab").lr_warmup == 0.0 and make_config("lab").lr_schedule == "step"
    with pytest.raises(Lab4Error, match="kl_weight must be >= 0"):
        make_config("tiny", kl_weight=-1.0)


def test_lr_warmup_and_cosine():
    assert lr_multiplier(0.3) == 1.0 and lr_multiplier(0.05, "step", 0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.1, "cosine", 0.1) == pytest.approx(1.0) and lr_multiplier(1.0, "cosine") == pytest.approx(0)
    assert lr_multiplier(0.5, "cosine") == pytest.approx(0.5)
    assert step_factor(0.79, [0.8], 0.1) == 1.0 and step_factor(0.8, [0.8], 0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="step or cosine"):
        lr_multiplier(0.5, "linear")


def test_trainer_warmup_steps_smaller_and_logs_the_scheduled_lr(tiny_root, tmp_path):
    def first_step(**kw):
        cfg = make_config("tiny", data_root=str(tiny_root), run_dir=str(tmp_path), device="cpu", **kw)
        tr = train.Trainer(cfg)
        before = [p.detach().clone() for p in tr.model.parameters()]
        tr._forward_backward(torch.rand(2, 4, 3, 32, 64), torch.rand(2, 4, 3, 32, 64), 1.0, True)
        tr._optimizer_step(lr_multiplier(0.01, cfg.lr_schedule, cfg.lr_warmup))
        assert tr.optimizer.param_groups[0]["lr"] == cfg.lr  # restored after the step
        return max((p - b).abs().max().item() for p, b in zip(tr.model.parameters(), before))

    assert first_step(lr_warmup=0.5) < 0.1 * first_step()  # 2% of the lr: Adam's first step is ~lr per weight


def test_kaiming_init_follows_the_seed():
    def weights(seed, init):
        torch.manual_seed(seed)
        return train.build_model(make_config("tiny", init=init)).Generator[-1].weight

    assert torch.equal(weights(0, "kaiming"), weights(0, "kaiming"))
    assert not torch.equal(weights(0, "kaiming"), weights(1, "kaiming"))
    assert not torch.equal(weights(0, "kaiming"), weights(0, "default"))
    torch.manual_seed(0)
    model = train.build_model(make_config("tiny", init="kaiming"))
    assert all(m.bias is None or not m.bias.any() for m in model.modules() if isinstance(m, torch.nn.Conv2d))
