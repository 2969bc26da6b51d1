"""The Trainer: one config in, a run folder out (config.json, metrics.csv, last.pt).

Read it top to bottom: setup, then ``fit`` -> ``train_epoch`` -> checkpoint. Callbacks (minGPT
style) let a notebook plot while training without the loop knowing about notebooks.
"""
from __future__ import annotations

import csv
import io
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from . import data as D
from .checkpoint import atomic_write_text, check_writable, load_checkpoint, load_model_weights, save_checkpoint
from .config import Config
from .errors import Lab4Error
from .evaluate import validate
from .model import CVAE
from .schedules import TeacherForcing, kl_beta

METRIC_FIELDS = ["kind", "epoch", "iter", "progress", "loss", "mse", "kl", "grad_norm", "beta", "tfr", "teacher_forcing", "lr",
                 "val_psnr", "val_ssim", "baseline_psnr", "seconds", "frames_per_s"]


class NonFiniteLoss(Lab4Error):
    pass


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Lab4Error(f"device {name!r} asked for, but torch sees no CUDA GPU (use device='auto' or 'cpu')")
    return dev


def build_model(cfg: Config, device=None) -> CVAE:
    model = CVAE(cfg.F_dim, cfg.L_dim, cfg.N_dim, cfg.D_out_dim, cfg.clamp_feedback)
    if device is not None:
        model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled_steps(model: CVAE, cfg: Config, device: torch.device):
    """The fast path's compiled per-frame functions: (training step, rollout step); None = eager."""
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


class Trainer:
    def __init__(self, cfg: Config, train_split=None, val_split=None):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.run_dir = Path(cfg.run_dir)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        if train_split is None or val_split is None:
            root = D.resolve_data_root(cfg.data_root, cfg.synth_preset, progress=cfg.progress)
            train_split = train_split or D.load_split(root, "train", cfg.frame_H, cfg.frame_W, cfg.progress)
            val_split = val_split or D.load_split(root, "val", cfg.frame_H, cfg.frame_W, cfg.progress)
        self.train_data, self.val_data = train_split, val_split
        keep = self.device if cfg.data_on_device else torch.device("cpu")
        self.frames, self.poses = train_split.frames.to(keep), train_split.poses.to(keep)  # (N, 3, H, W) uint8
        self.sampler = D.ClipSampler(len(self.frames), cfg.train_vi_len, cfg.batch_size, cfg.seed,
                                     source=str(train_split.root))
        self.model = build_model(cfg, self.device)
        fused = cfg.fused_adam and self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=fused or None)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(cfg.milestones), gamma=cfg.gamma)
        self.tf = TeacherForcing(cfg.tfr, cfg.tfr_sde, cfg.tfr_d_step, cfg.tfr_per_epoch, seed=cfg.seed)
        self.train_step, self.rollout_step = compiled_steps(self.model, cfg, self.device)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.epoch = 0
        self.rows: list[dict] = []
        self.callbacks = defaultdict(list)
        self.last_val: dict | None = None

    # -- callbacks (minGPT style) ------------------------------------------------------------
    def add_callback(self, event: str, fn) -> None:
        """Events: 'on_iter_end', 'on_epoch_end', 'on_validation_end'; fn(trainer, info_dict)."""
        self.callbacks[event].append(fn)

    def _trigger(self, event: str, info: dict) -> None:
        for fn in self.callbacks[event]:
            fn(self, info)

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> "Trainer":
        """Train to ``num_epoch``; with ``resume``, continue from ``last.pt`` exactly where it stopped."""
        check_writable(self.run_dir)
        lock = FileLock(str(self.run_dir / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise Lab4Error(f"{self.run_dir}: another process is training this run (lock {self.run_dir / '.lock'})") from None
        try:
            if resume and (self.run_dir / "last.pt").is_file():
                self.load(self.run_dir / "last.pt")
            elif not resume:
                self.rows = []
            self.cfg.save(self.run_dir / "config.json")
            while self.epoch < self.cfg.num_epoch:
                self.train_epoch(self.epoch)
                self.epoch += 1
                self.scheduler.step()
                # metrics first: a death between the two writes leaves extra rows (dropped on resume), never a gap
                self.write_metrics()
                if self.epoch % self.cfg.per_save == 0 or self.epoch == self.cfg.num_epoch:
                    self.save(self.run_dir / "last.pt")
                self._trigger("on_epoch_end", self.rows[-1])
        finally:
            lock.release()
        return self

    def _fraction(self, epoch: int) -> float:
        """The lab's `fast_train`: its first epochs see only `fast_partial` of the clips."""
        cfg = self.cfg
        return cfg.fast_partial if cfg.fast_train and epoch < cfg.fast_train_epoch else cfg.partial

    def iters_per_epoch(self, epoch: int) -> int:
        return self.sampler.n_batches(self._fraction(epoch))

    def train_epoch(self, epoch: int) -> dict:
        cfg, model = self.cfg, self.model
        model.train()
        batches = self.sampler.batches(self._fraction(epoch))[:self.iters_per_epoch(epoch)]
        n_iter = len(batches)
        tfr = self.tf.ratio(epoch)
        logs, t0 = [], time.perf_counter()
        sync_every = 1 if self.device.type == "cpu" else 25
        bar = tqdm(batches, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.num_epoch}", disable=not cfg.progress,
                   leave=False, mininterval=1.0)
        for it, starts in enumerate(bar):
            progress = epoch + it / n_iter
            beta = kl_beta(cfg.kl_anneal_type, progress, cfg.num_epoch, cfg.kl_anneal_cycle, cfg.kl_anneal_ratio)
            use_tf = self.tf.draw(epoch)
            frames = D.to_float(self.sampler.gather(self.frames, starts).to(self.device, non_blocking=True))
            poses = D.to_float(self.sampler.gather(self.poses, starts).to(self.device, non_blocking=True))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = model.clip_loss(frames, poses, beta, use_tf, step_fn=self.train_step)
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            # the norm before clipping: how much of each step the clip takes away
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad or math.inf)
            self.optimizer.step()
            logs.append((it, progress, beta, use_tf,
                         torch.stack([out["loss"], out["mse"], out["kl"], grad_norm.float()]).detach()))
            if (it + 1) % sync_every == 0 or it == n_iter - 1:
                self._check_finite(logs, epoch)
                bar.set_postfix(loss=f"{logs[-1][4][0].item():.4g}", beta=f"{beta:.2f}", tfr=f"{tfr:.2f}")
                self._trigger("on_iter_end", dict(epoch=epoch, iter=it, loss=logs[-1][4][0].item()))
        seconds = time.perf_counter() - t0
        values = torch.stack([v for *_, v in logs]).cpu()  # (n_iter, 4): one sync per epoch
        lr = self.optimizer.param_groups[0]["lr"]
        for (it, progress, beta, use_tf, _), (loss, mse, kl, gn) in zip(logs, values.tolist()):
            self.rows.append(dict(kind="iter", epoch=epoch, iter=it, progress=round(progress, 5), loss=loss, mse=mse,
                                  kl=kl, grad_norm=gn, beta=beta, tfr=tfr, teacher_forcing=int(use_tf), lr=lr))
        mean = values.mean(0).tolist()
        row = dict(kind="epoch", epoch=epoch, iter=n_iter, progress=epoch + 1, loss=mean[0], mse=mean[1], kl=mean[2],
                   grad_norm=mean[3],
                   beta=logs[-1][2],  # beta at the epoch's last iteration
                   tfr=tfr, teacher_forcing=sum(int(l[3]) for l in logs) / n_iter, lr=lr, seconds=round(seconds, 3),
                   frames_per_s=round(n_iter * cfg.batch_size * (cfg.train_vi_len - 1) / seconds, 2))
        if (cfg.val_every and (epoch + 1) % cfg.val_every == 0) or epoch + 1 == cfg.num_epoch:
            res = self.validate()
            row.update(val_psnr=res["mean_psnr"], val_ssim=res["mean_ssim"], baseline_psnr=res["baseline_mean_psnr"])
        self.rows.append(row)
        return row

    def _check_finite(self, logs, epoch: int) -> None:
        recent = torch.stack([v[0] for *_, v in logs[-25:]])
        if not torch.isfinite(recent).all():
            bad = next(it for it, *_, v in logs if not torch.isfinite(v[0]))
            raise NonFiniteLoss(f"{self.cfg.name}: loss became non-finite at epoch {epoch + 1} iteration {bad + 1}; "
                                f"training stopped, last good checkpoint kept at {self.run_dir / 'last.pt'}")

    def validate(self) -> dict:
        res = validate(self.model, self.val_data, seed=self.cfg.seed, step_fn=self.rollout_step)
        self.last_val = res
        self._trigger("on_validation_end", res)
        return res

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return dict(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            epoch=self.epoch, config=self.cfg.to_dict(), teacher_forcing=self.tf.state_dict(),
            rng=dict(torch=torch.get_rng_state(), sampler=self.sampler.generator.get_state(),
                     cuda=torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []),
        )

    def save(self, path) -> None:
        save_checkpoint(path, self.state_dict())

    def load(self, path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        load_model_weights(self.model, state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.tf.load_state_dict(state["teacher_forcing"])
            torch.set_rng_state(state["rng"]["torch"].cpu())
            self.sampler.generator.set_state(state["rng"]["sampler"].cpu())
            if self.device.type == "cuda" and state["rng"]["cuda"]:
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
            self.epoch = int(state["epoch"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise Lab4Error(f"{path}: checkpoint lacks training state needed to resume ({type(e).__name__}: {e})") from None
        self.rows = [r for r in read_metrics(self.run_dir / "metrics.csv") if int(r["epoch"]) < self.epoch]

    def write_metrics(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.run_dir / "metrics.csv", buf.getvalue())


def read_metrics(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_trained(run_dir, checkpoint: str = "last.pt", device: str = "auto"):
    """(model, config) from a run folder, for evaluation and notebooks."""
    run_dir = Path(run_dir)
    cfg = Config.load(run_dir / "config.json")
    path = run_dir / checkpoint
    state = load_checkpoint(path, map_location="cpu")
    model = build_model(cfg)
    load_model_weights(model, state, path)
    return model.to(pick_device(device)).eval(), cfg
