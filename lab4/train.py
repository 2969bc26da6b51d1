"""The Trainer: one config in, a run folder out (config.json, metrics.csv, last.pt).

Read it top to bottom: setup, then ``fit`` -> ``train_epoch`` -> ``train_steps`` -> ``step``. What the run
folder keeps (the claim, last.pt, metrics.csv, a resume) is lab4.train_state's; the compiled steps' fallback
is lab4.fast_path's. Callbacks (minGPT style) let a notebook plot while training without the loop knowing
about notebooks.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from lab4.checkpoint import check_writable, load_checkpoint, load_model_weights
from lab4.config import Config
from lab4.datasets.official import ClipSampler, dataset_record, load_split, resolve_data_root, to_float
from lab4.evaluate import active_units, validate
from lab4.fast_path import FastPathGuard
from lab4.model import CVAE, compiled_steps
from lab4.run.folder import RunDir
from lab4.schedules import TeacherForcing, beta_at
from lab4.train_state import TrainState
from lab4.util.device import choose_precision, pick_device
from lab4.util.errors import Lab4Error, NonFiniteLoss

LOGGED = ("loss", "mse", "kl", "grad_norm")  # what each iteration records on the device


class IterLog(NamedTuple):
    """One step's record; ``values`` stays on the device until the epoch's end, where they are read in
    one transfer (the finiteness check reads the loss every 25 iterations on a GPU, every one on a CPU)."""

    progress: float  # epochs done, fractional
    beta: float
    teacher_forcing: bool
    values: torch.Tensor  # (4,) in LOGGED order

    @property
    def loss(self) -> torch.Tensor:
        return self.values[0]


def build_model(cfg: Config, device=None) -> CVAE:
    model = CVAE(cfg.F_dim, cfg.L_dim, cfg.N_dim, cfg.D_out_dim, cfg.clamp_feedback, cfg.leaky_true_slope)
    if device is not None:
        model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class Trainer(TrainState, FastPathGuard):
    def __init__(self, cfg: Config, train_split=None, val_split=None):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.run_dir = Path(cfg.run_dir)
        # config.json, metrics.csv and last.pt are read and written through it
        self.files = RunDir(self.run_dir)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        if train_split is None or val_split is None:
            root = resolve_data_root(cfg.data_root, cfg.synth_preset, progress=cfg.progress)
            train_split = train_split or load_split(root, "train", cfg.frame_H, cfg.frame_W, cfg.progress)
            val_split = val_split or load_split(root, "val", cfg.frame_H, cfg.frame_W, cfg.progress)
        self.train_data, self.val_data = train_split, val_split
        # config.json remembers the data (absolute path, sizes, cache keys): see
        # lab4.datasets.official.run_dataset
        self.dataset = dataset_record(train_split, val_split)
        self.cfg = cfg = cfg.replace(data_root=self.dataset["root"])
        keep = self.device if cfg.data_on_device else torch.device("cpu")
        # (N, 3, H, W) uint8
        self.frames, self.poses = (train_split.frames.to(keep), train_split.poses.to(keep))
        self.sampler = ClipSampler(
            len(self.frames), cfg.train_vi_len, cfg.batch_size, cfg.seed, source=str(train_split.root)
        )
        self.model = build_model(cfg, self.device)
        fused = cfg.fused_adam and self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=fused or None)
        self.tf = TeacherForcing(cfg.tfr, cfg.tfr_sde, cfg.tfr_d_step, cfg.tfr_per_epoch, seed=cfg.seed)
        # bf16, fp16 with a GradScaler, or fp32: by device
        self.precision = choose_precision(cfg.amp, self.device)
        # fallback: why the compiled steps are off, if they are
        fast, self.fallback = self.precision.fast_path(cfg)
        self.compiled_step, self.compiled_rollout = compiled_steps(self.model, fast, self.device)
        self.amp, self.scaler = self.precision.dtype != "fp32", self.precision.grad_scaler(self.device)
        self.fit_seconds = 0.0  # training time in this process
        self.fit_cpu_seconds = 0.0  # CPU time of this process (all its threads) while training
        self.started_at: float | None = None  # Unix time fit() began: the report finds concurrent runs by it
        self.epoch = self.start_epoch = 0
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
    def fit(self, resume: bool = False, overwrite: bool = False) -> "Trainer":
        """Train to ``num_epoch``; with ``resume``, continue the same run from ``last.pt`` exactly where it
        stopped. A folder holding another run (or this one, without ``resume``) refuses unless
        ``overwrite``."""
        check_writable(self.run_dir)
        lock = FileLock(str(self.run_dir / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise Lab4Error(
                f"{self.run_dir}: another process is training this run (lock {self.run_dir / '.lock'})"
            ) from None
        try:
            self.open_folder(resume, overwrite)
            t0, c0, self.started_at = time.perf_counter(), time.process_time(), time.time()
            while self.epoch < self.cfg.num_epoch:
                try:
                    self.train_epoch(self.epoch)
                except torch.cuda.OutOfMemoryError:
                    raise self.out_of_memory() from None
                except NonFiniteLoss as e:
                    raise self.diverged(e) from None
                self.epoch += 1
                self.end_epoch()
                self._trigger("on_epoch_end", self.rows[-1])
            self.fit_seconds = time.perf_counter() - t0
            self.fit_cpu_seconds = time.process_time() - c0
        finally:
            lock.release()
        return self

    def _fraction(self, epoch: int) -> float:
        """The lab's `fast_train`: its first epochs see only `fast_partial` of the clips."""
        cfg = self.cfg
        return cfg.fast_partial if cfg.fast_train and epoch < cfg.fast_train_epoch else cfg.partial

    def iters_per_epoch(self, epoch: int) -> int:
        return self.sampler.n_batches(self._fraction(epoch))

    def lr_at(self, progress: float) -> float:
        """The lab's MultiStepLR at fractional epoch ``progress``: ``lr`` times ``gamma`` at each milestone
        passed (chained as torch's scheduler chains it, so the value is the same to the last bit)."""
        lr = self.cfg.lr
        for m in self.cfg.milestones:
            if progress >= m:
                lr *= self.cfg.gamma
        return lr

    def step(self, starts, progress: float) -> IterLog:
        """One step on the clips at ``starts``; fractional epoch ``progress`` sets beta, the coin and the
        lr."""
        cfg = self.cfg
        beta, use_tf = beta_at(cfg, progress), self.tf.draw(int(progress))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(progress)
        # (B, T, 3, H, W)
        frames = to_float(self.sampler.gather(self.frames, starts).to(self.device, non_blocking=True))
        poses = to_float(self.sampler.gather(self.poses, starts).to(self.device, non_blocking=True))
        out = self.with_fallback(lambda: self.loss_backward(frames, poses, beta, use_tf))
        self.scaler.unscale_(self.optimizer)  # the logged norm is the true gradients', before clipping
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad or math.inf)
        self.optimizer.step() if not self.scaler.is_enabled() else self.scaler.step(self.optimizer)
        self.scaler.update()  # under fp16, a step whose gradients overflowed is skipped
        logged = torch.stack([out["loss"], out["mse"], out["kl"], grad_norm.float()]).detach()
        return IterLog(progress, beta, use_tf, logged)

    def loss_backward(self, frames, poses, beta: float, teacher_forcing: bool) -> dict:
        """The clip loss (autocast in ``self.precision``; losses and KL in fp32) and its gradients (scaled in
        fp16)."""
        with self.precision.autocast(self.device):
            out = self.model.clip_loss(
                frames,
                poses,
                beta,
                teacher_forcing,
                step_fn=self.compiled_step,
                kl_weight=self.cfg.kl_weight,
                free_bits=self.cfg.free_bits,
                batched=self.cfg.batched_tf,
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out["loss"]).backward()
        return out

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        batches = self.sampler.batches(self._fraction(epoch))[: self.iters_per_epoch(epoch)]
        n_iter = len(batches)
        tfr = self.tf.ratio(epoch)
        t0 = time.perf_counter()
        logs = self.train_steps(
            ((starts, epoch + it / n_iter) for it, starts in enumerate(batches)), epoch, n_iter
        )
        seconds = time.perf_counter() - t0
        values = torch.stack([log.values for log in logs]).cpu()  # (n_iter, 4): one transfer per epoch
        lr = self.optimizer.param_groups[0]["lr"]
        for it, (log, logged) in enumerate(zip(logs, values.tolist())):
            self.rows.append(
                dict(
                    kind="iter",
                    epoch=epoch,
                    iter=it,
                    progress=round(log.progress, 5),
                    **dict(zip(LOGGED, logged)),
                    beta=log.beta,
                    tfr=tfr,
                    teacher_forcing=int(log.teacher_forcing),
                    lr=lr,
                )
            )
        means = dict(zip(LOGGED, values.mean(0).tolist()))
        row = dict(
            kind="epoch",
            epoch=epoch,
            iter=n_iter,
            progress=epoch + 1,
            **means,
            beta=logs[-1].beta,  # beta at the epoch's last iteration
            tfr=tfr,
            teacher_forcing=sum(int(log.teacher_forcing) for log in logs) / n_iter,
            lr=lr,
            seconds=round(seconds, 3),
            frames_per_s=round(n_iter * cfg.batch_size * (cfg.train_vi_len - 1) / seconds, 2),
        )
        if (cfg.val_every and (epoch + 1) % cfg.val_every == 0) or epoch + 1 == cfg.num_epoch:
            res = self.validate()
            # collapse, per epoch
            row.update(
                val_psnr=res["mean_psnr"],
                val_ssim=res["mean_ssim"],
                baseline_psnr=res["baseline_mean_psnr"],
                active_units=active_units(self.model, self.val_data)["active_units"],
            )
        self.rows.append(row)
        return row

    def train_steps(self, plan, epoch: int = 0, total: int | None = None) -> list[IterLog]:
        """:meth:`step` on each ``(starts, progress)`` of ``plan``, the loss checked finite and reported as it
        goes.

        The one training loop: an epoch, the speedrun's CPU budget and the bench's timed seconds all run it,
        so what they time is what a run does. A generator ``plan`` decides when to stop: it is asked for the
        next step once the last one ran. ``epoch`` labels the steps in the progress bar, messages and
        callbacks.
        """
        self.model.train()
        logs: list[IterLog] = []
        # a CPU's .item() is free; a GPU's waits for the queue
        check_every = 1 if self.device.type == "cpu" else 25
        with tqdm(
            total=total,
            desc=f"{self.cfg.name} epoch {epoch + 1}/{self.cfg.num_epoch}",
            leave=False,
            disable=not self.cfg.progress,
            mininterval=1.0,
        ) as bar:
            for starts, progress in plan:
                logs.append(self.step(starts, progress))
                bar.update()
                if len(logs) % check_every == 0:
                    self._check_finite(logs, epoch, bar)
            if len(logs) % check_every:  # the plan ended between two checks: its last steps
                self._check_finite(logs, epoch, bar)
        return logs

    def _check_finite(self, logs: list[IterLog], epoch: int, bar) -> None:
        """Stop at a non-finite loss among the last 25 (one transfer); else show and call back the last
        one."""
        recent = torch.stack([log.loss for log in logs[-25:]])
        if not torch.isfinite(recent).all():
            bad = next(i for i, log in enumerate(logs) if not torch.isfinite(log.loss))
            raise NonFiniteLoss(
                f"{self.cfg.name}: loss became non-finite at epoch {epoch + 1} iteration {bad + 1}",
                epoch=epoch + 1,
                iteration=bad + 1,
            )
        log, loss = logs[-1], logs[-1].loss.item()
        bar.set_postfix(
            loss=f"{loss:.4g}", beta=f"{log.beta:.2f}", tfr=f"{self.tf.ratio(int(log.progress)):.2f}"
        )
        self._trigger("on_iter_end", dict(epoch=epoch, iter=len(logs) - 1, loss=loss))

    def validate(self) -> dict:
        res = self.with_fallback(
            lambda: validate(self.model, self.val_data, seed=self.cfg.seed, step_fn=self.compiled_rollout),
            step="rollout",
        )
        self.last_val = res
        self._trigger("on_validation_end", res)
        return res


def load_trained(run_dir, checkpoint: str = RunDir.LAST, device: str = "auto"):
    """(model, config) from a run folder, for evaluation and notebooks."""
    run = RunDir(run_dir)
    cfg = run.load_config()
    path = run.path / checkpoint
    state = load_checkpoint(path, map_location="cpu")
    model = build_model(cfg)
    load_model_weights(model, state, path)
    return model.to(pick_device(device)).eval(), cfg
