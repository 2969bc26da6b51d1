"""The one config: every hyper-parameter of the lab with the lab's defaults, plus ours.

Profiles are named sets of overrides on top of the lab's defaults; a notebook's ``parameters`` cell
mirrors these fields as flat literals and builds the config with :func:`make_config`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from lab4.schedules import KL_TYPES
from lab4.util.errors import Lab4Error
from lab4.util.paths import named_dataset


@dataclass
class Config:
    # experiment
    name: str = ""  # "" = named after what it trains (run_name): monotonic-s1, cyclical-tf-off
    profile: str = "lab"  # lab | quick | study | full | gpu | tiny (see PROFILES)
    data_root: str = ""  # "" = $LAB4_DATA, else SynthDance under data/; made absolute where typed
    synth_preset: str = "small"
    run_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # model (the lab's F_dim, L_dim, N_dim, D_out_dim)
    F_dim: int = 128
    L_dim: int = 32
    N_dim: int = 12
    D_out_dim: int = 192
    frame_H: int = 32
    frame_W: int = 64
    clamp_feedback: bool = True  # clamp generated frames to [0, 1] before feeding them back
    leaky_true_slope: float = (
        1.0  # slope of the template's two LeakyReLU(True) layers (pose encoder, Gaussian
    )
    # predictor): 1.0, the template's, makes them the identity; 0.01 a real one
    # optimisation (the lab's)
    batch_size: int = 2
    lr: float = 1e-3
    milestones: tuple = (2, 5)
    gamma: float = 0.1
    clip_grad: float = 1.0  # gradient-norm clip; 0 = no clipping (the norm is still logged)
    num_epoch: int = 70
    per_save: int = 3
    partial: float = 1.0
    fast_train: bool = False
    fast_partial: float = 0.4
    fast_train_epoch: int = 5
    train_vi_len: int = 16
    kl_weight: float = 1.0  # loss = MSE + kl_weight * beta * KL; 1.0 = the lab's loss
    # teacher forcing
    tfr: float = 1.0
    tfr_sde: int = 10
    tfr_d_step: float = 0.1
    tfr_per_epoch: bool = False  # the lab's template draws once per epoch; default per batch
    # KL annealing
    kl_anneal_type: str = "cyclical"  # cyclical | monotonic | none
    kl_anneal_cycle: int = 10
    kl_anneal_ratio: float = 1.0
    kl_beta_max: float = 1.0  # beta ceiling: beta = min(annealed beta, kl_beta_max); 1.0 = the lab's
    free_bits: float = 0.0  # KL floor in nats per latent channel per frame (Kingma et al. 2016); 0 = off
    # evaluation
    val_every: int = 1  # epochs between validation rollouts (0 = only at the end)
    val_draws: int = 1  # z draws averaged into a run's final score (1 = the lab's single rollout)
    predict: bool = True  # roll the test sequences out into submission.csv (a grid's extra seeds skip it)
    # speed options (no effect on the model's structure; each has a CPU correctness test)
    amp: bool = False  # autocast at the precision the device supports (bf16, fp16 + GradScaler on
    # GPUs of compute capability 7.x, else fp32): util/device.choose_precision
    channels_last: bool = False
    compile: bool = False  # torch.compile of the per-frame step
    fused_adam: bool = False
    cuda_graphs: bool = False  # CUDA-graph the rollout step
    batched_tf: bool = True  # teacher-forced frames of a clip as one batch (fast on a GPU); False: one
    # frame at a time as the lab's step (BatchNorm then sees B, not B*(T-1))
    data_on_device: bool = True  # uint8 dataset resident on the device; clips by indexing
    progress: bool = True

    def replace(self, **kw) -> "Config":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def load(cls, path) -> "Config":
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise Lab4Error(f"{path}: cannot read config ({e})") from None
        return make_config(**{k: v for k, v in d.items() if k in FIELDS})


FIELDS = {f.name for f in dataclasses.fields(Config)}

# Speed options that leave the math alone: the precision the GPU supports (lab4.util.device.choose_precision),
# channels_last, compile, fused Adam, CUDA graphs.
GPU_SPEED = dict(amp=True, channels_last=True, compile=True, fused_adam=True, cuda_graphs=True)
# The student's GPU profile: the optimisation of the course template and of the best public runs (batch 2,
# Adam at lr 1e-3, the gradient clip at norm 1, the KL summed over the latents), with the lr milestones
# moved later as those runs moved them: at the fractions of the run where the best one (270 epochs,
# [60, 100]) put them, 16 and 26 of the lab's 70 epochs. The template's (2, 5) leave 65 of 70 epochs at 1%
# of the lr; our own study could not tell a later drop from them at 6 epochs. Never trained here on a GPU yet.
FULL = dict(
    synth_preset="full",
    batch_size=2,
    lr=1e-3,
    clip_grad=1.0,
    kl_weight=1.0,
    milestones=(16, 26),
    val_every=5,
    **GPU_SPEED,
)

# Sized for 2 CPU cores, a few CPU-minutes a run (docs/speedrun.md has the times): a narrow model,
# 4-frame clips, half the clips, 3 epochs, teacher forcing 1 / 0.5 / 0, the lab's gradient
# clip at norm 1, the KL as a mean over the 8*32*64 latent elements (like the MSE over
# pixels: an effective beta the sum made 16,384x larger, which drove the posterior to the
# prior within two epochs), and bf16 autocast with channels_last on a CPU with native bf16
# (fp32 elsewhere). Validation only after the last epoch, the draws and the z = 0 rollout as
# one batch: evaluation was a third of a run. Each choice was measured: docs/speedrun.md.
QUICK = dict(
    synth_preset="small",
    F_dim=32,
    L_dim=16,
    N_dim=8,
    D_out_dim=32,
    batch_size=2,
    lr=3e-3,
    train_vi_len=4,
    partial=0.5,
    num_epoch=3,
    milestones=(2,),
    clip_grad=1.0,
    kl_weight=1 / (8 * 32 * 64),
    tfr_sde=1,
    tfr_d_step=0.5,
    kl_anneal_cycle=2,
    kl_anneal_ratio=0.5,
    per_save=1,
    val_every=0,
    val_draws=3,
    amp=True,
    channels_last=True,
)

# Overrides on top of the lab's defaults. `quick` is sized for 2 CPU cores (a few minutes a run);
# `full` is the lab's budget with the GPU fast path; `tiny` is for tests (seconds).
PROFILES: dict[str, dict] = {
    "lab": {},
    "full": FULL,
    # `full` with a larger batch and lr, faster per epoch on a big GPU; a departure from every measured
    # recipe, kept apart until a GPU run shows that it learns at least as well
    "full-b16": {**FULL, "batch_size": 16, "lr": 2e-3},
    # `full` cut to what one device session holds (python -m lab4 gpucheck): the lab's dims
    # on SynthDance full, 4 epochs (gpucheck stretches the schedule to the minutes left:
    # lab4.perf.gpuplan.gpu_schedule), teacher forcing for the first half, and no gradient
    # clipping: with the lab's KL summed over the latents the clip at norm 1 is set almost
    # entirely by the KL's gradient while beta anneals, starving the reconstruction.
    "gpu": dict(
        synth_preset="full",
        batch_size=16,
        lr=2e-3,
        num_epoch=4,
        milestones=(3,),
        clip_grad=0.0,
        tfr_sde=2,
        tfr_d_step=0.5,
        kl_anneal_cycle=2,
        kl_anneal_ratio=0.5,
        per_save=1,
        val_every=1,
        progress=False,
        **GPU_SPEED,
    ),
    "quick": QUICK,
    # `make study` (lab4/grid/study.py, study.yaml): quick's model and data at twice its epochs, under the
    # lab's loss (the KL summed, kl_weight 1) with the gradient clip at norm 100 that the lab-loss screen
    # found stable, the lab's lr milestones (2, 5), KL cycles as long as quick's (1.5 epochs), validation
    # every epoch with one z draw and no test rollout, no progress bars (papermill relaying them cost the
    # driver's workers a tenth of a core; the grid shows progress from metrics.csv). Six epochs is what the
    # study's runs fit into 90 minutes of 2 fp32 cores.
    "study": {
        **QUICK,
        **dict(
            num_epoch=6, milestones=(2, 5), clip_grad=100.0, kl_weight=1.0, kl_anneal_cycle=4, val_every=1
        ),
        **dict(val_draws=1, predict=False, progress=False),
    },
    "tiny": dict(
        synth_preset="tiny",
        F_dim=16,
        L_dim=8,
        N_dim=4,
        D_out_dim=16,
        batch_size=2,
        num_epoch=2,
        milestones=(1,),
        tfr_sde=1,
        per_save=1,
        val_every=1,
        kl_anneal_cycle=2,
        progress=False,
    ),
}


def make_config(profile: str = "lab", **overrides) -> Config:
    """Lab defaults, then the profile's overrides, then the caller's (unknown keys are an error)."""
    if profile not in PROFILES:
        raise Lab4Error(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    unknown = set(overrides) - FIELDS
    if unknown:
        raise Lab4Error(f"unknown config field(s): {', '.join(sorted(unknown))}")
    kw = {**PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None}, "profile": profile}
    if not kw.get("name"):  # a run is named after what it trains, so another setting lands in another folder
        kw["name"] = run_name(profile, **kw)
    if "milestones" in kw:
        kw["milestones"] = tuple(kw["milestones"])
    if kw.get("data_root"):  # relative to the folder it was typed in, before a notebook runs elsewhere
        kw["data_root"] = named_dataset(kw["data_root"])
    cfg = Config(**kw)
    check_config(cfg)
    return cfg


def seeded_name(name: str, seed: int | None) -> str:
    """``monotonic`` for seed 0, ``monotonic-s1`` for seed 1: the seeds of one strategy share its name."""
    return f"{name}-s{int(seed)}" if seed else name


def run_name(profile: str = "lab", /, **fields) -> str:
    """A run's name from what it trains: the KL schedule, any teacher forcing other than the profile's, the
    seed.

    ``cyclical``, ``monotonic-s1``, ``none-tf-off``, ``cyclical-tfr0.5-dstep0-s2``. The CLI, 02_train and a
    grid entry without a name all use it, so changing one of these settings changes the run folder.
    """
    base = {**dataclasses.asdict(Config()), **PROFILES.get(profile, {})}

    def get(key):
        return fields[key] if fields.get(key) is not None else base[key]

    parts = [str(get("kl_anneal_type")).lower()]
    if float(get("tfr")) == 0:
        parts.append("tf-off")
    else:
        for key, short in (("tfr", "tfr"), ("tfr_sde", "sde"), ("tfr_d_step", "dstep")):
            if get(key) != base[key]:
                parts.append(f"{short}{get(key):g}")
    return seeded_name("-".join(parts), get("seed"))


# Fields that may differ when a run resumes, and why: each leaves what was trained as it was. Any other
# difference makes a resume refuse (lab4.run.folder.RunDir.claim), since the folder would then hold a run
# trained one way and labelled another.
RESUME_MAY_CHANGE = {
    "num_epoch": (
        "to extend a run (a schedule that spans the run, monotonic or cyclical, then stretches over "
        "the new length for the epochs still to come)"
    ),
    "run_dir": "a run folder may be moved or copied",
    "device": "where a run trains, not what it trains",
    "progress": "progress bars only",
    "data_on_device": "where the frames are kept, not their values",
    "per_save": "how often last.pt is written",
    "val_every": "when validation runs; it reads the weights and never changes them",
    "val_draws": "how many z draws the final score averages",
    "predict": "whether the test sequences are rolled out after training",
    "amp": "a speed option: the same model and loss at the precision the device supports",
    "channels_last": "a speed option: the same model and loss in another memory layout",
    "compile": "a speed option: the same model and loss, compiled",
    "fused_adam": "a speed option: the same optimiser in one kernel",
    "cuda_graphs": "a speed option: the same rollout, replayed as a CUDA graph",
}


def check_config(cfg: Config) -> None:
    """Reject settings that would only fail later, deep inside training, with a one-line reason."""
    checks = [
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.lr > 0, "lr must be > 0"),
        (cfg.num_epoch >= 1, "num_epoch must be >= 1"),
        (0 < cfg.partial <= 1, "partial must be in (0, 1]"),
        (0 < cfg.fast_partial <= 1, "fast_partial must be in (0, 1]"),
        (cfg.train_vi_len >= 2, "train_vi_len must be >= 2"),
        (0 <= cfg.tfr <= 1, "tfr must be in [0, 1]"),
        (cfg.tfr_d_step >= 0, "tfr_d_step must be >= 0"),
        (cfg.kl_anneal_type.lower() in KL_TYPES, f"kl_anneal_type must be one of {', '.join(KL_TYPES)}"),
        (cfg.leaky_true_slope >= 0, "leaky_true_slope must be >= 0"),
        (cfg.kl_anneal_cycle >= 1, "kl_anneal_cycle must be >= 1"),
        (0 < cfg.kl_anneal_ratio <= 1, "kl_anneal_ratio must be in (0, 1]"),
        (cfg.per_save >= 1, "per_save must be >= 1"),
        (cfg.val_draws >= 1, "val_draws must be >= 1"),
        (cfg.clip_grad >= 0, "clip_grad must be >= 0 (0 = no clipping)"),
        (cfg.kl_weight >= 0, "kl_weight must be >= 0"),
        (0 < cfg.kl_beta_max <= 1, "kl_beta_max must be in (0, 1]"),
        (cfg.free_bits >= 0, "free_bits must be >= 0 (nats per latent channel per frame; 0 = off)"),
        (
            cfg.frame_H % 4 == 0 and cfg.frame_W % 4 == 0 and cfg.frame_H > 0,
            "frame_H/frame_W must be multiples of 4",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise Lab4Error(f"bad config: {msg}")
