"""The lab's modules: shapes, parameter count, quirks, reparameterization, KL, clip loss, rollout."""

import math

import pytest
import torch
import torch.nn as nn

from lab4 import model as M
from lab4.model import (
    CVAE,
    ConvFFN,
    DecoderFusion,
    DepthConv,
    DepthConvBlock,
    GaussianPredictor,
    Generator,
    LabelEncoder,
    ResidualBlock,
    RGBEncoder,
    count_parameters,
    kl_divergence,
    reparameterize,
)

torch.set_num_threads(1)  # 2 shared cores: one thread per process is far faster under contention

B, H, W = 2, 8, 16
F, L, N, D = 16, 8, 4, 16


def small_model(seed=0):
    torch.manual_seed(seed)
    return CVAE(F, L, N, D)


@pytest.mark.parametrize(
    "mod,cin,cout",
    [
        (ResidualBlock(3, 6), 3, 6),
        (ResidualBlock(6, 6), 6, 6),
        (DepthConv(4, 8), 4, 8),
        (DepthConv(5, 5), 5, 5),
        (ConvFFN(6), 6, 6),
        (DepthConvBlock(4), 4, 4),
        (DepthConvBlock(4, 12), 4, 12),
        (RGBEncoder(F), 3, F),
        (LabelEncoder(L), 3, L),
        (DecoderFusion(F + L + N, D), F + L + N, D),
        (Generator(D), D, 3),
    ],
)
def test_module_shapes(mod, cin, cout):
    y = mod(torch.randn(B, cin, H, W))
    assert y.shape == (B, cout, H, W)


def test_gaussian_predictor_shapes():
    gp = GaussianPredictor(F + L, N)
    mu, logvar = gp(torch.randn(B, F, H, W), torch.randn(B, L, H, W))
    assert mu.shape == logvar.shape == (B, N, H, W)


def test_default_parameter_count():
    assert count_parameters(CVAE()) == 1_585_620
    assert count_parameters(CVAE(128, 32, 12, 192)) == 1_585_620


def test_bad_dims_rejected():
    with pytest.raises(ValueError):
        CVAE(12, 8, 4, 16)
    with pytest.raises(ValueError):
        CVAE(16, 8, 6, 16)


def _slope_one_relus(mod):
    return [m for m in mod.modules() if isinstance(m, nn.LeakyReLU) and m.negative_slope == 1.0]


def test_slope_one_leaky_relu_quirk():
    le, gp = LabelEncoder(L), GaussianPredictor(F + L, N)
    assert len(_slope_one_relus(le)) == 1 and len(_slope_one_relus(gp)) == 1
    # the quirk makes it the identity on negative inputs too
    act = _slope_one_relus(le)[0]
    x = torch.linspace(-3, 3, 13)
    assert torch.equal(act(x), x)
    # the ordinary blocks keep slope 0.01
    rb = ResidualBlock(3, 4)
    assert rb.act.negative_slope == 0.01
    assert ConvFFN(4).act.negative_slope == 0.1
    # position: right after BatchNorm in the label encoder, before the final 1x1 conv in the predictor
    assert isinstance(le[2], nn.BatchNorm2d) and le[3] is act
    assert gp.net[-2] is _slope_one_relus(gp)[0] and isinstance(gp.net[-1], nn.Conv2d)


def test_leaky_true_slope_option_replaces_only_the_two_identity_layers():
    """The template's quirk is the default; leaky_true_slope=0.01 turns just those two layers into a
    LeakyReLU, with the same parameters (a checkpoint loads into either)."""
    from lab4.config import make_config
    from lab4.train import build_model

    template, fixed = (
        build_model(make_config("tiny")),
        build_model(make_config("tiny", leaky_true_slope=0.01)),
    )
    slopes = {n: m.negative_slope for n, m in template.named_modules() if isinstance(m, nn.LeakyReLU)}
    other = {n: m.negative_slope for n, m in fixed.named_modules() if isinstance(m, nn.LeakyReLU)}
    changed = {n for n in slopes if slopes[n] != other[n]}
    assert changed == {"label_transformation.3", "Gaussian_Predictor.net.5"}
    assert all(slopes[n] == 1.0 and other[n] == 0.01 for n in changed)
    assert [k for k, _ in template.state_dict().items()] == [k for k, _ in fixed.state_dict().items()]
    x = torch.linspace(-3, 3, 13)
    assert torch.equal(fixed.label_transformation[3](x), torch.where(x < 0, 0.01 * x, x))


def test_reparameterize_statistics_and_gradients():
    torch.manual_seed(0)
    n = 200_000
    mu = torch.tensor([0.5, -2.0, 3.0]).repeat(n, 1).requires_grad_()
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25)]).repeat(n, 1).requires_grad_()
    z = reparameterize(mu, logvar)
    assert z.shape == mu.shape
    assert torch.allclose(z.mean(0), torch.tensor([0.5, -2.0, 3.0]), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0, 0.5]), rtol=0.02)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0
    # dz/dlogvar = 0.5 * sigma * eps = 0.5 * (z - mu)
    assert torch.allclose(logvar.grad, 0.5 * (z - mu).detach(), atol=1e-5)


def test_kl_closed_form():
    assert kl_divergence(torch.zeros(3, 2, 4, 4), torch.zeros(3, 2, 4, 4)).item() == 0.0
    mu = torch.tensor([[1.0, -2.0], [0.5, 0.0]])  # batch 2
    logvar = torch.tensor([[0.0, math.log(2.0)], [-1.0, 1.0]])
    # per element: 0.5 * (mu^2 + e^lv - 1 - lv)
    per = [
        0.5 * (1 + 1 - 1 - 0),
        0.5 * (4 + 2 - 1 - math.log(2)),
        0.5 * (0.25 + math.exp(-1) - 1 + 1),
        0.5 * (0 + math.e - 1 - 1),
    ]
    want = sum(per) / 2  # summed over elements, divided by batch size
    assert kl_divergence(mu, logvar).item() == pytest.approx(want, rel=1e-6)
    # doubling the batch with the same rows leaves it unchanged (it is per sample)
    assert kl_divergence(mu.repeat(2, 1), logvar.repeat(2, 1)).item() == pytest.approx(want, rel=1e-6)
    assert kl_divergence(mu, logvar).item() > 0


def _clips(T=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, H, W, generator=g), torch.rand(B, T, 3, H, W, generator=g)


@pytest.mark.parametrize("tf", [True, False])
def test_clip_loss_shapes_and_totals(tf):
    m = small_model()
    frames, poses = _clips(T=5)
    beta = 0.37
    out = m.clip_loss(frames, poses, beta, teacher_forcing=tf)
    assert out["mse_per_frame"].shape == (4,) and out["kl_per_frame"].shape == (4,)
    assert out["loss"].dim() == 0
    assert torch.allclose(out["mse_per_frame"].sum(), out["mse"].detach())
    assert torch.allclose(out["kl_per_frame"].sum(), out["kl"].detach())
    assert torch.allclose(out["loss"], out["mse"] + beta * out["kl"])
    assert (out["mse_per_frame"] > 0).all() and (out["kl_per_frame"] >= 0).all()
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def _deterministic(monkeypatch):
    monkeypatch.setattr(M, "reparameterize", lambda mu, logvar: mu)


def wide_model(clamp_feedback: bool, seed=0):
    """small_model whose frames reach far outside [0, 1], so that feeding them back clamped or raw differs."""
    m = small_model(seed)
    m.clamp_feedback = clamp_feedback
    with torch.no_grad():
        m.Generator[-1].weight.mul_(50)
    return m


def _manual(m, frames, poses, teacher_forcing):
    """Reference recurrence, one frame at a time, with z = mu; free-running, it feeds back the prediction
    clamped to [0, 1] (raw with clamp_feedback off)."""
    mses, kls, preds = [], [], []
    prev = frames[:, 0]
    for t in range(1, frames.shape[1]):
        pose_f = m.label_transformation(poses[:, t])
        mu, logvar = m.Gaussian_Predictor(m.frame_transformation(frames[:, t]), pose_f)
        pred = m.decode(m.frame_transformation(prev), pose_f, mu)
        mses.append((pred - frames[:, t]).pow(2).mean())
        kls.append(kl_divergence(mu, logvar))
        preds.append(pred)
        prev = frames[:, t] if teacher_forcing else pred.clamp(0, 1) if m.clamp_feedback else pred
    return torch.stack(mses), torch.stack(kls), torch.stack(preds)


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("tf", [True, False])
def test_clip_loss_matches_reference_recurrence(monkeypatch, tf, clamp):
    _deterministic(monkeypatch)
    m = wide_model(clamp).eval()  # BatchNorm in eval: per-frame and batched calls agree
    frames, poses = _clips(T=4)
    with torch.no_grad():
        out = m.clip_loss(frames, poses, 1.0, teacher_forcing=tf)
        mse, kl, preds = _manual(m, frames, poses, tf)
    # outside the image range: the clamp changes what is fed back
    assert preds.min() < -0.5 and preds.max() > 1.5
    assert torch.allclose(out["mse_per_frame"], mse, rtol=1e-4, atol=1e-6)
    assert torch.allclose(out["kl_per_frame"], kl, rtol=1e-4, atol=1e-5)


def test_clamp_feedback_changes_only_free_running_steps(monkeypatch):
    _deterministic(monkeypatch)
    frames, poses = _clips(T=4)
    with torch.no_grad():
        on = {
            tf: wide_model(True).eval().clip_loss(frames, poses, 1.0, tf)["mse_per_frame"]
            for tf in (True, False)
        }
        off = {
            tf: wide_model(False).eval().clip_loss(frames, poses, 1.0, tf)["mse_per_frame"]
            for tf in (True, False)
        }
    assert torch.equal(on[True], off[True])  # teacher forcing feeds back true frames, already in [0, 1]
    assert torch.equal(on[False][0], off[False][0]) and not torch.allclose(on[False][1:], off[False][1:])


@pytest.mark.parametrize("clamp", [True, False])
def test_rollout_feeds_back_clamped_frames_and_returns_raw_ones(clamp):
    m = wide_model(clamp).eval()
    frames, poses = _clips(T=4)
    got = m.rollout(frames[:, 0], poses, generator=torch.Generator().manual_seed(3))
    g, prev, want = torch.Generator().manual_seed(3), frames[:, 0], [frames[:, 0]]
    with torch.no_grad():
        for t in range(1, 4):
            z = torch.randn((B, N, H, W), generator=g)
            fed = prev.clamp(0, 1) if clamp else prev
            prev = m.decode(m.frame_transformation(fed), m.label_transformation(poses[:, t]), z)
            want.append(prev)
    want = torch.stack(want, dim=1)
    assert want.min() < -0.5 and want.max() > 1.5
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_teacher_forcing_uses_true_previous_frames(monkeypatch):
    _deterministic(monkeypatch)
    m = small_model().eval()
    frames, poses = _clips(T=4)
    with torch.no_grad():
        on = m.clip_loss(frames, poses, 1.0, teacher_forcing=True)
        off = m.clip_loss(frames, poses, 1.0, teacher_forcing=False)
    # frame 1 is predicted from the true frame 0 either way; later frames differ
    assert torch.allclose(on["mse_per_frame"][0], off["mse_per_frame"][0], rtol=1e-5)
    assert not torch.allclose(on["mse_per_frame"][1:], off["mse_per_frame"][1:])
    # with teacher forcing the loss of step t only depends on frames t-1 and t: changing frame 3
    # changes the last term and leaves the first (frame 1, from frame 0) alone
    frames2 = frames.clone()
    frames2[:, 3] = 1 - frames2[:, 3]
    with torch.no_grad():
        on2 = m.clip_loss(frames2, poses, 1.0, teacher_forcing=True)
    assert torch.allclose(on["mse_per_frame"][:2], on2["mse_per_frame"][:2], rtol=1e-5)
    assert not torch.allclose(on["mse_per_frame"][2], on2["mse_per_frame"][2])


def test_rollout_shape_first_frame_and_reproducibility():
    m = small_model().eval()
    frames, poses = _clips(T=6)
    first = frames[:, 0]
    a = m.rollout(first, poses, generator=torch.Generator().manual_seed(5))
    b = m.rollout(first, poses, generator=torch.Generator().manual_seed(5))
    c = m.rollout(first, poses, generator=torch.Generator().manual_seed(6))
    assert a.shape == (B, 6, 3, H, W)
    assert torch.equal(a[:, 0], first)
    assert torch.equal(a, b)
    assert not torch.equal(a[:, 1:], c[:, 1:])
    assert not a.requires_grad


def test_rollout_uses_prior_not_posterior():
    """The rollout never sees the target frames: only the first frame and the poses are inputs."""
    m = small_model().eval()
    frames, poses = _clips(T=4)
    calls = []
    orig = m.Gaussian_Predictor.forward
    m.Gaussian_Predictor.forward = lambda *a, **k: calls.append(1) or orig(*a, **k)
    m.rollout(frames[:, 0], poses, generator=torch.Generator().manual_seed(0))
    assert calls == []
