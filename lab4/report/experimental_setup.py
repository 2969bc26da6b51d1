"""The experimental setup: what was trained, on what and for how long (``setup_macros``), every
hyper-parameter, the course template's value against the runs', and the compute.

``hyperparameter_rows`` is the body of main.tex's setup table. The reference column is the course's template
(TEMPLATE, written down once from the lab's definition), not this package's ``lab`` profile, which departs
from it in two places (clamped feedback, one teacher-forcing coin per batch). The runs' column comes from
their config.json, and the speed rows from what each run actually used (summary.json's ``speed``): an option
asked for may have been unavailable, as bf16 is on a CPU without native bf16. ``compute_macros`` reports
CPU-seconds per run, which add up, and how many runs overlapped in time, which their wall times hide.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lab4.config import make_config
from lab4.report.format import NA, range_text, tex_escape, thousands
from lab4.run.folder import RunDir, best_run
from lab4.schedules import KL_STRATEGIES, ramp_epochs

DEVICE_WORDS = {"cpu": "the CPU", "cuda": "a GPU"}  # a device as prose names it
CASES = {
    "GradClipCase": ("on", "off", "unknown"),  # is the gradient norm clipped
    # the KL's weight in the loss: the lab's 1, 1/(N*H*W), or another
    "KLWeightCase": ("lab", "mean", "other"),
    "MonotonicRampCase": ("whole", "part", "n/a"),  # does Monotonic's ramp span the run or part of it
    "TFPerEpoch": ("true", "false"),  # one teacher-forcing coin per epoch, else per batch
    "DataKind": ("synth", "real", "unknown"),  # what the runs trained on
    "ConcurrencyCase": ("one", "several", "unknown"),  # at most one run at a time, or several
    "ScoredCase": ("scored", "unscored"),  # does any run have a local test score
    "TestSeedsCase": ("all", "some"),  # did every scored run's seeds roll the test set out, or only some
}
# (config field, what the table calls it); the report explains each in its own section
HYPERPARAMETERS = (
    ("F_dim", "frame features $F$"),
    ("L_dim", "pose features $L$"),
    ("N_dim", "latent channels $N$"),
    ("D_out_dim", "decoder width $D$"),
    ("frame_H", "frame height"),
    ("frame_W", "frame width"),
    ("clamp_feedback", "clamp fed-back frames to $[0,1]$"),
    ("leaky_true_slope", "slope of the LeakyReLU(True) layers"),
    ("batch_size", "batch size"),
    ("lr", "learning rate"),
    ("milestones", "learning-rate milestones (epochs)"),
    ("gamma", "learning-rate factor"),
    ("clip_grad", "gradient-norm clip (0 = off)"),
    ("num_epoch", "epochs"),
    ("partial", "fraction of the clips per epoch"),
    ("train_vi_len", "clip length (frames)"),
    ("tfr", "teacher-forcing ratio at the start"),
    ("tfr_sde", "teacher forcing falls from epoch"),
    ("tfr_d_step", "teacher-forcing step per epoch"),
    ("tfr_per_epoch", "one teacher-forcing coin per epoch"),
    ("kl_anneal_type", "KL annealing"),
    ("kl_anneal_cycle", "KL annealing cycles $M$"),
    ("kl_anneal_ratio", "KL annealing ramp ratio $R$"),
    ("kl_weight", "KL weight on top of $\\beta$"),
    ("free_bits", "free bits $\\lambda$ (nats per channel)"),
    ("val_draws", "draws of $z$ per validation score"),
    ("batched_tf", "teacher-forced frames as one batch"),
)
# speed options: the table shows what summary.json says each run used, not what its config asked for
SPEED = (
    ("amp", "mixed-precision autocast"),
    ("channels_last", "channels-last memory format"),
    ("compile", "torch.compile"),
    ("fused_adam", "fused Adam"),
    ("cuda_graphs", "CUDA graphs"),
)
# The course's template (Lab4_template, NYCU Deep Learning and Practice, 2024-2025 editions), as the lab
# defines it: its defaults, its one teacher-forcing coin per epoch, its unclamped feedback (the generator ends
# in a bare convolution), one frame at a time, in fp32 without any speed option.
TEMPLATE = dict(
    F_dim=128,
    L_dim=32,
    N_dim=12,
    D_out_dim=192,
    frame_H=32,
    frame_W=64,
    clamp_feedback=False,
    leaky_true_slope=1.0,
    batch_size=2,
    lr=1e-3,
    milestones=[2, 5],
    gamma=0.1,
    clip_grad=1.0,
    num_epoch=70,
    partial=1.0,
    train_vi_len=16,
    tfr=1.0,
    tfr_sde=10,
    tfr_d_step=0.1,
    tfr_per_epoch=True,
    kl_anneal_type="cyclical",
    kl_anneal_cycle=10,
    kl_anneal_ratio=1.0,
    kl_weight=1.0,
    free_bits=0.0,
    val_draws=1,
    batched_tf=False,
    amp=False,
    channels_last=False,
    compile=False,
    fused_adam=False,
    cuda_graphs=False,
)


def _fraction(v: float) -> str | None:
    """1/16384 for a small weight that is one over a whole number (6.10352e-05 says less), else None."""
    inv = 1 / v if 0 < v < 0.01 else 0.0
    return f"1/{round(inv)}" if inv and abs(inv - round(inv)) < 1e-6 * inv else None


def _show(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return _fraction(v) or f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_show(x) for x in v) or "none"
    return tex_escape(v)


def used(run, key):
    """What ``run`` used for a setting: a speed option as summary.json records it (falling back on the config
    for a run without a summary), anything else from config.json, the lab profile's default when absent."""
    speed = run.summary().get("speed") or {}
    if key in dict(SPEED) and key in speed:
        v = speed[key]
    else:
        v = run.config().get(key, make_config("lab").to_dict()[key])
    return list(v) if isinstance(v, (list, tuple)) else v


def hyperparameter_rows(runs) -> str:
    """One row per setting: name, the template's value, ours (every value the runs used), a mark where they
    differ."""
    lines = []
    for key, label in HYPERPARAMETERS + SPEED:
        have = []
        for r in runs:
            if (v := used(r, key)) not in have:
                have.append(v)
        ours = " / ".join(_show(v) for v in have) if have else NA
        mark = r"$\ast$" if have and any(v != TEMPLATE[key] for v in have) else ""
        name = f"{label} {{\\footnotesize\\texttt{{{tex_escape(key)}}}}}"
        lines.append(f"{name} & {_show(TEMPLATE[key])} & {ours} & {mark} \\\\")
    return "\n".join(lines) + "\n"


def departures(runs) -> list[str]:
    """The settings in which some run differs from the course's template."""
    return [key for key, _ in HYPERPARAMETERS + SPEED if any(used(r, key) != TEMPLATE[key] for r in runs)]


def max_concurrent(runs) -> int | None:
    """The largest number of runs whose [started_at, finished_at] intervals overlap; None if unrecorded."""
    spans = [(r.summary().get("started_at"), r.summary().get("finished_at")) for r in runs]
    spans = [(float(a), float(b)) for a, b in spans if a is not None and b is not None]
    if not spans or len(spans) < len(runs):
        return None
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def compute_macros(runs) -> dict[str, str]:
    """CPU-seconds per run (min, max, total), the threads each used, and how many ran at once."""
    cpu = [r.number("cpu_seconds") for r in runs]
    cpu = [c for c in cpu if np.isfinite(c)]
    wall = [r.number("wall_seconds") for r in runs]
    wall = [w for w in wall if np.isfinite(w)]
    threads = sorted({int(r.summary()["threads"]) for r in runs if r.summary().get("threads")})
    cpus = sorted({int(r.summary()["cpus"]) for r in runs if r.summary().get("cpus")})
    procs = sorted({str(r.summary()["processor"]) for r in runs if r.summary().get("processor")})
    k = max_concurrent(runs)
    m = {
        "CPUSecondsMin": f"{min(cpu):.0f}" if cpu else NA,
        "CPUSecondsMax": f"{max(cpu):.0f}" if cpu else NA,
        "CPUMinutesTotal": f"{sum(cpu) / 60:.1f}" if cpu else NA,
        "CPURunCount": str(len(cpu)),
        "WallMinutesMin": f"{min(wall) / 60:.1f}" if wall else NA,
        "WallMinutesMax": f"{max(wall) / 60:.1f}" if wall else NA,
        "ThreadsPerRun": "/".join(map(str, threads)) or NA,
        "MachineCPUs": "/".join(map(str, cpus)) or NA,
        "Processor": tex_escape("; ".join(procs)) or NA,
        "MaxConcurrentRuns": str(k) if k else NA,
        "ConcurrencyCase": "unknown" if k is None else "one" if k == 1 else "several",
    }
    scored = any(np.isfinite(r.number("public")) for r in runs)
    m["ScoredCase"] = "scored" if scored else "unscored"
    # the grid's extra seeds skip the test rollout (predict=False): their strategy's score is one run's
    skipped = [r for r in runs if r.config().get("predict") is False]
    m["TestSeedsCase"] = "some" if scored and skipped else "all"
    m["TestSkippedRuns"] = str(len(skipped))
    m["NumDepartures"] = str(len(departures(runs)))
    return m


def _reference_run(runs) -> RunDir | None:
    """The run whose settings the report describes: a KL run (teacher-forcing variants override tfr)."""
    return next((r for s in KL_STRATEGIES for r in runs if r.strategy == s), None) or best_run(runs)


def _data_kind(run: RunDir | None) -> tuple[str, str]:
    """("synth", preset) for SynthDance (its synthdance.json names the preset), else ("real", "")."""
    if run is None:
        return "unknown", NA
    root = run.config().get("data_root") or ""
    meta = Path(root) / "synthdance.json" if root else None
    if root and not meta.is_file():
        return "real", NA
    preset = run.config().get("synth_preset", "small")
    if meta is not None:
        try:
            preset = json.loads(meta.read_text()).get("preset", preset)
        except ValueError:
            pass
    return "synth", tex_escape(preset)


def setup_macros(runs) -> dict[str, str]:
    """What was trained, on what, for how long, with which settings (those of the reference run)."""
    from lab4.model import CVAE, count_parameters

    ref = _reference_run(runs)
    cfg = ref.config() if ref else {}
    m = {"NumRuns": str(len(runs))}
    m["DataKind"], m["SynthPreset"] = _data_kind(ref)
    m["ProfileName"] = tex_escape(ref.summary().get("profile") or cfg.get("profile", NA)) if ref else NA
    devices = sorted({str(r.summary().get("device") or r.config().get("device", NA)) for r in runs})
    m["Device"] = tex_escape(" and ".join(DEVICE_WORDS.get(d.split(":")[0], d) for d in devices) or NA)
    m["NumEpochs"] = range_text(int(r.number("epochs")) for r in runs if np.isfinite(r.number("epochs")))
    m["ValEvery"] = str(cfg.get("val_every", 1))
    # runs before draws: one
    m["ValDraws"] = str(len(ref.summary().get("mean_psnr_draws") or [1])) if ref else NA
    ntrain = (cfg.get("dataset") or {}).get("train", {}).get("frames")
    m["NumTrainFrames"] = thousands(ntrain) if ntrain else NA
    nval = next((len(r.psnr()) for r in runs if r.psnr() is not None), None)
    nval = nval or next((int(f) - 1 for r in runs if (f := r.val_summary().get("frames"))), None)  # generated
    m["NumValFrames"] = str(nval) if nval else NA
    dims = dict(
        F=cfg.get("F_dim", 128), L=cfg.get("L_dim", 32), N=cfg.get("N_dim", 12), D=cfg.get("D_out_dim", 192)
    )
    m.update({f"Dim{k}": str(v) for k, v in dims.items()})
    m["ParamCount"] = thousands(count_parameters(CVAE(**dims)))
    m["LabParamCount"] = thousands(count_parameters(CVAE()))
    for key, field_ in (
        ("BatchSize", "batch_size"),
        ("LearningRate", "lr"),
        ("KLCycles", "kl_anneal_cycle"),
        ("KLRatio", "kl_anneal_ratio"),
        ("TFRStart", "tfr"),
        ("TFRSde", "tfr_sde"),
        ("TFRDStep", "tfr_d_step"),
        ("ClipLen", "train_vi_len"),
        ("GradClip", "clip_grad"),
        ("LRGamma", "gamma"),
    ):
        v = cfg.get(field_)
        m[key] = tex_escape(f"{v:g}" if isinstance(v, float) else v) if v is not None else NA
    # Monotonic's one ramp covers kl_anneal_ratio of the run, so beta reaches 1 at this epoch
    ratio, epochs = cfg.get("kl_anneal_ratio"), cfg.get("num_epoch")
    m["MonotonicRampCase"] = NA if ratio is None or epochs is None else "whole" if ratio >= 1 else "part"
    ramp = ramp_epochs("monotonic", float(epochs), 1, float(ratio)) if m["MonotonicRampCase"] != NA else None
    m["MonotonicRampEnd"] = f"{ramp:g}" if ramp is not None else NA
    sde = cfg.get("tfr_sde")
    m["TFRSdeEpoch"] = str(int(sde) + 1) if sde is not None else NA  # 1-based, as the report counts epochs
    clip = cfg.get("clip_grad")
    m["GradClipCase"] = "unknown" if clip is None else "off" if float(clip) == 0 else "on"
    w = float(cfg.get("kl_weight", 1.0))
    n_latent = int(cfg.get("N_dim", 12)) * int(cfg.get("frame_H", 32)) * int(cfg.get("frame_W", 64))
    m["KLWeight"] = _fraction(w) or f"{w:.4g}"
    m["LatentElements"] = thousands(n_latent)
    m["KLWeightCase"] = (
        "lab" if w == 1 else "mean" if math.isclose(w * n_latent, 1, rel_tol=1e-6) else "other"
    )
    m["TFPerEpoch"] = "true" if cfg.get("tfr_per_epoch") else "false"
    ms = cfg.get("milestones")
    m["Milestones"] = ", ".join(str(x) for x in ms) if ms else NA
    return m
