"""What a Trainer keeps in its run folder: the folder claimed before training, the state in last.pt
that a resume picks up exactly, metrics.csv, and the record left when training stops early.

A mixin of :class:`lab4.train.Trainer`, so that the loop reads without the bookkeeping.
"""

from __future__ import annotations

import sys

import torch

from lab4.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from lab4.run.folder import RunDir
from lab4.run.identity import check_epochs, claim, stretch_note
from lab4.util.errors import Lab4Error, NonFiniteLoss, OutOfMemory

METRIC_FIELDS = [
    "kind",
    "epoch",
    "iter",
    "progress",
    "loss",
    "mse",
    "kl",
    "grad_norm",
    "beta",
    "tfr",
    "teacher_forcing",
    "lr",
    "val_psnr",
    "val_ssim",
    "baseline_psnr",
    "active_units",
    "seconds",
    "frames_per_s",
]


class TrainState:
    """The Trainer's run-folder side; it reads the Trainer's model, optimizer, scaler, sampler and rows."""

    def open_folder(self, resume: bool, overwrite: bool) -> None:
        """Claim the folder for this run (lab4.run.identity), pick up last.pt when resuming, write
        config.json."""
        for line in (claim(self.files, self.cfg, resume, overwrite), stretch_note(self.files, self.cfg)):
            if line:
                print(f"lab4: {line}", file=sys.stderr, flush=True)
        if resume and (self.run_dir / RunDir.LAST).is_file():
            self.load(self.run_dir / RunDir.LAST)
            check_epochs(self.files, self.cfg, self.epoch)
        elif not resume:
            self.rows = []
        self.start_epoch = self.epoch  # > 0: this session resumed from last.pt
        self.files.write_config(self.cfg, dataset=self.dataset)

    def end_epoch(self) -> None:
        """metrics.csv, then last.pt when it is due."""
        # metrics first: a death between the two writes leaves extra rows (dropped on resume), never a gap
        self.write_metrics()
        if self.epoch % self.cfg.per_save == 0 or self.epoch == self.cfg.num_epoch:
            self.save(self.run_dir / RunDir.LAST)

    def diverged(self, e: NonFiniteLoss) -> NonFiniteLoss:
        """Record a non-finite loss in diverged.json: resuming would repeat it step for step, so the grid
        settles it."""
        self.files.write_diverged(dict(e.where, num_epoch=self.cfg.num_epoch, message=str(e)))
        last = self.run_dir / RunDir.LAST
        return NonFiniteLoss(f"{e}; training stopped, last good checkpoint kept at {last}")

    def out_of_memory(self) -> OutOfMemory:
        bs, last = self.cfg.batch_size, self.run_dir / RunDir.LAST
        lower = (
            f"lower it with --batch-size (e.g. --batch-size {bs // 2}; batch_size in a notebook or grid)"
            if bs > 1
            else "it cannot go lower: use smaller model dims (--f-dim, --d-out-dim)"
        )
        kept = f"last checkpoint kept at {last}" if last.is_file() else "no checkpoint written yet"
        return OutOfMemory(
            f"{self.cfg.name}: CUDA out of memory at batch size {bs} in epoch {self.epoch + 1}; "
            f"{lower}; {kept}"
        )

    def state_dict(self) -> dict:
        return dict(
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            epoch=self.epoch,
            scaler=self.scaler.state_dict(),
            config=self.cfg.to_dict(),
            teacher_forcing=self.tf.state_dict(),
            rng=dict(
                torch=torch.get_rng_state(),
                sampler=self.sampler.generator.get_state(),
                cuda=torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            ),
        )

    def save(self, path) -> None:
        save_checkpoint(path, self.state_dict())

    def load(self, path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        load_model_weights(self.model, state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.tf.load_state_dict(state["teacher_forcing"])
            # none saved: start afresh
            self.scaler.load_state_dict(state.get("scaler") or self.scaler.state_dict())
            torch.set_rng_state(state["rng"]["torch"].cpu())
            self.sampler.generator.set_state(state["rng"]["sampler"].cpu())
            if self.device.type == "cuda" and state["rng"]["cuda"]:
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
            self.epoch = int(state["epoch"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise Lab4Error(
                f"{path}: checkpoint lacks training state needed to resume ({type(e).__name__}: {e})"
            ) from None
        # rows past the checkpoint (written before a death at the epoch's end) are dropped: each epoch once
        self.rows = [
            r for r in self.files.metric_rows() if r["epoch"] is not None and r["epoch"] < self.epoch
        ]

    def write_metrics(self) -> None:
        self.files.write_metrics(self.rows, METRIC_FIELDS)
