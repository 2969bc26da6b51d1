"""The mechanism's report macros: numbers and case macros only, every name prefixed ``Mech``; report/main.tex
holds the sentences and picks among them by the cases in CASES.

Per schedule S (None, Monotonic, Cyclical) and measure M (KLSteps, Clipped, PeakGrad, MSE): ``MechSM`` the
mean over seeds, ``MechSMMin`` / ``MechSMMax`` the range; ``MechSRuns``, ``MechSDiverged``, ``MechSCrossed``
(runs whose KL fell below the threshold) and ``MechSBetaMin`` / ``MechSBetaMax`` (beta when it did). Per
annealed schedule A against None and measure M (Diverged too): ``MechAMTest`` (the report's interval text),
``MechAMCase`` and ``MechAMDetect`` (the smallest difference the design finds with 80% power), and
``MechAPeakGradFactor``, the factor between the peaks that the test's difference of log10s is.
"""

from __future__ import annotations

import math

import numpy as np

from lab4.report.format import NA, check_cases, display_name, fmt, range_text
from lab4.report.mechanism.measures import KL_NATS, QUESTION, TESTED, Mechanism, by_schedule, tests
from lab4.report.stats import Interval, detectable, interval_text
from lab4.schedules import ramp_epochs

VERDICTS = ("higher", "lower", "notdist", "untested", "missing")  # the annealed schedule against None
CASES = {
    "MechCase": ("present", "absent"),
    "MechCrossCase": ("all", "some", "none", "unknown"),  # runs whose KL fell below KL_NATS in the run
    "MechDivergedCase": ("none", "some"),
    # what the tests add up to: the peak gradient lower under both annealed schedules with (steps) or
    # without (gradient) the steps to collapse not distinguishable; some other difference; none at all
    "MechStoryCase": ("steps", "gradient", "mixed", "none"),
    **{f"Mech{display_name(a)}{k}Case": VERDICTS for a in QUESTION.compare for k in TESTED},
}
# how each measure prints: digits of its mean, and the unit and digits of its test's difference
SHOWN = {
    "KLSteps": (1, "~steps", 1),
    "Clipped": (2, "", 2),
    "PeakGrad": (None, "~decades", 2),  # the mean in scientific notation; the test on log10
    "MSE": (4, "", 4),
    "Diverged": (2, "", 2),
}


def sci(x: float, digits: int = 2) -> str:
    """1.4e9 -> '$1.4 \\times 10^{9}$': a number that spans decades, as the PDF prints it."""
    if x is None or not math.isfinite(x):
        return NA
    if x == 0:
        return "0"
    e = math.floor(math.log10(abs(x)))
    m = round(x / 10**e, digits - 1)
    if abs(m) >= 10:
        m, e = m / 10, e + 1
    return f"${m:.{digits - 1}f}$" if e == 0 else f"${m:.{digits - 1}f} \\times 10^{{{e}}}$"


def _shown(key: str, v: float) -> str:
    if key == "KLSteps" and math.isfinite(v) and v == round(v):
        return f"{v:.0f}"
    digits = SHOWN[key][0]
    return sci(v) if digits is None else fmt(v, digits)


def _values(ms: list[Mechanism], field: str) -> np.ndarray:
    v = np.asarray([float(getattr(m, field)) for m in ms], dtype=float)
    return v[np.isfinite(v)]


def schedule_macros(name: str, ms: list[Mechanism]) -> dict[str, str]:
    """One schedule's means and ranges over its seeds."""
    s = display_name(name)
    m = {
        f"Mech{s}Runs": str(len(ms)),
        f"Mech{s}Diverged": str(sum(x.diverged for x in ms)),
        f"Mech{s}Crossed": str(sum(math.isfinite(x.kl_steps) for x in ms)),
    }
    for key, (field, _) in TESTED.items():
        if key == "Diverged":
            continue
        v = _values(ms, field)
        m[f"Mech{s}{key}"] = _shown(key, float(v.mean())) if len(v) else NA
        m[f"Mech{s}{key}Min"] = _shown(key, float(v.min())) if len(v) else NA
        m[f"Mech{s}{key}Max"] = _shown(key, float(v.max())) if len(v) else NA
    beta = _values(ms, "kl_beta")
    m[f"Mech{s}BetaMin"] = fmt(beta.min()) if len(beta) else NA
    m[f"Mech{s}BetaMax"] = fmt(beta.max()) if len(beta) else NA
    return m


def verdict(iv: Interval | None, present: bool) -> str:
    if not present:
        return "missing"
    if iv is None:
        return "untested"
    return {"above": "higher", "below": "lower"}.get(iv.verdict, "notdist")


def test_macros(groups: dict[str, list[Mechanism]]) -> dict[str, str]:
    """Each annealed schedule against None on every measure, Holm across the schedules of one measure."""
    m = {}
    for key in TESTED:
        _, unit, digits = SHOWN[key]
        for a, iv in tests(groups, key).items():
            s = display_name(a)
            present = a in groups and QUESTION.reference in groups
            m[f"Mech{s}{key}Case"] = verdict(iv, present)
            m[f"Mech{s}{key}Test"] = interval_text(iv, unit, digits) if iv is not None else NA
            d = detectable(iv) if iv is not None else math.nan
            m[f"Mech{s}{key}Detect"] = fmt(d, digits) if math.isfinite(d) else NA
            if key == "PeakGrad":  # the difference of log10s as the factor between the peaks
                m[f"Mech{s}PeakGradFactor"] = sci(10 ** abs(iv.diff)) if iv is not None else NA
    return m


def ramp_macros(runs) -> dict[str, str]:
    """Epochs until each annealed schedule's beta reaches 1, from its first run's config: a one-epoch run
    sees only the start of that ramp."""
    m = {}
    for a in QUESTION.compare:
        cfg = next((r.config() for r in runs if getattr(r, "strategy", None) == a), None)
        ramp = None
        if cfg and cfg.get("num_epoch") is not None:
            ramp = ramp_epochs(
                str(cfg.get("kl_anneal_type", a)),
                float(cfg["num_epoch"]),
                int(cfg.get("kl_anneal_cycle", 10)),
                float(cfg.get("kl_anneal_ratio", 1.0)),
            )
        m[f"Mech{display_name(a)}Ramp"] = f"{ramp:g}" if ramp is not None else NA
    return m


def mechanism_macros(runs) -> dict[str, str]:
    """Every ``Mech*`` macro from the run folders ``runs`` (lab4.report.mechanism.measures.mechanism_runs);
    only MechCase without runs of the KL question's schedules."""
    groups = by_schedule(runs)
    if not groups:
        return {"MechCase": "absent"}
    every = [x for ms in groups.values() for x in ms]
    crossed = sum(math.isfinite(x.kl_steps) for x in every)
    logged = [x for x in every if x.iterations]
    clips = {f"{x.clip:g}" for x in every}
    m = {
        "MechCase": "present",
        "MechRuns": str(len(every)),
        "MechSeeds": range_text(len(ms) for ms in groups.values()),
        "MechKLNats": f"{KL_NATS:g}",
        "MechIterations": range_text(x.iterations for x in logged),
        "MechClip": clips.pop() if len(clips) == 1 else NA,
        "MechCrossCase": (
            "unknown" if not logged else "all" if crossed == len(every) else "some" if crossed else "none"
        ),
        "MechDivergedCase": "some" if any(x.diverged for x in every) else "none",
    }
    for name in (QUESTION.reference, *QUESTION.compare):
        m.update(schedule_macros(name, groups.get(name, [])))
    m.update(test_macros(groups))
    if m["MechDivergedCase"] == "none":  # no run diverged: no test, and no sentence on a difference of 0
        for s in (display_name(a) for a in QUESTION.compare):
            m[f"Mech{s}DivergedCase"] = "missing"
            m[f"Mech{s}DivergedTest"] = m[f"Mech{s}DivergedDetect"] = NA
    m.update(ramp_macros(runs))
    m["MechStoryCase"] = story(m)
    check_cases(m, CASES)
    return m


def story(m: dict[str, str]) -> str:
    """MechStoryCase from the verdicts."""
    names = [display_name(a) for a in QUESTION.compare]
    peak_lower = all(m[f"Mech{s}PeakGradCase"] == "lower" for s in names)
    steps_open = all(m[f"Mech{s}KLStepsCase"] == "notdist" for s in names)
    if peak_lower:
        return "steps" if steps_open and m["MechCrossCase"] == "all" else "gradient"
    found = any(m[f"Mech{s}{k}Case"] in ("higher", "lower") for s in names for k in TESTED)
    return "mixed" if found else "none"
