"""The bonus section's numbers ("other training strategies", report/bonus.tex): free bits, a beta ceiling,
and z = 0 at test time, each against the lab's cyclical annealing at the same budget and seeds.

As in lab4.report.numbers, Python writes numbers and *case* macros only; report/bonus.tex holds every
sentence and picks the one a case macro names. CASES lists every value each case macro can take, and
tests/test_bonus.py checks that bonus.tex has a sentence for each. A run's bonus strategy is read from its
config (``free_bits`` > 0, else ``kl_beta_max`` < 1), not from its name; the reference is the ``cyclical``
strategy. Its macros go to generated/bonus.tex and its table's rows to generated/bonus_rows.tex
(lab4.report.sections).
"""

from __future__ import annotations

import math

import numpy as np

from lab4.report.format import NA, big, fmt, signed, tex_escape
from lab4.report.loss.dynamics import active_units_of, kl_per_frame
from lab4.report.stats import by_seed, interval_text, mean_std, seed_diff, values
from lab4.run.folder import RunDir, group

REFERENCE = "cyclical"
SAME_DB = 0.1  # two mean PSNRs closer than this (or than their seed spread) are "the same"
ZERO_Z_DB = 0.05  # z = 0 and z ~ N(0, I) closer than this on a run are "the same"
FLOOR_AT = 0.1  # a final KL within 10% of the free-bits floor is "at" it
KINDS = ("FreeBits", "BetaMax")  # macro prefixes: Bonus<Kind>...
CASES = {
    "BonusFreeBitsCase": ("better", "worse", "same", "none"),  # val PSNR against the cyclical reference
    "BonusBetaMaxCase": ("better", "worse", "same", "none"),
    "BonusFreeBitsCollapseCase": ("active", "collapsed", "unknown"),  # any active latent unit at the end
    "BonusBetaMaxCollapseCase": ("active", "collapsed", "unknown"),
    "BonusRefCollapseCase": ("active", "collapsed", "unknown"),
    "BonusFreeBitsFloorCase": ("below", "at", "above", "unknown"),  # final KL per frame against the floor
    "BonusSeedCase": ("one", "several", "mixed", "none"),  # runs per compared strategy
    "BonusZeroZCase": ("higher", "lower", "same", "mixed", "none"),  # z = 0 against z ~ N(0, I), every run
}


def _units(x) -> str:
    """A mean count of active units: whole where it is one, else one decimal (0.3 must not print as 0)."""
    return NA if x is None or not np.isfinite(x) else f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


# -- per run ------------------------------------------------------------------------------------
def kind_of(run: RunDir) -> str | None:
    """The run's bonus strategy from its config: FreeBits, BetaMax, or None (the lab's loss)."""
    if float(run.config().get("free_bits", 0) or 0) > 0:
        return "FreeBits"
    if float(run.config().get("kl_beta_max", 1) or 1) < 1:
        return "BetaMax"
    return None


def setting_of(run: RunDir, kind: str) -> float:
    return float(run.config().get("free_bits" if kind == "FreeBits" else "kl_beta_max", math.nan))


def psnr_z0(run: RunDir) -> float:
    """Validation PSNR of the z = 0 rollout: summary.json, else val_summary.json, else NaN."""
    return run.number("mean_psnr_z0")


def final_kl(run: RunDir) -> float:
    """KL per predicted frame (nats) in the run's last epoch: the true KL, never the floored one."""
    kl = kl_per_frame(run)
    return float(kl.iloc[-1]) if len(kl) else math.nan


def stats(rs: list[RunDir]) -> dict:
    """A strategy's runs -> mean val PSNR (and its std over seeds), final KL per frame, active units, z =
    0."""
    psnr = mean_std([r.number("mean_psnr") for r in rs])
    return dict(
        n=len(rs),
        values=by_seed(rs, lambda r: r.number("mean_psnr")),
        psnr=psnr.mean,
        std=psnr.std,
        kl=mean_std([final_kl(r) for r in rs]).mean,
        active=mean_std([active_units_of(r) for r in rs]).mean,
        z0=mean_std([psnr_z0(r) for r in rs]).mean,
    )


# -- verdicts -----------------------------------------------------------------------------------
def compare_case(s: dict | None, ref: dict | None) -> str:
    """better / worse / same / none, for mean val PSNR: by the report's test over seeds (lab4.report.stats
    .seed_diff: paired by seed, else Welch; "same" = no difference at the 5% level) when both sides have two
    seeds or more, else within SAME_DB or the larger seed std."""
    if not s or not ref or not np.isfinite(s["psnr"]) or not np.isfinite(ref["psnr"]):
        return "none"
    iv = seed_diff(s["values"], ref["values"])
    if iv is not None:
        return {"above": "better", "below": "worse", "spans": "same"}[iv.verdict]
    tol = max([SAME_DB] + [x for x in (s["std"], ref["std"]) if np.isfinite(x)])
    d = s["psnr"] - ref["psnr"]
    return "same" if abs(d) <= tol else "better" if d > 0 else "worse"


def reference_test(s: dict | None, ref: dict | None) -> str:
    """The test of ``s`` against the reference (paired by seed, else Welch) as the sentence quotes it after
    the difference, or "not tested" below two seeds on a side."""
    iv = seed_diff(s["values"], ref["values"]) if s and ref else None
    return "not tested" if iv is None else interval_text(iv, unit=" dB", spelled=True)


def collapse_case(s: dict | None) -> str:
    if not s or not np.isfinite(s["active"]):
        return "unknown"
    return "active" if s["active"] > 0 else "collapsed"


def floor_case(kl: float, floor: float) -> str:
    if not (np.isfinite(kl) and np.isfinite(floor)) or floor <= 0:
        return "unknown"
    return "at" if abs(kl - floor) <= FLOOR_AT * floor else "below" if kl < floor else "above"


def zero_z_case(diffs) -> str:
    """Per-run z=0 minus z~N PSNR -> higher / lower (every run that differs, the same way) / same / mixed."""
    d = [x for x in diffs if np.isfinite(x)]
    if not d:
        return "none"
    up, down = sum(x > ZERO_Z_DB for x in d), sum(x < -ZERO_Z_DB for x in d)
    return "same" if not up and not down else "mixed" if up and down else "higher" if up else "lower"


# -- macros and table rows ----------------------------------------------------------------------
def bonus_strategies(runs) -> dict[str, list[tuple[str, list[RunDir]]]]:
    """{kind: [(strategy, runs)]}, most runs first, then by name; a strategy's kind is its first run's."""
    out: dict[str, list] = {k: [] for k in KINDS}
    for s, rs in group(runs).items():
        k = kind_of(rs[0])
        if k:
            out[k].append((s, rs))
    return {k: sorted(v, key=lambda sr: (-len(sr[1]), sr[0])) for k, v in out.items()}


def bonus_macros(runs) -> dict[str, str]:
    g = group(runs)
    ref = stats(g[REFERENCE]) if REFERENCE in g else None
    m = {
        "BonusRefPSNR": fmt(ref["psnr"]) if ref else NA,
        "BonusRefSeeds": str(ref["n"]) if ref else "0",
        "BonusRefKL": big(ref["kl"]) if ref else NA,
        "BonusRefActive": _units(ref["active"]) if ref else NA,
        "BonusRefCollapseCase": collapse_case(ref),
        "BonusSameDB": f"{SAME_DB:g}",
        "BonusZeroZTol": f"{ZERO_Z_DB:g}",
    }
    counts = [ref["n"]] if ref else []
    for kind, strategies in bonus_strategies(runs).items():
        s = stats(strategies[0][1]) if strategies else None
        setting = setting_of(strategies[0][1][0], kind) if strategies else math.nan
        counts += [s["n"]] if s else []
        m.update(
            {
                f"Bonus{kind}Name": tex_escape(strategies[0][0]) if s else NA,
                f"Bonus{kind}Setting": f"{setting:g}" if np.isfinite(setting) else NA,
                f"Bonus{kind}Seeds": str(s["n"]) if s else "0",
                f"Bonus{kind}PSNR": fmt(s["psnr"]) if s else NA,
                f"Bonus{kind}Delta": signed(s["psnr"] - ref["psnr"], plus="+") if s and ref else NA,
                f"Bonus{kind}KL": big(s["kl"]) if s else NA,
                f"Bonus{kind}Active": _units(s["active"]) if s else NA,
                f"Bonus{kind}Interval": reference_test(s, ref),
                f"Bonus{kind}Case": compare_case(s, ref),
                f"Bonus{kind}CollapseCase": collapse_case(s),
            }
        )
        if kind == "FreeBits":
            n_dim = int(strategies[0][1][0].config().get("N_dim", 12)) if strategies else 0
            floor = setting * n_dim if strategies else math.nan  # nats per frame: the floor of every channel
            m["BonusFreeBitsFloorFrame"] = fmt(floor, 1)
            m["BonusFreeBitsFloorCase"] = floor_case(s["kl"] if s else math.nan, floor)
    m["BonusSeedCase"] = (
        "none" if not counts else "one" if max(counts) == 1 else "several" if min(counts) > 1 else "mixed"
    )
    diffs = [psnr_z0(r) - r.number("mean_psnr") for r in runs]
    fin = [d for d in diffs if np.isfinite(d)]
    m.update(
        {
            "BonusZeroZRuns": str(len(fin)),
            "BonusZeroZHigher": str(sum(d > ZERO_Z_DB for d in fin)),
            "BonusZeroZLower": str(sum(d < -ZERO_Z_DB for d in fin)),
            "BonusZeroZMeanDiff": signed(mean_std(fin).mean, plus="+"),
            "BonusZeroZMaxAbs": fmt(max(map(abs, fin)) if fin else math.nan),
            "BonusZeroZCase": zero_z_case(fin),
        }
    )
    return m


def bonus_rows(runs) -> str:
    """One table row per compared strategy: the reference, then every bonus strategy."""
    g = group(runs)
    rows = [(REFERENCE, "lab's loss", g[REFERENCE])] if REFERENCE in g else []
    for kind, strategies in bonus_strategies(runs).items():
        for s, rs in strategies:
            v = setting_of(rs[0], kind)
            rows.append(
                (s, (r"free bits $\lambda=" if kind == "FreeBits" else r"$\beta_{\max}=") + f"{v:g}$", rs)
            )
    lines = []
    for s, setting, rs in rows:
        st = stats(rs)
        lines.append(
            f"{tex_escape(s)} & {setting} & {st['n']} & {mean_std(values(st['values'])).text(none=NA)} & "
            f"{big(st['kl'])} & {_units(st['active'])} & "
            f"{fmt(st['z0'])} \\\\"
        )
    return "\n".join(lines) + ("\n" if lines else "")
