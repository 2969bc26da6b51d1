"""What the training logs say, as report macros: convergence, MSE and KL, the KL's share, collapse.

As in lab4.report.numbers, every function here is ``runs -> {macro name: text}`` and writes numbers and
case macros only; report/main.tex has a sentence for every value in CASES. Each verdict is measured on
the runs' own metrics.csv and summary.json, so that the report's explanation of a curve is the one its
numbers support.

Units: metrics.csv's ``kl`` is the lab's KL, summed over the N x H x W latent elements of a frame,
averaged over the batch and summed over the clip's T-1 predicted frames (model.clip_loss); dividing by
T-1 gives nats per frame, and by N*H*W more, nats per latent element.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lab4.evaluate import ACTIVE_VARIANCE
from lab4.report.format import NA, big, display_name, fmt, signed, tex_escape
from lab4.report.stats import by_seed, holm_family, interval_text, mean_std, seed_diff
from lab4.run.folder import RunDir, group
from lab4.schedules import KL_STRATEGIES

ACTIVE_THRESHOLD = ACTIVE_VARIANCE  # the threshold behind summary.json's active_units
GAIN_TOLERANCE_DB = 0.5  # a last-epoch change of validation PSNR within this is "flat"
ANNEALED = ("monotonic", "cyclical")
AGAINST = ("higher", "lower", "notdist", "untested", "missing")
CASES = {
    "ConvergenceCase": ("flat", "rising", "falling", "mixed", "unknown"),  # val PSNR over the last epoch
    "LowestMSECase": ("annealed", "constant", "unknown"),  # lowest final MSE: an annealed strategy or None
    "HighestKLCase": ("annealed", "constant", "unknown"),  # highest final KL: an annealed strategy or None
    "CollapseCase": ("all", "annealed", "constant", "unknown"),  # active latent units against annealing
    "KLShareCase": (
        "small",
        "large",
        "unknown",
    ),  # is the weighted KL a small share of the loss after epoch 1
    # each annealed schedule against None on the final MSE, KL and active units, over seeds with Holm across
    # the two: the KL question's design (lab4.run.questions), not the winner against the best of the rest
    **{f"{display_name(a)}{k}VsNoneCase": AGAINST for a in ANNEALED for k in ("MSE", "KL", "Units")},
}


# -- units ------------------------------------------------------------------------------------
def frames_per_clip(run: RunDir) -> int:
    """The T-1 predicted frames that metrics.csv's mse and kl are summed over."""
    return max(1, int(run.config().get("train_vi_len", 16)) - 1)


def latent_units(run: RunDir) -> int:
    """N x H x W: the latent elements of one frame (the lab's latent is a full-resolution map)."""
    c = run.config()
    return int(c.get("N_dim", 12)) * int(c.get("frame_H", 32)) * int(c.get("frame_W", 64))


def kl_per_frame(run: RunDir) -> pd.Series:
    """Mean KL per predicted frame (nats) in each epoch, indexed by 1-based epoch."""
    ep = run.epoch_metrics()
    if "kl" not in ep or not len(ep):
        return pd.Series(dtype=float)
    return pd.Series(
        pd.to_numeric(ep["kl"], errors="coerce").to_numpy() / frames_per_clip(run),
        index=ep["epoch"].to_numpy() + 1,
        name=run.name,
    )


def active_units_of(run: RunDir) -> float:
    """Active latent units from summary.json, else val_summary.json (evaluate.active_units), else NaN."""
    return run.number("active_units")


# -- per strategy, last epoch -------------------------------------------------------------------
def _final(run: RunDir, col: str) -> float:
    ep = run.epoch_metrics()
    if col not in ep or not len(ep):
        return math.nan
    v = pd.to_numeric(ep[col], errors="coerce").dropna()
    return float(v.iloc[-1]) if len(v) else math.nan


def _mean(values) -> float:
    return mean_std(values).mean


def _kl_groups(runs):
    return {s: rs for s, rs in group(runs).items() if s in KL_STRATEGIES}


def mse_kl_macros(runs) -> dict[str, str]:
    """Which KL strategy ends with the lowest training MSE and the highest KL (means over seeds)."""
    g = _kl_groups(runs)
    mse = {s: _mean([_final(r, "mse") / frames_per_clip(r) for r in rs]) for s, rs in g.items()}
    kl = {
        s: _mean([kl_per_frame(r).iloc[-1] if len(kl_per_frame(r)) else math.nan for r in rs])
        for s, rs in g.items()
    }
    m = {"FramesPerClip": str(frames_per_clip(runs[0])) if runs else NA}
    for s in KL_STRATEGIES:
        m[f"{display_name(s)}FinalMSE"] = fmt(mse.get(s, math.nan), 4)
        m[f"{display_name(s)}FinalKL"] = big(kl.get(s, math.nan))

    def final_kl(r):
        return kl_per_frame(r).iloc[-1] if len(kl_per_frame(r)) else math.nan

    for key, vals, pick, case in (
        ("LowestMSE", mse, min, "LowestMSECase"),
        ("HighestKL", kl, max, "HighestKLCase"),
    ):
        ok = {s: v for s, v in vals.items() if np.isfinite(v)}
        if "none" not in ok or len(ok) < 2:
            m.update({f"{key}Strategy": NA, case: "unknown"})
            continue
        best = pick(ok, key=ok.get)
        best = "none" if ok["none"] == ok[best] else best  # a tie: annealing did no better
        m[f"{key}Strategy"] = tex_escape(display_name(best))
        m[case] = "constant" if best == "none" else "annealed"
    # an MSE per frame is ~1e-3 and its differences ~1e-5: six decimals, or they print as 0.0000
    m.update(
        against_none(
            {s: by_seed(rs, lambda r: _final(r, "mse") / frames_per_clip(r)) for s, rs in g.items()},
            "MSE",
            "",
            6,
        )
    )
    m.update(against_none({s: by_seed(rs, final_kl) for s, rs in g.items()}, "KL", "~nats", 2))
    return m


def collapse_macros(runs) -> dict[str, str]:
    """KL per frame at the start and end of training, and active latent units per KL strategy."""
    g = _kl_groups(runs)
    firsts = [kl_per_frame(r).iloc[0] for r in runs if len(kl_per_frame(r))]
    lasts = [kl_per_frame(r).iloc[-1] for r in runs if len(kl_per_frame(r))]
    units = {latent_units(r) for r in runs}
    m = {
        "LatentUnits": big(units.pop()) if len(units) == 1 else NA,
        "FirstKLMin": big(min(firsts)) if firsts else NA,
        "FirstKLMax": big(max(firsts)) if firsts else NA,
        "FinalKLMin": big(min(lasts)) if lasts else NA,
        "FinalKLMax": big(max(lasts)) if lasts else NA,
        "ActiveThreshold": f"{ACTIVE_THRESHOLD:g}",
    }
    au = {s: [active_units_of(r) for r in rs] for s, rs in g.items()}
    for s in KL_STRATEGIES:
        v = _mean(au.get(s, []))
        m[f"{display_name(s)}ActiveUnits"] = (
            NA if not np.isfinite(v) else f"{v:.0f}" if v == round(v) else f"{v:.1f}"
        )
    every = [active_units_of(r) for r in runs]
    known = [v for v in every if np.isfinite(v)]
    m["ActiveRunCount"] = str(len(known))
    fr = [v / latent_units(r) for v, r in zip(every, runs) if np.isfinite(v)]
    m["MaxActivePct"] = fmt(100 * max(fr), 1) if fr else NA
    annealed = [_mean(au[s]) for s in ("monotonic", "cyclical") if s in au]
    annealed = [v for v in annealed if np.isfinite(v)]
    none = _mean(au.get("none", []))
    if known and not all(v == 0 for v in known):
        m.update(against_none({s: by_seed(rs, active_units_of) for s, rs in g.items()}, "Units", "~units", 1))
    else:  # no unit anywhere: nothing to test
        m.update(against_none({}, "Units", "~units", 1))
    if not known:
        m["CollapseCase"] = "unknown"
    elif all(v == 0 for v in known):
        m["CollapseCase"] = "all"
    elif not annealed or not np.isfinite(none):
        m["CollapseCase"] = "unknown"
    else:
        m["CollapseCase"] = "annealed" if max(annealed) > none else "constant"
    return m


# -- over the epochs ----------------------------------------------------------------------------
def convergence_macros(runs, tol: float = GAIN_TOLERANCE_DB) -> dict[str, str]:
    """The change of validation PSNR over the last validated epoch of each run: still rising, or flat."""
    gains = [last_epoch_gain(r) for r in runs]
    gains = [x for x in gains if np.isfinite(x)]
    m = {
        "GainTolerance": f"{tol:g}",
        "GainRunCount": str(len(gains)),
        "GainRisingCount": str(sum(x > tol for x in gains)),
        "GainFallingCount": str(sum(x < -tol for x in gains)),
    }
    if not gains:
        return {**m, "MinLastGain": NA, "MaxLastGain": NA, "ConvergenceCase": "unknown"}
    up, down = any(x > tol for x in gains), any(x < -tol for x in gains)
    case = "mixed" if up and down else "rising" if up else "falling" if down else "flat"
    return {
        **m,
        "MinLastGain": signed(min(gains)),
        "MaxLastGain": signed(max(gains)),
        "ConvergenceCase": case,
    }


def last_epoch_gain(run: RunDir) -> float:
    """Validation PSNR after the last validated epoch minus after the one before (NaN with fewer than two)."""
    ep = run.epoch_metrics()
    if "val_psnr" not in ep:
        return math.nan
    v = pd.to_numeric(ep["val_psnr"], errors="coerce").dropna()
    return float(v.iloc[-1] - v.iloc[-2]) if len(v) >= 2 else math.nan


SMALL_SHARE = 0.05  # a weighted KL below this share of the loss leaves the loss curve the MSE curve


def kl_share(run: RunDir, first: bool) -> float:
    """The weighted KL's mean share of the loss, (loss - MSE) / loss, over the first epoch or the rest."""
    it = run.iter_metrics()
    if not {"loss", "mse", "epoch"} <= set(it) or not len(it):
        return math.nan
    part = it[(it["epoch"] == 0) if first else (it["epoch"] > 0)]
    loss, mse = (pd.to_numeric(part[c], errors="coerce") for c in ("loss", "mse"))
    share = ((loss - mse) / loss).replace([np.inf, -np.inf], np.nan).dropna()
    return float(share.mean()) if len(share) else math.nan


def kl_share_macros(runs) -> dict[str, str]:
    """How much of the loss the weighted KL is: the largest run's mean share in epoch 1 and after it."""
    first = [v for r in runs if np.isfinite(v := kl_share(r, True))]
    late = [v for r in runs if np.isfinite(v := kl_share(r, False))]
    if not late:
        return {"KLShareCase": "unknown", "KLShareFirstPct": NA, "KLShareLatePct": NA}
    return {
        "KLShareCase": "small" if max(late) < SMALL_SHARE else "large",
        "KLShareFirstPct": f"{100 * max(first):.1f}" if first else NA,
        "KLShareLatePct": f"{100 * max(late):.1f}",
    }


def against_none(per_seed: dict[str, dict], key: str, unit: str, digits: int) -> dict[str, str]:
    """Each annealed schedule against None on one measure (``{schedule: {seed: value}}``), paired over shared
    seeds with Holm across the two: ``<Schedule><key>VsNoneCase`` and ``...Test``."""
    ref = per_seed.get("none") or {}
    ivs = holm_family([seed_diff(per_seed[a], ref) if per_seed.get(a) and ref else None for a in ANNEALED])
    m = {}
    for a, iv in zip(ANNEALED, ivs):
        s = display_name(a)
        m[f"{s}{key}VsNoneCase"] = (
            "missing"
            if not per_seed.get(a) or not ref
            else "untested"
            if iv is None
            else {"above": "higher", "below": "lower"}.get(iv.verdict, "notdist")
        )
        m[f"{s}{key}VsNoneTest"] = interval_text(iv, unit, digits) if iv is not None else NA
    return m
