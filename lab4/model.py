"""The lab's conditional VAE, module for module (see the lab spec), written for speed-friendly use.

The layer plan, channel plan and quirks (a LeakyReLU of slope 1.0, i.e. the identity, where the lab
writes ``LeakyReLU(True)``) are the lab's; only the way frames are batched through them is ours.
Shapes: B batch, T frames, H=32, W=64 at the lab's resolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ResidualBlock(nn.Module):
    """3x3 conv -> LeakyReLU -> 3x3 conv -> LeakyReLU, plus a (1x1-projected) skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.act = nn.LeakyReLU(0.01)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.act(self.conv2(self.act(self.conv1(x)))) + self.skip(x)


class DepthConv(nn.Module):
    """1x1 conv -> LeakyReLU -> 3x3 depthwise conv -> 1x1 conv, plus a (1x1-projected) skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pw1 = nn.Conv2d(cin, cin, 1)
        self.act = nn.LeakyReLU(0.01)
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pw2 = nn.Conv2d(cin, cout, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.pw2(self.dw(self.act(self.pw1(x)))) + self.skip(x)


class ConvFFN(nn.Module):
    """Gated 1x1 feed-forward: conv c->4c, a * LeakyReLU(0.1)(b), conv 2c->c, plus the input."""

    def __init__(self, c: int):
        super().__init__()
        self.expand = nn.Conv2d(c, 4 * c, 1)
        self.act = nn.LeakyReLU(0.1)
        self.project = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        a, b = self.expand(x).chunk(2, dim=1)
        return self.project(a * self.act(b)) + x


class DepthConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int | None = None):
        cout = cin if cout is None else cout
        super().__init__(DepthConv(cin, cout), ConvFFN(cout))


class RGBEncoder(nn.Sequential):
    """Frame encoder 3 -> F at full resolution (the lab's RGB_Encoder)."""

    def __init__(self, F: int):
        super().__init__(
            ResidualBlock(3, F // 8),
            DepthConvBlock(F // 8),
            ResidualBlock(F // 8, F // 4),
            DepthConvBlock(F // 4),
            ResidualBlock(F // 4, F // 2),
            DepthConvBlock(F // 2),
            nn.Conv2d(F // 2, F, 3, padding=1),
        )


class LabelEncoder(nn.Sequential):
    """Pose encoder 3 -> L (the lab's Label_Encoder; its LeakyReLU(True) has slope 1.0)."""

    def __init__(self, L: int, slope: float = 1.0):
        super().__init__(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, L // 2, 7),
            nn.BatchNorm2d(L // 2),
            nn.LeakyReLU(slope),
            ResidualBlock(L // 2, L),
        )


class GaussianPredictor(nn.Module):
    """Posterior q(z | x_t, P_t): (F+L) features -> mu, logvar, each (B, N, H, W)."""

    def __init__(self, cin: int, N: int, slope: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(
            ResidualBlock(cin, N // 4),
            DepthConvBlock(N // 4),
            ResidualBlock(N // 4, N // 2),
            DepthConvBlock(N // 2),
            ResidualBlock(N // 2, N),
            nn.LeakyReLU(slope),
            nn.Conv2d(N, 2 * N, 1),
        )

    def forward(self, frame_feat, pose_feat):
        mu, logvar = self.net(torch.cat([frame_feat, pose_feat], dim=1)).chunk(2, dim=1)
        return mu, logvar


class DecoderFusion(nn.Sequential):
    """Fuses (previous-frame features, pose features, z) -> D channels (the lab's Decoder_Fusion)."""

    def __init__(self, C: int, D: int):
        super().__init__(
            DepthConvBlock(C),
            ResidualBlock(C, C // 4),
            DepthConvBlock(C // 4, C // 2),
            ResidualBlock(C // 2, C // 2),
            DepthConvBlock(C // 2, D // 2),
            nn.Conv2d(D // 2, D, 1),
        )


class Generator(nn.Sequential):
    """D channels -> RGB frame, no output activation (as in the lab)."""

    def __init__(self, D: int):
        super().__init__(
            DepthConvBlock(D),
            ResidualBlock(D, D // 2),
            DepthConvBlock(D // 2),
            ResidualBlock(D // 2, D // 4),
            DepthConvBlock(D // 4),
            ResidualBlock(D // 4, D // 8),
            DepthConvBlock(D // 8),
            nn.Conv2d(D // 8, 3, 1),
        )


# report: reparameterize begin
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps keeps the sample differentiable in mu and logvar."""
    return mu + torch.exp(logvar / 2) * torch.randn_like(mu)
    # report: reparameterize end


# report: kl-divergence begin
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) summed over every latent element, divided by the batch size (the lab's)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.shape[0]
    # report: kl-divergence end


def kl_per_channel(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(..., B, N, H, W) -> (..., N): each latent channel's KL summed over H, W and averaged over the batch.

    The unit of free bits: the channel's KL of one frame, so its sum over channels is kl_divergence.
    """
    mu, logvar = mu.float(), logvar.float()
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=(-2, -1)).mean(dim=-2)


class CVAE(nn.Module):
    """The five lab modules plus the two things training and testing need: a clip loss and a rollout."""

    def __init__(
        self,
        F: int = 128,
        L: int = 32,
        N: int = 12,
        D: int = 192,
        clamp_feedback: bool = True,
        leaky_true_slope: float = 1.0,
    ):
        super().__init__()
        for name, v, m in (("F", F, 8), ("L", L, 2), ("N", N, 4), ("D", D, 8)):
            if v <= 0 or v % m:
                raise ValueError(f"model dim {name}={v} must be a positive multiple of {m}")
        if (F + L + N) % 4:
            raise ValueError(f"F+L+N={F + L + N} must be a multiple of 4")
        self.dims = dict(F=F, L=L, N=N, D=D)
        # A generated frame is clamped to [0, 1] before it is encoded as the next step's previous frame.
        # The lab feeds raw outputs back; over 630 steps values outside the image range drift further
        # out of what the encoder was trained on. A no-op on real frames, so teacher forcing is unchanged.
        self.clamp_feedback = clamp_feedback
        self.frame_transformation = RGBEncoder(F)
        # the template's LeakyReLU(True) has slope True == 1, the identity; leaky_true_slope=0.01 makes it one
        self.label_transformation = LabelEncoder(L, leaky_true_slope)
        self.Gaussian_Predictor = GaussianPredictor(F + L, N, leaky_true_slope)
        self.Decoder_Fusion = DecoderFusion(F + L + N, D)
        self.Generator = Generator(D)

    # -- one predicted frame ---------------------------------------------------------------
    def decode(self, prev_feat, pose_feat, z):
        """(B, F, H, W), (B, L, H, W), (B, N, H, W) -> predicted frame (B, 3, H, W)."""
        return self.Generator(self.Decoder_Fusion(torch.cat([prev_feat, pose_feat, z], dim=1)))

    def step(self, prev_feat, pose_feat, target_feat):
        """One training step of the recurrence: posterior from the target, decode from the previous."""
        mu, logvar = self.Gaussian_Predictor(target_feat, pose_feat)
        z = reparameterize(mu, logvar)
        return self.decode(prev_feat, pose_feat, z), mu, logvar

    # -- a clip of frames --------------------------------------------------------------------
    def clip_loss(
        self,
        frames,
        poses,
        beta: float,
        teacher_forcing: bool,
        step_fn=None,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
        batched: bool = True,
    ):
        """Loss of a clip batch: frames, poses (B, T, 3, H, W) in [0, 1]; frames 2..T are predicted.

        Returns total (summed over the T-1 frames, as in the lab), MSE and KL (likewise summed) and
        the per-frame terms (T-1,). With teacher forcing every step sees the true previous frame, so
        all T-1 steps can run as one batch (``batched``; else one frame at a time, as the lab's step); without
        it each step feeds the last prediction forward.
        ``step_fn`` lets the fast path pass a compiled version of :meth:`step`. ``kl_weight`` scales the KL
        in the total only (1.0 = the lab's loss): the MSE is a mean over pixels while the KL is summed over
        every latent element, so ``1 / (N*H*W)`` makes it a mean per latent element too. ``free_bits`` > 0
        (Kingma et al. 2016) floors, in the total only, each latent channel's KL of each frame (summed over
        H, W, averaged over the batch) at that many nats: below the floor the KL costs a constant and gets
        no gradient, so the encoder is not pushed to collapse. The returned ``kl`` stays the true KL.
        """
        B, T = frames.shape[:2]
        step_fn = step_fn or self.step
        flat = frames.flatten(0, 1)  # (B*T, 3, H, W)
        frame_feat = self.frame_transformation(flat).unflatten(0, (B, T))  # (B, T, F, H, W)
        pose_feat = self.label_transformation(poses.flatten(0, 1)).unflatten(0, (B, T))  # (B, T, L, H, W)
        if teacher_forcing and not batched:
            steps = [step_fn(frame_feat[:, t - 1], pose_feat[:, t], frame_feat[:, t]) for t in range(1, T)]
            pred, mu, logvar = (torch.stack(x) for x in zip(*steps))  # (T-1, B, C, H, W) each
        elif teacher_forcing:
            pred, mu, logvar = step_fn(
                frame_feat[:, :-1].flatten(0, 1),
                pose_feat[:, 1:].flatten(0, 1),
                frame_feat[:, 1:].flatten(0, 1),
            )
            pred = pred.unflatten(0, (B, T - 1)).transpose(0, 1)  # (T-1, B, 3, H, W)
            mu = mu.unflatten(0, (B, T - 1)).transpose(0, 1)
            logvar = logvar.unflatten(0, (B, T - 1)).transpose(0, 1)
        else:
            pred, mu, logvar = self.fed_back(frame_feat, pose_feat, step_fn)  # (T-1, B, C, H, W) each
        target = frames[:, 1:].transpose(0, 1).float()  # (T-1, B, 3, H, W)
        mse_t = (pred.float() - target).pow(2).mean(dim=(1, 2, 3, 4))  # (T-1,)
        kl_t = torch.stack([kl_divergence(m, lv) for m, lv in zip(mu, logvar)])  # (T-1,), the listed function
        mse, kl = mse_t.sum(), kl_t.sum()
        if free_bits > 0:
            kl_loss = kl_per_channel(mu, logvar).clamp(min=free_bits).sum()  # (T-1, N) floored, summed
        else:
            kl_loss = kl  # no floor: the lab's KL term itself
        loss = mse + (beta * kl_weight) * kl_loss  # beta * 1.0 is exactly beta: the lab's loss, bit for bit
        return dict(loss=loss, mse=mse, kl=kl, mse_per_frame=mse_t.detach(), kl_per_frame=kl_t.detach())

    # report: fed-back begin
    def fed_back(self, frame_feat, pose_feat, step_fn):
        """A clip without teacher forcing: from frame 2 on, each step starts from the previous prediction.
        ``step_fn`` is one step of the recurrence (posterior from the true frame, decoder from the previous
        one); ``feedback`` clamps a prediction to [0, 1] (unless a run turns that off) before it is encoded
        again."""
        T = frame_feat.shape[1]  # frame_feat (B, T, F, H, W), pose_feat (B, T, L, H, W)
        preds, mus, logvars = [], [], []
        prev_feat = frame_feat[:, 0]  # the only true frame the clip's steps see
        for t in range(1, T):
            p, m, lv = step_fn(prev_feat, pose_feat[:, t], frame_feat[:, t])  # posterior from the true frame
            preds.append(p), mus.append(m), logvars.append(lv)
            if t < T - 1:
                prev_feat = self.frame_transformation(self.feedback(p))  # the prediction, encoded again
        return torch.stack(preds), torch.stack(mus), torch.stack(logvars)  # (T-1, B, C, H, W) each
        # report: fed-back end

    # -- generation from the prior -----------------------------------------------------------
    @torch.no_grad()
    def rollout(
        self,
        first_frame,
        poses,
        generator: torch.Generator | None = None,
        step_fn=None,
        zero_z: bool = False,
        noise: torch.Tensor | None = None,
    ):
        """Autoregressive generation with z ~ N(0, I), or with z = 0 (the prior's mean) when ``zero_z``, or
        with the given ``noise`` (B, T-1, N, H, W): one z per generated frame, drawn by the caller.

        first_frame (B, 3, H, W), poses (B, T, 3, H, W) -> frames (B, T, 3, H, W) whose frame 0 is
        the given one. Each output goes back in through :meth:`feedback` (clamped to [0, 1] unless
        ``clamp_feedback`` is off); the frames returned are the raw outputs, so callers clamp for metrics.
        """
        B, T = poses.shape[:2]
        pose_feat = self.label_transformation(poses.flatten(0, 1)).unflatten(0, (B, T))  # (B, T, L, H, W)
        shape = (B, self.dims["N"], *poses.shape[-2:])  # one z: (B, N, H, W)

        def z_at(t: int) -> torch.Tensor:
            if zero_z:  # deterministic: no sample, so the generator is not consumed
                return torch.zeros(shape, device=poses.device, dtype=pose_feat.dtype)
            if noise is not None:
                return noise[:, t - 1].to(pose_feat.dtype)
            return torch.randn(shape, generator=generator, device=poses.device, dtype=pose_feat.dtype)

        return self.autoregress(first_frame, pose_feat, z_at, step_fn or self.rollout_step)

    # report: rollout begin
    def autoregress(self, first_frame, pose_feat, z_at, step_fn):
        """Each generated frame is the previous frame of the next step: no true frame after the first."""
        out = [first_frame]  # (B, 3, H, W) each
        for t in range(1, pose_feat.shape[1]):
            out.append(step_fn(out[-1], pose_feat[:, t], z_at(t)))  # z_at(t): (B, N, H, W)
        return torch.stack(out, dim=1)  # (B, T, 3, H, W)
        # report: rollout end

    def rollout_step(self, prev, pose_feat, z):
        """One generation step from raw pixels; the unit that CUDA graphs / compile capture."""
        return self.decode(self.frame_transformation(self.feedback(prev)), pose_feat, z)

    def feedback(self, frame):
        """A generated frame as the next step's input: clamped to the image range unless disabled."""
        return frame.clamp(0, 1) if self.clamp_feedback else frame


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def compiled_steps(model: CVAE, cfg, device: torch.device):
    """The fast path's compiled per-frame functions, by a Config's ``compile`` and ``cuda_graphs``:
    (training step, rollout step); None = eager."""
    train_step = torch.compile(model.step, dynamic=False) if cfg.compile else None
    rollout_step = None
    if cfg.cuda_graphs and device.type == "cuda":
        graphed = torch.compile(model.rollout_step, mode="reduce-overhead", dynamic=False)

        def rollout_step(prev, pose_feat, z):
            torch.compiler.cudagraph_mark_step_begin()
            return graphed(prev, pose_feat, z).clone()  # the next replay overwrites the graph's output
    elif cfg.compile:
        rollout_step = torch.compile(model.rollout_step, dynamic=False)
    return train_step, rollout_step
