"""The loss-balance paragraph: the KL schedules trained on the lab's loss (the KL summed, weight 1) in the
lab-loss screen (results/labloss-screen/, read by screen_record.py) against the same schedules and seeds in
the grid, whose loss averages the KL over the latent elements. Its macros go to their own file
(generated/lossbalance.tex), so that the paragraph says it has no screen to compare where there is none.
"""

from __future__ import annotations

import math

import numpy as np

from lab4.report.comparisons.questions import QUESTION_CASES, scores_macros
from lab4.report.comparisons.scores import LAB, NAMES
from lab4.report.format import NA, big, display_name, tex_escape
from lab4.report.stats import by_seed, holm_family, interval_text, mean_std, seed_diff
from lab4.run.folder import group
from lab4.run.questions import LAB_QUESTIONS
from lab4.schedules import KL_STRATEGIES

CASES = {
    "LossBalanceCase": ("measured", "absent"),
    "LabLossKLCase": QUESTION_CASES,  # the KL question on the lab-loss screen
    "LossBalancePrecisionCase": ("same", "differs", "unknown"),
}
MODEL_DIMS = {"F_dim", "L_dim", "N_dim", "D_out_dim", "frame_H", "frame_W"}
SETTING_PHRASES = {
    "clip_grad": "a gradient-norm clip at {} instead of the lab's 1",
    "lr": "a learning rate of {}",
    "amp": "bf16 autocast {}",
    "train_vi_len": "{}-frame clips",
}


def lab_loss_setting(screen: list[dict]) -> str | None:
    """The screened lab-loss setting the report compares: of those on the grid's model with at least two seeds
    of every KL schedule and no failed run, the one with the highest mean validation PSNR (None: no such
    one)."""
    tags = {}
    for rec in screen:  # the lab's loss on the grid's model: pairs by seed share the initial weights
        over = rec.get("over", {})
        if over.get("kl_weight") == 1.0 and rec["strategy"] in KL_STRATEGIES and not set(over) & MODEL_DIMS:
            tags.setdefault(rec["tag"], []).append(rec)
    ok = {
        t: rs
        for t, rs in tags.items()
        if all(r.get("err") is None and r.get("psnr") is not None for r in rs)
        and all(len({r["seed"] for r in rs if r["strategy"] == s}) >= 2 for s in KL_STRATEGIES)
    }
    return max(ok, key=lambda t: np.mean([r["psnr"] for r in ok[t]])) if ok else None


def loss_balance_macros(runs, screen: list[dict]) -> dict[str, str]:
    """The KL schedules on the lab's loss (the KL summed, weight 1) against the same schedules and seeds in
    the grid (the KL as a mean): validation PSNR of the first z draw (what the screen measured), final KL,
    active units, the rank among the schedules on the lab's loss, and the paired test of the loss change per
    schedule."""
    tag = lab_loss_setting(screen)
    m = {"LossBalanceCase": "measured" if tag else "absent"}
    if not tag:
        return m
    recs = [r for r in screen if r["tag"] == tag and r["strategy"] in KL_STRATEGIES]
    g = group(runs)
    over = {k: v for k, v in recs[0]["over"].items() if k not in ("kl_weight", "seed")}
    m["LossBalanceSetting"] = tex_escape(
        ", ".join(
            SETTING_PHRASES.get(k, k + " {}").format(f"{v:g}" if isinstance(v, float) else v)
            for k, v in over.items()
        )
        or "nothing"
    )
    lab = {s: {r["seed"]: r["psnr"] for r in recs if r["strategy"] == s} for s in KL_STRATEGIES}
    mean_kl = {
        s: by_seed(
            g.get(s, []), lambda r: float(r.psnr()["psnr"].mean()) if r.psnr() is not None else math.nan
        )
        for s in KL_STRATEGIES
    }
    frames = max(1, int(recs[0]["over"].get("train_vi_len", 4)) - 1)  # the quick profile's 4-frame clips
    for s in KL_STRATEGIES:
        mine = [r for r in recs if r["strategy"] == s]
        m[f"LabLoss{display_name(s)}PSNR"] = mean_std(list(lab[s].values())).text()
        m[f"LabLoss{display_name(s)}KL"] = big(
            mean_std([r.get("final_kl", math.nan) / frames for r in mine]).mean
        )
    m["LabLossSeeds"] = str(min(len(v) for v in lab.values()))
    m["LabLossRuns"] = str(len(recs))
    m["LabLossActiveMax"] = str(max(int(r.get("active_units") or 0) for r in recs))
    base = mean_std([r.number("baseline_mean_psnr") for r in runs]).mean
    m["LabLossAboveBaseline"] = str(sum(r["psnr"] > base for r in recs)) if np.isfinite(base) else NA
    m.update(scores_macros({s: v for s, v in lab.items() if v}, LAB_QUESTIONS[:1], "LabLoss", NAMES[LAB]))
    tests = holm_family([seed_diff(mean_kl[s], lab[s]) if mean_kl[s] else None for s in KL_STRATEGIES])
    m["LossBalanceTests"] = (
        "; ".join(
            f"{display_name(s)} {interval_text(iv)}" for s, iv in zip(KL_STRATEGIES, tests) if iv is not None
        )
        or NA
    )
    m["LossBalanceBetterCount"] = str(sum(iv is not None and iv.verdict == "above" for iv in tests))
    screen_amp = {r.get("amp") for r in recs}
    grid_amp = {
        bool((r.summary().get("speed") or {}).get("amp")) for s in KL_STRATEGIES for r in g.get(s, [])
    }
    m["LossBalancePrecisionCase"] = (
        "unknown"
        if None in screen_amp or len(screen_amp | grid_amp) > 2 or not grid_amp
        else "same"
        if screen_amp == grid_amp
        else "differs"
    )
    m["LossBalanceScreenPrecision"] = (
        "bf16" if screen_amp == {True} else "fp32" if screen_amp == {False} else NA
    )
    m["LossBalanceGridPrecision"] = "bf16" if grid_amp == {True} else "fp32" if grid_amp == {False} else NA
    return m
