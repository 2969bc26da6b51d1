"""lab4.report.mechanism: the measures from synthetic metrics.csv files with known answers, the tests between
schedules, the figure, and mechanism.yaml's claim that its one-epoch runs replay the study's epoch 1."""

import math
import re
from pathlib import Path

import pytest
from conftest import MECH_FIELDS, MECH_FRAMES, mech_rows, mech_run, mechanism_schedules

from lab4.config import make_config
from lab4.grid.spec import load_grid
from lab4.report.mechanism.figure import mechanism_figure
from lab4.report.mechanism.macros import CASES, mechanism_macros
from lab4.report.mechanism.measures import KL_NATS, measure, mechanism_runs
from lab4.schedules import beta_at

ROOT = Path(__file__).resolve().parents[1]
FIELDS, FRAMES = MECH_FIELDS, MECH_FRAMES
_run, _rows = mech_run, mech_rows


def test_the_measures_of_a_run_with_known_answers(tmp_path):
    """Two epochs of ten iterations: the KL per frame first below 1 nat at iteration 17 (16 sits exactly at
    1, which is not below; a blank KL before it is not a crossing); 3 of epoch 1's 10 norms above the clip
    at 100 (100 itself is not); the peak and the MSE from epoch 1 only."""
    kl = [500, 100, 50, 20, 10, math.nan, 5, 4, 3, 2] + [2, 2, 1.5, 1.2, 1.1, 1.05, KL_NATS, 0.9, 0.5, 2]
    grad = [50, 150, 99, 100, 101, 20, 300, 40, 60, 70] + [1000] * 10  # epoch 2's 1000 counts for neither
    mse = [0.005, 0.015] * 5 + [0.5] * 10  # epoch 1's mean per frame: 0.01
    m = measure(_run(tmp_path, "monotonic-s3", 3, _rows(kl, grad, mse)))
    assert (m.strategy, m.seed, m.iterations, m.diverged) == ("monotonic", 3, 10, False)
    assert m.kl_steps == 17 and m.kl_beta == pytest.approx(0.17)
    assert m.clipped == pytest.approx(0.3) and m.peak_grad == 300
    assert m.mse == pytest.approx(0.01)
    # no clip: nothing is clipped; a KL that never falls below the threshold has no crossing
    m = measure(_run(tmp_path, "none", 0, _rows([5.0] * 10, grad, mse), clip=0.0))
    assert m.clipped == 0.0 and math.isnan(m.kl_steps) and math.isnan(m.kl_beta) and m.peak_grad == 300


def test_a_run_without_iterations_and_a_diverged_one(tmp_path):
    """A run that has logged no iteration has no measures, only its folder; one that diverged in epoch 1 kept
    none of that epoch's rows, yet counts as a divergence (load_runs, which skips both, would lose it)."""
    quiet = measure(_run(tmp_path, "none", 0, []))
    assert quiet.iterations == 0 and not quiet.diverged
    assert all(math.isnan(v) for v in (quiet.kl_steps, quiet.clipped, quiet.peak_grad, quiet.mse))
    gone = _run(tmp_path, "none-s1", 1, None, diverged=dict(epoch=1, iteration=42, message="non-finite"))
    assert measure(gone).diverged and measure(gone).iterations == 0
    assert [r.name for r in mechanism_runs(tmp_path)] == ["none", "none-s1"]
    assert mechanism_runs(tmp_path / "absent") == []
    m = mechanism_macros(mechanism_runs(tmp_path))
    assert (
        m["MechCrossCase"] == "unknown" and m["MechNoneDiverged"] == "1" and m["MechDivergedCase"] == "some"
    )
    assert m["MechNoneKLSteps"] == "n/a" and m["MechNoneClipped"] == "n/a"
    assert m["MechMonotonicKLStepsCase"] == "missing" and m["MechMonotonicRuns"] == "0"


_schedules = mechanism_schedules


def test_the_schedules_are_tested_against_none_with_known_verdicts(tmp_path):
    m = mechanism_macros(_schedules(tmp_path))
    for name, values in CASES.items():
        assert m[name] in values, name
    assert m["MechCase"] == "present" and m["MechSeeds"] == "4" and m["MechClip"] == "200"
    assert m["MechNoneKLSteps"] == "21.5" and (m["MechNoneKLStepsMin"], m["MechNoneKLStepsMax"]) == (
        "20",
        "23",
    )
    assert m["MechNoneClipped"] == "1.00" and m["MechMonotonicClipped"] == "0.00"
    # a hundred times lower peak (within the noise's 10%), tested on log10 over four paired seeds
    assert m["MechMonotonicPeakGradCase"] == "lower" and "~decades" in m["MechMonotonicPeakGradTest"]
    mantissa, exponent = re.fullmatch(
        r"\$(\d\.\d) \\times 10\^\{(\d)\}\$", m["MechMonotonicPeakGradFactor"]
    ).groups()
    assert 80 <= float(mantissa) * 10 ** int(exponent) <= 125
    assert m["MechMonotonicClippedCase"] == "lower"
    assert m["MechCyclicalPeakGradCase"] == "notdist" and m["MechCyclicalClippedCase"] == "notdist"
    assert m["MechMonotonicMSECase"] == "notdist"  # the same MSE on every seed: a difference of exactly 0
    assert m["MechCrossCase"] == "all" and m["MechDivergedCase"] == "none"
    # Monotonic's peak is lower and Cyclical's is not: some differences, no story of the gradient
    assert m["MechStoryCase"] == "mixed"
    # mechanism.yaml's one-epoch runs see the start of Monotonic's 3-epoch ramp and Cyclical's 0.75-epoch one
    assert (m["MechMonotonicRamp"], m["MechCyclicalRamp"]) == ("3", "0.75")
    assert mechanism_macros([]) == {"MechCase": "absent"}


def test_the_story_follows_the_verdicts(tmp_path):
    """Both annealed schedules with a hundred times lower peaks and the KL's collapse at the same step: the
    "steps" story; the same with no run crossing the threshold: "gradient"; no difference at all: "none"."""
    m = mechanism_macros(mechanism_schedules(tmp_path / "a", cyclical_peak=1e2))
    assert (m["MechCyclicalPeakGradCase"], m["MechCyclicalKLStepsCase"]) == ("lower", "notdist")
    assert m["MechStoryCase"] == "steps"
    from lab4.report.mechanism.macros import story

    assert story({**m, "MechCrossCase": "none"}) == "gradient"
    flat = {k: ("notdist" if k.endswith("Case") and k.startswith(("MechMonotonic", "MechCyclical")) else v)
            for k, v in m.items()}  # fmt: skip
    assert story(flat) == "none"


@pytest.mark.timeout(60)
def test_the_figure_is_written_and_absent_without_runs(tmp_path):
    runs = _schedules(tmp_path / "runs", seeds=range(2))
    files = mechanism_figure(runs, tmp_path / "figures")
    assert sorted(p.name for p in files) == ["mechanism.pdf", "mechanism.png"]
    assert all(p.stat().st_size > 1000 for p in files)
    assert mechanism_figure([], tmp_path / "none") == [] and not (tmp_path / "none").exists()


def test_the_mechanism_grid_replays_the_study_epoch_one():
    """mechanism.yaml's one-epoch runs have, at every iteration of epoch 1, the beta of the study profile's
    runs of the same schedule (and otherwise its settings), so their measures are those of the study's first
    epoch with more seeds."""
    runs = load_grid(ROOT / "mechanism.yaml", "study")
    seeds = {n: o for n, o in runs if n in ("none", "monotonic", "cyclical")}
    assert len(runs) >= 30 and len(seeds) == 3
    for name, overrides in seeds.items():
        one = make_config("study", name=name, **overrides)
        study = make_config("study", name=name, kl_anneal_type=name)
        assert one.num_epoch == 1 and study.num_epoch == 6
        assert [beta_at(one, i / 150) for i in range(150)] == pytest.approx(
            [beta_at(study, i / 150) for i in range(150)], abs=1e-12
        )
        same = {"kl_weight", "clip_grad", "lr", "tfr", "tfr_sde", "batch_size", "synth_preset", "milestones"}
        assert {k: getattr(one, k) for k in same} == {k: getattr(study, k) for k in same}
