"""The one config: every hyper-parameter of the lab with the lab's defaults, plus ours.

Profiles are named sets of overrides on top of the lab's defaults; a notebook's ``parameters`` cell
mirrors these fields as flat literals and builds the config with :func:`make_config`. Each field's help and
choices live in its metadata (fields.py): the CLI's flags and docs/config.md are made from them, and a test
holds the notebooks' comments to them.
"""

from __future__ import annotations

import dataclasses

from lab4.config.fields import (
    DEVICES,
    FIELD,
    FIELDS,
    SYNTH_PRESETS,
    Config,
    choices,
    field_help,
    summary,
    valid_choice,
)
from lab4.config.profiles import FULL, GPU_SPEED, PROFILE_HELP, PROFILES, QUICK
from lab4.schedules import KL_TYPES
from lab4.util.errors import Lab4Error
from lab4.util.paths import named_dataset

__all__ = [
    "DEVICES",
    "FIELD",
    "FIELDS",
    "FULL",
    "GPU_SPEED",
    "PROFILES",
    "PROFILE_HELP",
    "QUICK",
    "RESUME_MAY_CHANGE",
    "SYNTH_PRESETS",
    "Config",
    "check_config",
    "choices",
    "field_help",
    "make_config",
    "run_name",
    "seeded_name",
    "summary",
    "valid_choice",
]


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
        (
            valid_choice("device", cfg.device),
            f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}",
        ),
        (
            cfg.synth_preset in SYNTH_PRESETS,
            f"synth_preset must be one of {', '.join(SYNTH_PRESETS)}, got {cfg.synth_preset!r}",
        ),
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
