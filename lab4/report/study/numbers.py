"""The longer-budget section's numbers and the case macros that pick its sentences in report/main.tex.

Every macro is prefixed ``Study``. The runs are those of study.yaml as lab4/grid/study.py exported them: the
three KL annealing schedules, three quirk runs each paired by seed with Monotonic, and real footage; which run
is which comes from study.yaml (lab4.report.study.roles).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lab4.config import make_config
from lab4.report import numbers as report_numbers
from lab4.report.comparisons.questions import QUESTION_CASES, question_macros
from lab4.report.format import NA, display_name, fmt, tex_escape
from lab4.report.loss.dynamics import kl_per_frame
from lab4.run.folder import RunDir, group, load_runs
from lab4.run.questions import LAB_QUESTIONS
from lab4.schedules import KL_STRATEGIES

RECORD = "study.json"  # lab4/grid/study.py writes it beside the runs
GAIN_DB = 0.5  # a validation curve has flattened where no later epoch gains more than this
MULTIPLES = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}
CASES = {
    "StudyCase": ("present", "absent"),
    "StudyKLCase": QUESTION_CASES,  # the KL question on the study's runs
    "StudyLossCase": ("lab", "other"),  # the KL summed with weight 1, as the lab's loss, or another weight
    "StudyActiveCase": ("never", "some", "unknown"),  # any active latent unit at any validated epoch
    # schedules whose curve flattened before the last epoch
    "StudyFlatCase": ("all", "some", "none", "unknown"),
}


def load_study(study_dir) -> tuple[list[RunDir], dict]:
    """The exported runs under ``study_dir`` and its study.json (none and {} when the folder is missing)."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        return [], {}
    try:
        record = json.loads((study_dir / RECORD).read_text())
    except (OSError, ValueError):
        record = {}
    return load_runs(study_dir), record if isinstance(record, dict) else {}


def kl_runs(runs) -> list[RunDir]:
    return [r for r in runs if r.strategy in KL_STRATEGIES]


def finished(runs) -> list[RunDir]:
    """The runs that did not diverge: a run that stopped early has no curve or final KL of its schedule."""
    return [r for r in runs if not r.diverged()]


def diverged_macros(runs) -> dict[str, str]:
    """The schedules' runs whose loss became non-finite: how many, and which (schedule, seed, epoch)."""
    gone = [r for r in kl_runs(runs) if r.diverged()]
    where = [f"{display_name(r.strategy)} (seed {r.config().get('seed', '?')})" for r in gone]
    epochs = sorted({str(r.diverged().get("epoch", "?")) for r in gone})
    return {
        "StudyDivergedCount": str(len(gone)),
        "StudyDivergedList": tex_escape(
            ", ".join(where[:-1]) + " and " + where[-1] if len(where) > 1 else "".join(where)
        )
        or NA,
        "StudyDivergedEpochs": " and ".join(epochs) or NA,
    }


def header_macros(runs, record: dict) -> dict[str, str]:
    """Where and from what the study came: machine, commit, time, runs, epochs and the multiple of quick's."""
    mach = record.get("machine") or {}
    cpu = " ".join(
        x
        for x in (
            mach.get("processor") or "an unrecorded processor",
            f"({mach['cpu_id']})" if mach.get("cpu_id") else "",
        )
        if x
    )
    span = record.get("span_seconds")
    epochs = max((int(r.config().get("num_epoch", 0) or 0) for r in kl_runs(runs)), default=0)
    quick = make_config("quick").num_epoch
    k = epochs / quick if quick else math.nan
    multiple = MULTIPLES.get(int(k), f"{int(k)} times") if k == int(k) and k >= 2 else f"{k:.1f} times"
    amp = any((r.summary().get("speed") or {}).get("amp") for r in runs)
    cfg = kl_runs(runs)[0].config() if kl_runs(runs) else {}
    weight, clip, gamma = (float(cfg.get(key, math.nan)) for key in ("kl_weight", "clip_grad", "gamma"))
    seeds = [len(rs) for s, rs in group(runs).items() if s in KL_STRATEGIES]
    return {
        "StudyMachine": tex_escape(cpu),
        "StudyCores": str(mach.get("cores", NA)),
        "StudyTorch": tex_escape(mach.get("torch", NA)),
        "StudyCommit": tex_escape(str(record.get("commit", NA))[:7]),
        "StudyMinutes": f"{span / 60:.0f}" if span else NA,
        "StudyRuns": str(len(runs)),
        "StudyEpochs": str(epochs),
        "StudyMultiple": multiple,
        "StudyPrecision": "bf16 autocast" if amp else "fp32",
        "StudySeeds": stats_range(seeds),
        "StudyLossCase": "lab" if weight == 1.0 else "other",
        "StudyKLWeight": f"{weight:.3g}",
        "StudyClip": f"{clip:g}" if clip > 0 else "0",
        "StudyLrFactor": f"{1 / gamma:g}" if gamma > 0 else NA,
    }


def stats_range(ns) -> str:
    ns = sorted(set(ns))
    return NA if not ns else str(ns[0]) if len(ns) == 1 else f"{ns[0]}--{ns[-1]}"


def ranking_macros(runs, quick_runs) -> dict[str, str]:
    """The lab's KL question (each annealed schedule against None) on the study's runs, on the score they
    recorded: the same test as the main comparisons, never the best schedule picked after the fact."""
    return question_macros(kl_runs(runs), LAB_QUESTIONS[:1], prefix="Study")


def _per_epoch(run: RunDir, col: str):
    """(1-based epochs, values) of an epoch-row column where it was recorded."""
    ep = run.epoch_metrics()
    if col not in ep or not len(ep):
        return np.array([]), np.array([])
    ep = ep.dropna(subset=[col])
    return ep["epoch"].to_numpy() + 1, ep[col].to_numpy(dtype=float)


def collapse_macros(runs) -> dict[str, str]:
    """Whether any latent unit became active at a validated epoch, per schedule from which epoch; the KL."""
    firsts, peak, seen = [], 0, False
    for s, rs in group(kl_runs(runs)).items():
        first = None
        for r in rs:
            ep, au = _per_epoch(r, "active_units")
            seen |= len(au) > 0
            if (au > 0).any():
                e = int(ep[np.argmax(au > 0)])
                first = e if first is None else min(first, e)
                peak = max(peak, int(au.max()))
        if first is not None:
            firsts.append(f"{display_name(s)} from epoch {first}")
    kl_last = [last_kl(r) for r in finished(kl_runs(runs))]
    kl_last = [v for v in kl_last if np.isfinite(v)]
    return {
        "StudyActiveCase": "unknown" if not seen else "some" if firsts else "never",
        "StudyActiveList": tex_escape("; ".join(firsts)) or NA,
        "StudyActiveMax": str(peak),
        "StudyKLMin": fmt(min(kl_last), 3) if kl_last else NA,
        "StudyKLMax": fmt(max(kl_last), 3) if kl_last else NA,
    }


def last_kl(run: RunDir) -> float:
    """The last epoch's mean KL per predicted frame (nats)."""
    kl = kl_per_frame(run)
    return float(kl.iloc[-1]) if len(kl) else math.nan


def mean_curve(rs) -> tuple[np.ndarray, np.ndarray]:
    """Validation PSNR per epoch, the mean over the seeds that validated at every one of those epochs."""
    curves = [dict(zip(*_per_epoch(r, "val_psnr"))) for r in rs]
    epochs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return np.array(epochs), np.array([np.mean([c[e] for c in curves]) for e in epochs])


def flat_epoch(epochs, curve, gain: float = GAIN_DB) -> int | None:
    """The first epoch after which the curve stays within ``gain`` dB of that epoch's value, up or down (a
    curve that falls and recovers has not flattened); None if only the last is."""
    for i in range(len(curve) - 1):
        if np.max(np.abs(curve[i + 1 :] - curve[i])) < gain:
            return int(epochs[i])
    return None


def flatten_macros(runs) -> dict[str, str]:
    """Where each schedule's mean validation curve flattens, and how many runs still gained in their last
    epoch."""
    parts, flat, n, gaining, losing, milestones = [], 0, 0, 0, 0, ()
    for s, rs in group(finished(kl_runs(runs))).items():
        milestones = tuple(rs[0].config().get("milestones") or ())
        epochs, curve = mean_curve(rs)
        if len(curve) < 2:
            continue
        n += 1
        e = flat_epoch(epochs, curve)
        flat += e is not None
        parts.append(
            f"{display_name(s)} "
            + (
                f"after epoch {e} ({curve[list(epochs).index(e)]:.1f}~dB)"
                if e is not None
                else "not before its last epoch"
            )
        )
        for r in rs:
            _, v = _per_epoch(r, "val_psnr")
            gaining += len(v) >= 2 and v[-1] - v[-2] > GAIN_DB
            losing += len(v) >= 2 and v[-2] - v[-1] > GAIN_DB
    case = "unknown" if not n else "all" if flat == n else "some" if flat else "none"
    return {
        "StudyFlatCase": case,
        "StudyFlatList": "; ".join(parts) or NA,
        "StudyGaining": str(gaining),
        "StudyLosing": str(losing),
        "StudyKLRuns": str(len(finished(kl_runs(runs)))),
        "StudyGainDB": f"{GAIN_DB:g}",
        "StudyMilestones": " and ".join(str(m) for m in milestones) or NA,
    }


def study_macros(runs, record: dict, quick_runs) -> dict[str, str]:
    """Every ``Study*`` macro of the longer-budget section (the three schedules of results/study/); only
    StudyCase without study runs."""
    if not runs:
        return {"StudyCase": "absent"}
    return {
        "StudyCase": "present",
        **header_macros(runs, record),
        **ranking_macros(runs, quick_runs),
        **collapse_macros(runs),
        **flatten_macros(runs),
        **diverged_macros(runs),
    }


def results_rows(runs) -> str | None:
    """The study's results table: its schedules' runs that finished, as the report's (None without study
    runs); a diverged run has no final numbers of its own."""
    return report_numbers.results_rows(finished(kl_runs(runs))) if runs else None
