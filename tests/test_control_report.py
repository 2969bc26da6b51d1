"""The report's positive control (lab4.report.mechanism.control) and mechanism sections from run folders
made of numbers: known verdicts, the cases the sentences hang on, the figures, and each section present only
with its folder."""

import re

import pytest
from conftest import mechanism_schedules, write_control_runs

from lab4.report import sections
from lab4.report.mechanism import control as C

USED = {"none": [0, 0, 0], "monotonic": [100, 120, 110], "cyclical": [0, 1, 0]}


def test_control_verdicts_with_known_answers(tmp_path):
    m = C.control_macros(write_control_runs(tmp_path / "control", USED))
    assert (m["CtlCase"], m["CtlRuns"], m["CtlSeeds"], m["CtlEpochs"]) == ("present", "9", "3", "3")
    assert (m["CtlKLWeightInverse"], m["CtlClip"], m["CtlUnits"]) == ("16384", "1", "16{,}384")
    # the mean of the last validation's units, and their range
    assert (m["CtlMonotonicActive"], m["CtlMonotonicActiveMin"], m["CtlMonotonicActiveMax"]) == (
        "110.0",
        "100.0",
        "120.0",
    )
    assert m["CtlNoneKL"] == "0.010" and m["CtlMonotonicKL"] == "11.010"  # per frame, the last epoch
    assert (m["CtlNoneScore"], m["CtlNoneBest"], m["CtlNoneZeroScore"]) == ("30.00", "30.50", "29.80")
    assert m["CtlNoneDiversity"] == "$1.0 \\times 10^{-4}$"
    # the diversity's test in millionths: Monotonic's is 1e-4 * 110 higher on average, 11000 millionths
    assert m["CtlMonotonicDiversityTest"].startswith("$+$11000.0~$\\times 10^{-6}$, 97.5\\% interval")
    # Monotonic keeps 110 more units on every seed; Cyclical 0, 1, 0 more: not distinguishable
    assert m["CtlUseCase"] == "used" and m["CtlMonotonicActiveCase"] == "higher"
    assert m["CtlCyclicalActiveCase"] == "notdist" and "detectable at 80" in m["CtlCyclicalActiveTest"]
    assert "p_{\\mathrm{Holm}}" in m["CtlMonotonicActiveTest"]  # Holm across the two annealed schedules
    assert m["CtlAnnealCase"] == "more"
    # the mean short score (30 + 331 / 900 dB) against the copy's 30.5: below repeating the start frame
    assert (m["CtlScore"], m["CtlBaseline"], m["CtlCopyCase"]) == ("30.37", "30.50", "loses")
    # what the content is worth, from the rendered frames (lab4.datasets.synth.worth), against 1/16384
    first = float(re.sub(r"[^\d.e-]", "", m["CtlFirstNat"].replace(" \\times 10^{", "e").rstrip("}$")))
    assert 1e-3 < first < 1e-2 and int(m["CtlPriceRatio"]) == pytest.approx(first * 16384, rel=0.05)
    assert m["CtlFlickerCase"] == "below"
    for name, values in C.CASES.items():
        assert m[name] in values, name


def test_control_cases_collapsed_and_fewer(tmp_path):
    zero = C.control_macros(write_control_runs(tmp_path / "a", {s: [0, 0, 0] for s in USED}))
    assert (zero["CtlUseCase"], zero["CtlAnnealCase"]) == ("collapsed", "collapsed")
    # no unit anywhere: no test of units, and no sentence about a difference of zero
    assert (zero["CtlMonotonicActiveCase"], zero["CtlMonotonicActiveTest"]) == ("missing", "n/a")
    assert zero["CtlMaxActive"] == "0"
    fewer = {"none": [50, 60, 55], "monotonic": [0, 0, 0], "cyclical": [50, 61, 55]}
    m = C.control_macros(write_control_runs(tmp_path / "b", fewer))
    assert (m["CtlMonotonicActiveCase"], m["CtlAnnealCase"]) == ("lower", "fewer")
    one = C.control_macros(write_control_runs(tmp_path / "c", USED, seeds=range(1)))
    assert one["CtlAnnealCase"] == "untested" and one["CtlMonotonicActiveTest"] == "n/a"
    assert C.control_macros([]) == {"CtlCase": "absent"}


def test_the_diversity_comes_unrounded_from_the_validation_summary(tmp_path):
    """Runs whose summary.json rounded the diversity to 0 keep its digits in val_summary.json."""
    runs = write_control_runs(tmp_path / "c", USED)
    for r in runs:
        r.write_val_summary({"short_diversity": 1.5e-5})
    m = C.control_macros(runs)
    assert m["CtlNoneDiversity"] == "$1.5 \\times 10^{-5}$"


@pytest.mark.timeout(120)
def test_sections_present_only_with_their_folders(tmp_path):
    """Inputs.load reads results/mechanism and results/control where they exist; each section's macros
    file then says "present" and its figure is drawn, and says "absent" (and draws nothing) without."""
    runs_dir = tmp_path / "runs"  # the sections read nothing of the grid's runs
    runs_dir.mkdir()
    mechanism_schedules(tmp_path / "results" / "mechanism", seeds=range(2))
    write_control_runs(tmp_path / "results" / "control", USED)
    results = tmp_path / "results"
    folders = dict(mechanism_dir=results / "mechanism", control_dir=results / "control")
    with_them = sections.Inputs.load(runs_dir, **folders)
    without = sections.Inputs.load(runs_dir, mechanism_dir=tmp_path / "no", control_dir=None)
    for inputs, case, figs in ((with_them, "present", True), (without, "absent", False)):
        gen = tmp_path / case
        out = sections.write_generated(inputs, gen / "generated", names=("mechanism", "control"))
        text = out["mechanism.tex"].read_text() + out["control.tex"].read_text()
        for switch in ("MechCase", "CtlCase"):
            assert f"\\newcommand{{\\{switch}}}{{{case}}}" in text
        drawn = sections.draw_figures(inputs, gen / "figures", names=("mechanism", "control"))
        assert bool(drawn["mechanism"]["mechanism"]) == figs and bool(drawn["control"]["control"]) == figs
        assert (gen / "figures" / "control.pdf").is_file() == figs
