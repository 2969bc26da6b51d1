"""The Config dataclass: every field with its default and, in its metadata, its help (and an enumeration's
choices), the one text that ``lab4 train --help``, docs/config.md and the notebooks' comments all show.

A help's first sentence is its summary (:func:`summary`): the notebooks' parameters cells start each
field's comment with it, so it says what the value is in a few words; the sentences after it say more.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lab4.config.profiles import PROFILES
from lab4.schedules import KL_TYPES
from lab4.util.errors import Lab4Error

# SynthDance's sizes (lab4.datasets.synth.PRESETS, which a test keeps in step: importing it here would load
# numpy for `lab4 --help`)
SYNTH_PRESETS = ("tiny", "small", "full", "control", "control-tiny")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # cuda:N stands for cuda:0, cuda:1, ...


def _field(default, text: str, choices: tuple[str, ...] | None = None):
    """A dataclass field whose metadata holds its help and, for an enumeration, its choices."""
    return field(default=default, metadata=dict(help=text, **({"choices": choices} if choices else {})))


@dataclass
class Config:
    # experiment
    name: str = _field(
        "",
        "The run's name. Empty: named after what it trains, for example monotonic-s1 or cyclical-tf-off, so "
        "that another setting lands in another folder.",
    )
    profile: str = _field(
        "lab",
        "The profile: a named set of settings on top of the lab's defaults. docs/config.md says what each "
        "one is for.",
        tuple(PROFILES),
    )
    data_root: str = _field(
        "",
        "The dataset folder, in the course's layout. Empty: $LAB4_DATA if set, else SynthDance generated "
        "for synth_preset. A relative path is made absolute against the folder it was typed in.",
    )
    synth_preset: str = _field(
        "small",
        "Which SynthDance, the generated dataset, to use when no dataset is named. tiny: 64 training frames, "
        "for tests; small: 2,400; full: 23,410; control and control-tiny: small's and tiny's dancer under a "
        "light and wall colour that the pose does not tell (the positive control, "
        "lab4/datasets/synth/look.py).",
        SYNTH_PRESETS,
    )
    run_dir: str = _field(
        "runs/default",
        "The run folder: config.json, metrics.csv, last.pt and summary.json go there. lab4 train and "
        "02_train put a run in runs/<profile>/<name> unless told otherwise.",
    )
    seed: int = _field(
        0,
        "The random seed. It sets the initial weights, the clip order, the teacher-forcing draws and the z "
        "samples; a run with seed 1 is named <name>-s1.",
    )
    device: str = _field(
        "auto",
        "Where the run trains. auto: a CUDA GPU if torch sees one, else the CPU; cuda:N is GPU number N.",
        DEVICES,
    )
    # model (the lab's F_dim, L_dim, N_dim, D_out_dim)
    F_dim: int = _field(
        128, "Channels of the frame encoder's features (the lab's F_dim). A multiple of 8; wider is slower."
    )
    L_dim: int = _field(32, "Channels of the pose encoder's features (the lab's L_dim). A multiple of 2.")
    N_dim: int = _field(
        12,
        "Channels of the latent z (the lab's N_dim). A multiple of 4, and F_dim + L_dim + N_dim must be "
        "one too.",
    )
    D_out_dim: int = _field(
        192, "Channels the decoder fusion hands to the generator (the lab's D_out_dim). A multiple of 8."
    )
    frame_H: int = _field(
        32, "Frame height in pixels: frames are resized to it when loaded. A multiple of 4."
    )
    frame_W: int = _field(64, "Frame width in pixels: frames are resized to it when loaded. A multiple of 4.")
    clamp_feedback: bool = _field(
        True,
        "Clamp each generated frame to [0, 1] before it is fed back as the next step's input. The lab feeds "
        "the raw output back, which drifts over a long rollout.",
    )
    leaky_true_slope: float = _field(
        1.0,
        "Slope of the template's two LeakyReLU(True) layers (pose encoder, Gaussian predictor). 1.0, the "
        "template's, makes them the identity; 0.01 makes them real leaky ReLUs.",
    )
    # optimisation (the lab's)
    batch_size: int = _field(2, "Clips per training batch.")
    lr: float = _field(1e-3, "Adam's learning rate at the start of training.")
    milestones: tuple = _field(
        (2, 5), "Epochs after which the learning rate is multiplied by gamma (the lab's MultiStepLR)."
    )
    gamma: float = _field(0.1, "Factor on the learning rate at each milestone; 0.1 divides it by 10.")
    clip_grad: float = _field(
        1.0, "Largest gradient norm: larger gradients are scaled down to it. 0: no clipping (still logged)."
    )
    num_epoch: int = _field(70, "Epochs to train.")
    per_save: int = _field(3, "Epochs between saves of last.pt; the last epoch is always saved.")
    partial: float = _field(
        1.0, "Fraction of the training clips used in each epoch (the lab's partial), in (0, 1]."
    )
    fast_train: bool = _field(
        False,
        "Train the first fast_train_epoch epochs on only fast_partial of the clips (the lab's fast_train).",
    )
    fast_partial: float = _field(0.4, "Fraction of the clips used while fast_train lasts, in (0, 1].")
    fast_train_epoch: int = _field(5, "Epochs that fast_train lasts.")
    train_vi_len: int = _field(16, "Frames per training clip (the lab's train_vi_len), at least 2.")
    kl_weight: float = _field(
        1.0,
        "Weight of the KL term: loss = MSE + kl_weight * beta * KL. 1.0 is the lab's loss; 1/(N*H*W) makes "
        "the KL a mean per latent element, like the MSE.",
    )
    # teacher forcing
    tfr: float = _field(
        1.0,
        "Teacher-forcing ratio at the start, in [0, 1]. It is the chance that a batch is fed the true "
        "previous frames instead of its own predictions; 0: no teacher forcing.",
    )
    tfr_sde: int = _field(
        10,
        "Epoch from which the teacher-forcing ratio drops by tfr_d_step each epoch (the lab's tfr_sde). "
        "Epochs count from 1.",
    )
    tfr_d_step: float = _field(
        0.1, "How much the teacher-forcing ratio drops each epoch once it decays; it stops at 0."
    )
    tfr_per_epoch: bool = _field(
        False,
        "Draw teacher forcing once per epoch, as the lab's template does. False: draw it for every batch.",
    )
    # KL annealing
    kl_anneal_type: str = _field(
        "cyclical",
        "How the KL weight beta grows during training. cyclical: kl_anneal_cycle ramps from 0 to 1; "
        "monotonic: one ramp over the run; none: beta = 1 throughout; monotonic-held: one ramp over the "
        "first kl_anneal_cycle * kl_anneal_ratio epochs, then 1.",
        KL_TYPES,
    )
    kl_anneal_cycle: int = _field(
        10,
        "Number of KL annealing cycles over the run (cyclical), at least 1. monotonic-held ramps over "
        "kl_anneal_cycle * kl_anneal_ratio epochs.",
    )
    kl_anneal_ratio: float = _field(
        1.0, "Fraction of each cycle over which beta ramps from 0 to 1 before it holds at 1, in (0, 1]."
    )
    kl_beta_max: float = _field(
        1.0,
        "Ceiling on beta, in (0, 1]: beta = min(annealed beta, kl_beta_max). 1.0, the lab's, never binds.",
    )
    free_bits: float = _field(
        0.0,
        "KL floor in nats per latent channel per frame; 0: off. A channel below it adds no KL gradient "
        "(free bits, Kingma et al. 2016).",
    )
    # evaluation
    val_every: int = _field(1, "Epochs between validation rollouts; 0: only after the last epoch.")
    val_draws: int = _field(
        1, "z draws averaged into the run's final validation score; 1 is the lab's single rollout."
    )
    predict: bool = _field(
        True, "Roll the test sequences out into submission.csv after training (a grid's extra seeds skip it)."
    )
    # speed options (no effect on the model's structure; each has a CPU correctness test)
    amp: bool = _field(
        False,
        "Mixed precision: autocast to the precision the device supports. That is bf16 where the hardware "
        "has it, fp16 with a GradScaler on GPUs of compute capability 7.x, and fp32 (no autocast) elsewhere.",
    )
    channels_last: bool = _field(
        False, "Keep images in the channels-last memory layout: the same model and loss, often faster."
    )
    compile: bool = _field(
        False, "torch.compile the per-frame step: the same model and loss, faster after a slow start."
    )
    fused_adam: bool = _field(
        False, "Use Adam's fused one-kernel implementation on a GPU: the same optimiser."
    )
    cuda_graphs: bool = _field(
        False, "Replay the rollout step as a CUDA graph on a GPU: the same rollout, less launch overhead."
    )
    batched_tf: bool = _field(
        True,
        "Run a clip's teacher-forced frames as one batch (fast on a GPU). False: one frame at a time as the "
        "lab does, so BatchNorm sees B frames, not B*(T-1).",
    )
    data_on_device: bool = _field(
        True, "Keep the uint8 dataset on the training device and cut clips from it by indexing."
    )
    progress: bool = _field(True, "Show progress bars.")

    def replace(self, **kw) -> "Config":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def load(cls, path) -> "Config":
        from lab4.config import make_config

        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise Lab4Error(f"{path}: cannot read config ({e})") from None
        return make_config(**{k: v for k, v in d.items() if k in FIELDS})


FIELD = {f.name: f for f in dataclasses.fields(Config)}
FIELDS = set(FIELD)


def field_help(name: str) -> str:
    return FIELD[name].metadata["help"]


def summary(name: str) -> str:
    """A field's help up to the end of its first sentence: what the notebooks' comments start with."""
    text = field_help(name)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def choices(name: str) -> tuple[str, ...]:
    """An enumeration's values (empty for any other field); ``cuda:N`` stands for every ``cuda:<number>``."""
    return FIELD[name].metadata.get("choices", ())


def valid_choice(name: str, value: str) -> bool:
    return value in choices(name) or (name == "device" and re.fullmatch(r"cuda:\d+", str(value)) is not None)
