"""KL-annealing and teacher-forcing schedules, as pure functions of training progress.

Progress is measured in fractional epochs (``epoch + iteration / iters_per_epoch``) so that beta
moves smoothly within an epoch and the schedule is the same whatever the batch size.
"""

from __future__ import annotations

import math
import random

# the lab's three KL annealing strategies, in the order the report lists them; config validation,
# the report and the GPU session's grid all take them from here
KL_STRATEGIES = ("monotonic", "cyclical", "none")
# every kl_anneal_type a run may set: the three, and the other monotonic that student reports use, a ramp over
# the first kl_anneal_cycle * kl_anneal_ratio epochs and then beta = 1 ("monotonic" is one ramp over the run)
KL_TYPES = KL_STRATEGIES + ("monotonic-held",)


def _checked_kind(kind: str, ratio: float, n_cycle: int) -> str:
    """``kind`` in lower case, once the arguments its schedule reads are valid."""
    kind = kind.lower()
    if kind not in KL_TYPES:
        raise ValueError(f"kl_anneal_type must be one of {', '.join(KL_TYPES)}, got {kind!r}")
    if kind != "none" and not 0 < ratio <= 1:
        raise ValueError(f"kl_anneal_ratio must be in (0, 1], got {ratio}")
    if kind in ("cyclical", "monotonic-held") and n_cycle < 1:
        raise ValueError(f"kl_anneal_cycle must be >= 1, got {n_cycle}")
    return kind


# report: kl-beta begin
def kl_beta(kind: str, progress: float, total_epochs: float, n_cycle: int = 10, ratio: float = 1.0) -> float:
    """beta at fractional epoch ``progress`` of a run of ``total_epochs`` (Fu et al. 2019): ``n_cycle``
    cycles, each a ramp from 0 to 1 over its first ``ratio``, then 1; monotonic is one cycle over the run."""
    kind = _checked_kind(kind, ratio, n_cycle)
    if kind == "none":
        return 1.0
    if kind == "monotonic-held":  # one ramp over the first n_cycle * ratio epochs, then 1
        return min(1.0, progress / (n_cycle * ratio))
    if progress >= total_epochs:
        return 1.0
    x = progress * (1 if kind == "monotonic" else n_cycle) / total_epochs  # cycles elapsed
    x = round(x) if abs(x - round(x)) < 1e-9 else x
    return min(1.0, (x - math.floor(x)) / ratio)
    # report: kl-beta end


def ramp_epochs(kind: str, total_epochs: float, n_cycle: int = 10, ratio: float = 1.0) -> float:
    """Epochs until beta first reaches 1 (0 for none): what a sentence about a schedule's ramp quotes."""
    kind = _checked_kind(kind, ratio, n_cycle)
    if kind == "none":
        return 0.0
    if kind == "monotonic-held":
        return n_cycle * ratio
    return ratio * total_epochs / (1 if kind == "monotonic" else n_cycle)


# report: teacher-forcing-ratio begin
def teacher_forcing_ratio(epoch: int, tfr: float = 1.0, sde: int = 10, d_step: float = 0.1) -> float:
    """Ratio at 0-based ``epoch``: ``tfr`` before epoch ``sde``, then ``d_step`` less each epoch, floor 0
    (the template lowers it after every epoch once ``current_epoch >= sde``)."""
    if not 0 <= tfr <= 1:
        raise ValueError(f"tfr must be in [0, 1], got {tfr}")
    return max(0.0, tfr - d_step * max(0, epoch - sde + 1))
    # report: teacher-forcing-ratio end


class TeacherForcing:
    """Draws whether a batch (or, with ``per_epoch``, a whole epoch) uses teacher forcing."""

    def __init__(self, tfr: float, sde: int, d_step: float, per_epoch: bool = False, seed: int = 0):
        self.tfr, self.sde, self.d_step, self.per_epoch = tfr, sde, d_step, per_epoch
        self.rng = random.Random(seed)
        self._epoch_draw: tuple[int, bool] | None = None

    def ratio(self, epoch: int) -> float:
        return teacher_forcing_ratio(epoch, self.tfr, self.sde, self.d_step)

    def draw(self, epoch: int) -> bool:
        if self.per_epoch:
            if self._epoch_draw is None or self._epoch_draw[0] != epoch:
                self._epoch_draw = (epoch, self.rng.random() < self.ratio(epoch))
            return self._epoch_draw[1]
        return self.rng.random() < self.ratio(epoch)

    def state_dict(self):
        return {"rng": self.rng.getstate(), "epoch_draw": self._epoch_draw}

    def load_state_dict(self, state):
        rng = state["rng"]
        self.rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        self._epoch_draw = tuple(state["epoch_draw"]) if state["epoch_draw"] is not None else None


def beta_at(cfg, progress: float) -> float:
    """A run's KL weight at fractional epoch ``progress``: its annealing schedule (a Config's fields), capped
    at ``kl_beta_max`` (a ceiling: the ramps climb as before and hold at the cap; the default 1.0 never
    binds)."""
    return min(
        cfg.kl_beta_max,
        kl_beta(cfg.kl_anneal_type, progress, cfg.num_epoch, cfg.kl_anneal_cycle, cfg.kl_anneal_ratio),
    )
