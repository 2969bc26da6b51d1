"""The report's setup: every hyper-parameter, the lab's value against the runs', and the compute they took.

``hyperparameter_rows`` is the body of main.tex's setup table: the lab's value comes from the ``lab``
profile (lab4.config's defaults), ours from the runs' config.json, so a departure is listed because the
runs departed, not because someone remembered to write it down. ``compute_macros`` reports CPU-seconds
per run (summary.json's ``cpu_seconds``), which add up, and how many runs overlapped in time, which the
wall time of concurrent runs hides.
"""
from __future__ import annotations

import numpy as np

from lab4.config import make_config
from lab4.report.format import NA, tex_escape

CASES = {
    "ConcurrencyCase": ("one", "several", "unknown"),  # at most one run at a time, or several
    "ScoredCase": ("scored", "unscored"),  # does any run have a local test score
    "TestSeedsCase": ("all", "some"),  # did every scored run's seeds roll the test set out, or only some
}
# (config field, what the table calls it); the report explains each in its own section
HYPERPARAMETERS = (
    ("F_dim", "frame features $F$"), ("L_dim", "pose features $L$"), ("N_dim", "latent channels $N$"),
    ("D_out_dim", "decoder width $D$"), ("frame_H", "frame height"), ("frame_W", "frame width"),
    ("clamp_feedback", "clamp fed-back frames to $[0,1]$"),
    ("batch_size", "batch size"), ("lr", "learning rate"), ("milestones", "learning-rate milestones (epochs)"),
    ("gamma", "learning-rate factor"), ("clip_grad", "gradient-norm clip (0 = off)"), ("num_epoch", "epochs"),
    ("partial", "fraction of the clips per epoch"), ("fast_train", "fast train"),
    ("fast_partial", "fast-train fraction"), ("fast_train_epoch", "fast-train epochs"),
    ("train_vi_len", "clip length (frames)"),
    ("tfr", "teacher-forcing ratio at the start"), ("tfr_sde", "teacher forcing falls from epoch"),
    ("tfr_d_step", "teacher-forcing step per epoch"), ("tfr_per_epoch", "one teacher-forcing coin per epoch"),
    ("kl_anneal_type", "KL annealing"), ("kl_anneal_cycle", "KL annealing cycles $M$"),
    ("kl_anneal_ratio", "KL annealing ramp ratio $R$"), ("kl_weight", "KL weight on top of $\\beta$"),
    ("kl_beta_max", "$\\beta$ ceiling"), ("free_bits", "free bits $\\lambda$ (nats per channel)"),
    ("batched_tf", "teacher-forced frames as one batch"), ("amp", "bf16 autocast"),
    ("synth_preset", "SynthDance preset"),
)


def _show(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_show(x) for x in v) or "none"
    return tex_escape(v)


def hyperparameter_rows(runs) -> str:
    """One row per setting: name, the lab's value, ours (every value the runs used), and a mark where they differ."""
    lab = make_config("lab").to_dict()
    lines = []
    for key, label in HYPERPARAMETERS:
        have = []
        for r in runs:
            v = r.config().get(key, lab[key])
            v = list(v) if isinstance(v, (list, tuple)) else v
            if v not in have:
                have.append(v)
        want = list(lab[key]) if isinstance(lab[key], tuple) else lab[key]
        ours = " / ".join(_show(v) for v in have) if have else NA
        mark = r"$\ast$" if have and any(v != want for v in have) else ""
        lines.append(f"{label} & {_show(lab[key])} & {ours} & {mark} \\\\")
    return "\n".join(lines) + "\n"


def departures(runs) -> list[str]:
    """The config fields in which some run differs from the lab."""
    lab = make_config("lab").to_dict()
    out = []
    for key, _ in HYPERPARAMETERS:
        want = list(lab[key]) if isinstance(lab[key], tuple) else lab[key]
        if any((list(v) if isinstance(v, (list, tuple)) else v) != want
               for v in (r.config().get(key, lab[key]) for r in runs)):
            out.append(key)
    return out


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
    m = {"CPUSecondsMin": f"{min(cpu):.0f}" if cpu else NA, "CPUSecondsMax": f"{max(cpu):.0f}" if cpu else NA,
         "CPUMinutesTotal": f"{sum(cpu) / 60:.1f}" if cpu else NA, "CPURunCount": str(len(cpu)),
         "WallMinutesMin": f"{min(wall) / 60:.1f}" if wall else NA,
         "WallMinutesMax": f"{max(wall) / 60:.1f}" if wall else NA,
         "ThreadsPerRun": "/".join(map(str, threads)) or NA, "MachineCPUs": "/".join(map(str, cpus)) or NA,
         "Processor": tex_escape("; ".join(procs)) or NA,
         "MaxConcurrentRuns": str(k) if k else NA,
         "ConcurrencyCase": "unknown" if k is None else "one" if k == 1 else "several"}
    scored = any(np.isfinite(r.number("public")) for r in runs)
    m["ScoredCase"] = "scored" if scored else "unscored"
    # the grid's extra seeds skip the test rollout (predict=False): their strategy's score is one run's
    skipped = [r for r in runs if r.config().get("predict") is False]
    m["TestSeedsCase"] = "some" if scored and skipped else "all"
    m["TestSkippedRuns"] = str(len(skipped))
    m["NumDepartures"] = str(len(departures(runs)))
    return m


MACRO_PARTS = (compute_macros,)
