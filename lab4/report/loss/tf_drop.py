"""What happens to the training loss when the teacher-forcing ratio falls, and whether the rollout pays for
the one-step loss: the report's evidence on the teacher-forcing question, as macros.

An epoch's mean loss hides the jump (epoch 1's mean carries the untrained first steps), so the jump is
measured where it happens: the mean loss of the ``DROP_WINDOW`` iterations after the ratio falls against
the ``DROP_WINDOW`` before. TF off trains through the same iterations with the same annealing and no change
of ratio, so its ratio over the same window is what the loss does anyway.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from lab4.report.format import NA, fmt
from lab4.report.stats import by_seed, interval_text, mean_std, seed_diff
from lab4.run.folder import RunDir, group

DROP_WINDOW = 25  # iterations on each side of the fall
DECAY, OFF = "cyclical", "tf-off"  # the decaying ratio and its comparison share cyclical annealing
CASES = {
    "TFDropCase": ("measured", "nodrop"),  # does any run's ratio fall
    "TFJumpVsOffCase": ("higher", "lower", "notdist", "untested", "missing"),  # the jump, paired by seed
    "ExposureCase": ("bias", "means", "none", "unknown"),  # the worst one step with the best rollout
}


def drop_epoch(run: RunDir) -> int | None:
    """The first 0-based epoch whose teacher-forcing ratio is below the previous epoch's."""
    it = run.iter_metrics()
    if "tfr" not in it or not len(it):
        return None
    tfr = it.groupby("epoch")["tfr"].first()
    return next((int(e) for prev, e in zip(tfr.index, tfr.index[1:]) if tfr[e] < tfr[prev] - 1e-12), None)


def loss_jump(run: RunDir, epoch: int, window: int = DROP_WINDOW) -> float:
    """Mean loss of the first ``window`` iterations of ``epoch`` over that of the ``window`` before it."""
    it = run.iter_metrics()
    if "loss" not in it or not len(it):
        return math.nan
    loss = pd.to_numeric(it["loss"], errors="coerce")
    before, after = loss[it["epoch"] == epoch - 1].tail(window), loss[it["epoch"] == epoch].head(window)
    if before.empty or after.empty or not np.isfinite(before.mean()) or before.mean() <= 0:
        return math.nan
    return float(after.mean() / before.mean())


def tf_drop_macros(runs) -> dict[str, str]:
    """The loss jump where the ratio falls, in the runs whose ratio decays and in TF off at the same epoch,
    and the decaying ratio (with cyclical annealing) against TF off on its logarithm, paired by seed."""
    drops = {r.name: e for r in runs if (e := drop_epoch(r)) is not None}
    m = {"TFDropWindow": str(DROP_WINDOW)}
    if not drops:
        return {**m, "TFDropCase": "nodrop", "TFJumpVsOffCase": "missing", "TFJumpVsOffTest": NA}
    epoch = Counter(drops.values()).most_common(1)[0][0]
    decaying = [r for r in runs if drops.get(r.name) == epoch]
    ratio = decaying[0].iter_metrics().groupby("epoch")["tfr"].first()
    jumps = [j for r in decaying if np.isfinite(j := loss_jump(r, epoch))]
    m |= {
        "TFDropCase": "measured",
        "TFDropEpoch": str(epoch + 1),  # 1-based, as the report counts epochs
        "TFDropFrom": f"{float(ratio[epoch - 1]):g}",
        "TFDropTo": f"{float(ratio[epoch]):g}",
        "TFJumpRuns": str(len(jumps)),
        "TFJumpRange": _span(jumps),
    }
    by = group(runs)
    off = [j for r in by.get(OFF, []) if np.isfinite(j := loss_jump(r, epoch))]
    m["TFOffJumpRange"] = _span(off)
    logs = {
        s: by_seed([r for r in by.get(s, []) if s == OFF or drops.get(r.name) == epoch], _log_jump(epoch))
        for s in (DECAY, OFF)
    }
    if not logs[DECAY] or not logs[OFF]:
        return {**m, "TFJumpVsOffCase": "missing", "TFJumpVsOffTest": NA}
    iv = seed_diff(logs[DECAY], logs[OFF])
    verdict = "untested" if iv is None else {"above": "higher", "below": "lower"}.get(iv.verdict, "notdist")
    return {
        **m,
        "TFJumpVsOffCase": verdict,
        "TFJumpVsOffTest": interval_text(iv, " decades", 2) if iv else NA,
    }


def _span(values: list[float]) -> str:
    """The smallest and the largest ratio, two decimals each ("1.89--9.91"; one run: "2.15")."""
    if not values:
        return NA
    lo, hi = f"{min(values):.2f}", f"{max(values):.2f}"
    return lo if lo == hi else f"{lo}--{hi}"


def _log_jump(epoch: int):
    return lambda r: math.log10(j) if np.isfinite(j := loss_jump(r, epoch)) and j > 0 else math.nan


def exposure_macros(runs) -> dict[str, str]:
    """Exposure bias in the numbers: TF off with the lowest mean one-step PSNR and the highest mean rollout
    PSNR of all strategies ("bias" where its one-step PSNR is also lower than Cyclical's over the seeds both
    ran, "means" where only the means say so)."""
    by = group(runs)
    means = {
        s: (
            mean_std([r.number("one_step_psnr") for r in rs]).mean,
            mean_std([r.number("mean_psnr") for r in rs]).mean,
        )
        for s, rs in by.items()
    }
    means = {s: v for s, v in means.items() if all(np.isfinite(v))}
    m = {"TFOffOneStepTest": NA}
    if OFF not in means or len(means) < 2:
        return {**m, "ExposureCase": "unknown", "TFOffOneStep": NA, "TFOffRollout": NA}
    pattern = min(means, key=lambda s: means[s][0]) == OFF == max(means, key=lambda s: means[s][1])
    one_step = {s: by_seed(by.get(s, []), lambda r: r.number("one_step_psnr")) for s in (OFF, DECAY)}
    iv = seed_diff(one_step[OFF], one_step[DECAY]) if all(one_step.values()) else None
    if iv is not None:
        m["TFOffOneStepTest"] = interval_text(iv)
    case = "none" if not pattern else "bias" if iv is not None and iv.verdict == "below" else "means"
    return {
        **m,
        "ExposureCase": case,
        "TFOffOneStep": fmt(means[OFF][0], 2),
        "TFOffRollout": fmt(means[OFF][1], 2),
    }
