"""`make study`: the study grid's runs, the profile's budget against quick's, and the export to
results/study/."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from lab4.config import PROFILES, make_config
from lab4.grid import study
from lab4.grid.spec import load_grid
from lab4.run.folder import RunDir, strategy_of
from lab4.run.questions import parse_questions
from lab4.schedules import KL_STRATEGIES

ROOT = Path(__file__).resolve().parents[1]
# each quirk run, its reference, and what it changes
QUIRKS = {
    "lr-late": ("monotonic", {"milestones": [4]}),
    "quick-leaky-0.01": ("quick-monotonic", {"leaky_true_slope": 0.01}),
    "quick-monotonic-held": ("quick-monotonic", {"kl_anneal_type": "monotonic-held"}),
}


@pytest.fixture(scope="module")
def grid():
    """study-extra.yaml's runs: the quirks, their references and real footage."""
    return dict(load_grid(ROOT / "study-extra.yaml", "study"))


def test_make_study_runs_the_three_schedules_on_the_labs_loss_with_eight_seeds_or_more():
    """The study's budget goes to the lab's question: study.yaml has the three schedules only, each seeded
    alike with at least 8 seeds, on the lab's loss (the KL summed at weight 1), and asks the KL question."""
    study = dict(load_grid(ROOT / "study.yaml", "study"))
    seeds = {
        s: sorted(make_config("study", **o).seed for n, o in study.items() if strategy_of(n) == s)
        for s in KL_STRATEGIES
    }
    assert {strategy_of(n) for n in study} == set(KL_STRATEGIES)
    assert len(seeds["none"]) >= 8 and seeds["none"] == seeds["monotonic"] == seeds["cyclical"]
    for name, over in study.items():
        cfg = make_config("study", **over)
        assert (cfg.kl_weight, cfg.kl_anneal_type) == (1.0, strategy_of(name)), name
    qs = parse_questions(yaml.safe_load((ROOT / "study.yaml").read_text())["questions"], "study.yaml")
    assert [(q.key, q.reference, q.compare) for q in qs] == [("KL", "none", ("monotonic", "cyclical"))]


def test_the_extra_grid_has_three_seeds_of_each_quirk_and_its_reference(grid):
    names = set(grid)
    for base in ("monotonic", "quick-monotonic", *QUIRKS):
        assert {base, f"{base}-s1", f"{base}-s2"} <= names, base
    assert {"real-monotonic", "real-monotonic-klmean"} <= names and len(grid) == 5 * 3 + 2
    assert not names & {"cyclical", "none"}  # the schedules are make study's
    assert grid["monotonic"] == {"kl_anneal_type": "monotonic"} and grid["monotonic-s2"]["seed"] == 2


def test_each_quirk_changes_one_thing_against_monotonic_at_the_same_seed_and_budget(grid):
    quick = make_config("study", **grid["quick-monotonic"])
    # quick's schedule, lab loss
    assert (quick.num_epoch, quick.milestones, quick.kl_anneal_cycle) == (3, (2,), 2)
    for q, (ref, change) in QUIRKS.items():
        for suffix in ("", "-s1", "-s2"):
            a = make_config("study", **grid[f"{ref}{suffix}"]).to_dict()
            b = make_config("study", **grid[f"{q}{suffix}"]).to_dict()
            differ = {k for k in a if a[k] != b[k]} - {"name"}
            assert differ == set(change) and all(b[k] == v for k, v in change.items()), (q, differ)


def test_the_report_finds_each_quirk_its_reference_and_the_real_footage_runs_in_the_grid(grid):
    """lab4.report.study.roles reads the study's runs from study.yaml: the quirks above, each against its
    reference, the real-footage runs by their loss, and how the study's table names them."""
    from lab4.report.study.roles import QUIRK_KEYS, roles

    r = roles(grid.items())
    assert {q: ref for q, ref in r.quirks.values()} == {q: ref for q, (ref, _) in QUIRKS.items()}
    changed = {q: next(iter(change)) for q, (_, change) in QUIRKS.items()}
    assert {q: key for key, (q, _) in r.quirks.items()} == {q: QUIRK_KEYS[f] for q, f in changed.items()}
    assert (r.real, r.real_mean) == ("real-monotonic", "real-monotonic-klmean")
    assert (r.label("lr-late"), r.label("quick-leaky-0.01"), r.label("monotonic")) == (
        "Late lr drop",
        "LeakyReLU 0.01, 3 epochs",
        "Monotonic",
    )
    # a grid with the quirk's entry renamed: the report follows it
    renamed = [(n.replace("quick-leaky-0.01", "leaky-slope"), o) for n, o in grid.items()]
    assert roles(renamed).quirks["Leaky"] == ("leaky-slope", "quick-monotonic")
    assert roles([]).quirks == {key: (None, None) for key in QUIRK_KEYS.values()} and roles([]).real is None


def test_study_profile_is_quick_at_twice_the_epochs_under_the_labs_loss():
    quick, st = make_config("quick"), make_config("study")
    assert st.num_epoch == 2 * quick.num_epoch and st.kl_weight == 1.0 and st.val_every == 1
    assert st.milestones == (2, 5) == make_config("lab").milestones and st.leaky_true_slope == 1.0
    same = (
        "F_dim",
        "L_dim",
        "N_dim",
        "D_out_dim",
        "batch_size",
        "lr",
        "train_vi_len",
        "partial",
        "synth_preset",
    )
    assert all(getattr(st, k) == getattr(quick, k) for k in same)
    # cycles as long in epochs as quick's
    assert st.num_epoch / st.kl_anneal_cycle == quick.num_epoch / quick.kl_anneal_cycle
    assert "study" in PROFILES


def test_real_footage_entry_has_the_same_iterations_and_an_absolute_data_root(grid):
    real, mean = (make_config("study", **grid[n]) for n in ("real-monotonic", "real-monotonic-klmean"))
    differ = {k for k, v in real.to_dict().items() if mean.to_dict()[k] != v}
    assert differ == {"kl_weight", "clip_grad"} and (mean.kl_weight, mean.clip_grad) == (
        1 / (8 * 32 * 64),
        1.0,
    )
    assert Path(real.data_root).is_absolute() and real.data_root == str(ROOT / "data" / "real-vtest")
    # 165 train frames -> 10 iterations an epoch with the profile's clips; SynthDance small: 150
    assert real.num_epoch * 10 == make_config("study").num_epoch * 150
    assert [m / real.num_epoch for m in real.milestones] == [m / 6 for m in (2, 5)]


def test_grid_data_root_is_relative_to_the_grid_file(tmp_path):
    (tmp_path / "sub").mkdir()
    g = tmp_path / "sub" / "g.yaml"
    g.write_text("experiments:\n  - name: a\n    overrides: {data_root: ../data/x}\n")
    assert load_grid(g, "tiny") == [("a", {"data_root": str(tmp_path / "data" / "x")})]


def test_export_copies_finished_runs_small_files_and_records_the_machine(tiny_run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "monotonic")
    shutil.copytree(tiny_run, runs / "unfinished")
    RunDir(runs / "monotonic").write_summary(
        dict(name="monotonic", started_at=100.0, finished_at=160.0, cpu_seconds=50.0)
    )
    out = tmp_path / "results" / "study"
    (out / "monotonic").mkdir(parents=True)
    (out / "monotonic" / "stale.txt").write_text("from an older export")
    names = study.export(runs, out)
    assert names == ["monotonic"]
    got = {p.name for p in (out / "monotonic").iterdir()}
    assert {"summary.json", "config.json", "metrics.csv"} <= got and not got - set(study.RUN_FILES)
    rec = study.record(out, names, "make study", 0, 12.0)
    on_disk = json.loads((out / "study.json").read_text())
    assert on_disk == rec and rec["span_seconds"] == 60.0 and rec["cpu_seconds"] == 50.0
    assert rec["machine"]["processor"] and rec["machine"]["torch"] and rec["command"] == "make study"
    assert rec["commit"] == "unknown" or len(rec["commit"].removesuffix("-dirty")) == 40


# the report's longer-budget section (lab4/report/study/) from a results/study/ made of numbers
def _seeds(**strategies):
    return {
        f"{s.replace('_', '-')}{f'-s{k}' if k else ''}": v
        for s, vs in strategies.items()
        for k, v in enumerate(vs)
    }


STUDY_A = _seeds(
    monotonic=[25.0, 25.5, 26.0],
    cyclical=[20.0, 20.4, 21.1],
    none=[22.0, 22.4, 22.9],
    lr_late=[28.0, 28.6, 29.1],
    quick_monotonic=[24.0, 24.4, 25.1],
    **{"quick_leaky_0.01": [24.2, 24.3, 25.3]},
    quick_monotonic_held=[20.0, 20.3, 21.2],
)


def _macros(tmp_path, folder, quick=()):
    from conftest import study_grids

    from lab4.report import sections
    from lab4.report.study import numbers as S
    from lab4.report.study.roles import roles

    runs, record = S.load_study(folder)
    inputs = sections.Inputs(
        list(quick),
        study_runs=runs,
        study_record=record,
        study_roles=roles(study_grids()),
        extra_runs=S.load_study(folder.parent / "study-extra")[0],
    )
    out = sections.write_generated(inputs, tmp_path / "generated", names=("study", "study extra"))
    sections.draw_figures(inputs, tmp_path / "figures", names=("study", "study extra"))
    text = out["study.tex"].read_text() + out["studyextra.tex"].read_text()
    return dict(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}", text)), out


def test_without_results_study_the_section_is_one_sentence(tmp_path):
    m, out = _macros(tmp_path, tmp_path / "results" / "study")
    assert m == {"StudyCase": "absent", "ExtraCase": "absent"} and set(out) == {"study.tex", "studyextra.tex"}
    assert not (tmp_path / "figures" / "study").exists()


def test_the_extra_grid_stands_without_the_study(tmp_path):
    """results/study-extra/ alone: the quirks' and real footage's section is there, the schedules' is not."""
    from conftest import write_study_folder

    folder = write_study_folder(tmp_path / "a", STUDY_A)
    shutil.rmtree(folder)
    m, out = _macros(tmp_path, folder)
    assert (m["StudyCase"], m["ExtraCase"], m["StudyLrLateCase"]) == ("absent", "present", "better")
    assert "extra_results_table.tex" in out and "study_results_table.tex" not in out
    figures = {p.name for p in (tmp_path / "figures" / "study").iterdir()}
    assert figures == {"quirks_val_psnr.pdf", "quirks_val_psnr.png", "study_real.pdf", "study_real.png"}


def test_study_section_states_ranking_quirks_collapse_flattening_and_real_footage(tmp_path):
    from conftest import write_study_folder

    m, out = _macros(tmp_path, write_study_folder(tmp_path / "a", STUDY_A))
    # the KL question, fixed before the runs: each annealed schedule against None, paired by seed, Holm
    # across the two; monotonic - none = 3.0, 3.1, 3.1 and cyclical - none = -2.0, -2.0, -1.8
    assert (m["StudyCase"], m["StudyKLCase"], m["StudyScoreName"]) == (
        "present",
        "differs",
        "630-frame score",
    )
    assert re.findall(r"\\Comparison\{(\w+)\}\{([^}]*)\}\{([^}]*)\}", m["StudyKLComparisons"]) == [
        ("better", "Monotonic", "None"),
        ("worse", "Cyclical", "None"),
    ]
    # the smaller p is tested first at 2.5% (a 97.5% interval); the second, rejected too, at 5%
    assert "$+$3.07~dB" in m["StudyKLComparisons"] and "97.5\\% interval" in m["StudyKLComparisons"]
    assert m["StudyKLDiverged"] == "0" and m["StudyScoreIsPrimary"] == "no"
    assert (m["StudyLrLateCase"], m["StudyLeakyCase"], m["StudyHeldCase"]) == ("better", "same", "worse")
    assert (m["StudyLrLateDrop"], m["StudyLeakySlope"], m["StudyHeldRamp"], m["StudyQuirkEpochs"]) == (
        "4",
        "0.01",
        "1",
        "3",
    )
    # the three quirks are one family (holm_family): the late drop's, the smallest p, tested at 5%/3
    assert m["StudyLrLateTest"].startswith("$+$3.07~dB") and "p_{\\mathrm{Holm}}" in m["StudyLrLateTest"]
    assert "98.3\\% interval" in m["StudyLrLateTest"]
    assert (m["StudyActiveCase"], m["StudyFlatCase"], m["StudyGaining"], m["StudyKLRuns"]) == (
        "never",
        "all",
        "0",
        "9",
    )
    assert m["StudyFlatList"].startswith("Monotonic after epoch 3 (")
    assert (m["StudyRealCase"], m["StudyRealFirstCase"], m["StudyRealGap"]) == ("loses", "loses", "10.00")
    assert (m["StudyRealLabCase"], m["StudyRealRunCase"], m["StudyRealEpochs"]) == ("finished", "lab", "90")
    # below the copy from the first generated frame on: the sentence on frame 1 says it, no frame is named
    assert (m["StudyRealFirstBaseline"], m["StudyRealBaseline"], m["StudyRealBelowFrame"]) == (
        "27.00",
        "22.00",
        "n/a",
    )
    assert (m["StudyEpochs"], m["StudyMultiple"], m["StudySeeds"], m["StudyRuns"]) == ("6", "twice", "3", "9")
    # the quirks and the real footage come from the extra grid, with Monotonic's three seeds as the reference
    assert m["StudyExtraRuns"] == "16"
    assert (m["StudyLossCase"], m["StudyClip"], m["StudyLrFactor"], m["StudyMilestones"]) == (
        "lab",
        "100",
        "10",
        "2 and 5",
    )
    assert (m["StudyMachine"], m["StudyCommit"], m["StudyMinutes"]) == (
        "Test CPU (family 1 model 2)",
        "0123456",
        "20",
    )
    assert (tmp_path / "figures" / "study" / "study_val_psnr.pdf").is_file()
    rows = out["study_results_table.tex"].read_text().splitlines()[1:]
    assert [r.split(" & ")[0] for r in rows] == ["Monotonic", "Cyclical", "None"]  # the schedules
    # the extra grid's table: each quirk beside the Monotonic of its own grid, no real footage
    rows = out["extra_results_table.tex"].read_text().splitlines()[1:]
    assert [r.split(" & ")[0] for r in rows] == [
        "Monotonic",
        "Late lr drop",
        "LeakyReLU 0.01, 3 epochs",
        "Monotonic, 3 epochs",
        "Monotonic held, 3 epochs",
    ]


def test_study_verdicts_flip_with_the_numbers(tmp_path):
    from conftest import write_study_folder

    scores = _seeds(
        monotonic=[25.0, 25.5, 26.0],
        cyclical=[25.1, 25.3, 26.2],
        none=[24.0, 26.4, 25.9],
        lr_late=[22.0, 22.6, 23.1],
        quick_monotonic=[24.0, 24.4, 25.1],
        **{"quick_leaky_0.01": [28.2, 28.3, 29.2]},
        quick_monotonic_held=[20.0],
    )
    folder = write_study_folder(
        tmp_path / "b",
        scores,
        active={"cyclical": 12},
        flat=False,
        real="diverged",
        real_mean=(30.0, 22.0, 27.0),
    )
    for f in folder.glob("*/config.json"):  # a KL weight other than the lab's, and no clip
        f.write_text(json.dumps({**json.loads(f.read_text()), "kl_weight": 0.5, "clip_grad": 0.0}))
    m, _ = _macros(tmp_path, folder)
    assert (m["StudyLossCase"], m["StudyKLWeight"], m["StudyClip"]) == ("other", "0.5", "0")
    assert (m["StudyKLCase"], m["StudyLrLateCase"], m["StudyLeakyCase"], m["StudyHeldCase"]) == (
        "open",
        "worse",
        "better",
        "untested",
    )
    # monotonic - none = 1.0, -0.9, 0.1 and cyclical - none = 1.1, -1.1, 0.3: neither is distinguishable, and
    # each says how large a difference three seeds would have found (both at Holm's first-step level, 97.5%)
    found = re.findall(
        r"\\Comparison\{(\w+)\}\{([^}]*)\}\{([^}]*)\}\{(.*?)\}\{([^}]*)\}", m["StudyKLComparisons"]
    )
    assert [f[:3] for f in found] == [("notdist", "Monotonic", "None"), ("notdist", "Cyclical", "None")]
    assert all("97.5\\% interval" in f[3] and float(f[4]) > 1.0 for f in found), found
    assert (m["StudyActiveCase"], m["StudyActiveList"], m["StudyActiveMax"]) == (
        "some",
        "Cyclical from epoch 3",
        "12",
    )
    assert (m["StudyFlatCase"], m["StudyGaining"]) == ("none", "9")
    assert (m["StudyRealCase"], m["StudyRealFirstCase"]) == ("beats", "beats")
    assert (
        m["StudyRealLabCase"],
        m["StudyRealRunCase"],
        m["StudyRealDivergedEpoch"],
        m["StudyRealDivergedOf"],
        m["StudyRealDivergedPSNR"],
    ) == ("diverged", "mean", "31", "90", "8.24")


def test_make_report_never_runs_the_study_and_make_study_exports_to_results():
    """`make report` reads results/study/; only `make study` trains it (about 90 minutes on 2 cores)."""
    make = (ROOT / "Makefile").read_text()
    report = re.search(r"^report:(.*)$", make, re.M).group(1).split()
    assert "study" not in report and report == ["experiments", "figures", "html", "pdf"]
    recipe = make.split("\nstudy:", 1)[1].split("\n\n", 1)[0]
    assert "-m lab4 study" in recipe and "--out results/study " in recipe and "real-footage" not in recipe
    extra = make.split("\nstudy-extra:", 1)[1].split("\n\n", 1)[0]
    assert "--grid study-extra.yaml" in extra and "--out results/study-extra" in extra
    assert "real-footage" in extra


def test_a_diverged_run_is_settled_not_retried_and_the_study_records_it(tmp_path, capsys):
    """A run whose loss became non-finite (diverged.json, written by the Trainer) is not run again: resuming
    would repeat it. The grid exits 1 for it; the study, where divergence is a result, exports it and exits
    0."""
    from lab4.cli import main

    grid = tmp_path / "g.yaml"
    grid.write_text("experiments:\n  - name: real-monotonic\n    overrides: {kl_anneal_type: monotonic}\n")
    run = RunDir(tmp_path / "runs" / "real-monotonic")
    run.path.mkdir(parents=True)
    run.write_config(make_config("study", name="real-monotonic", kl_anneal_type="monotonic"))
    (run.path / "metrics.csv").write_text("kind,epoch,loss,val_psnr\nepoch,0,0.5,8.2\n")
    run.write_diverged(
        dict(epoch=2, iteration=1, num_epoch=6, message="real-monotonic: loss became non-finite")
    )
    assert main(["grid", "--grid", str(grid), "--profile", "study", "--runs", str(run.path.parent)]) == 1
    out = capsys.readouterr().out
    assert "real-monotonic: DIVERGED (loss became non-finite); not retried" in out and "1 diverged" in out
    assert not (run.path / "02_train.ipynb").exists()  # nothing was executed
    out_dir = tmp_path / "results" / "study"
    assert main(["study", "--grid", str(grid), "--runs", str(run.path.parent), "--out", str(out_dir)]) == 0
    rec = json.loads((out_dir / "study.json").read_text())
    assert rec["diverged"] == ["real-monotonic"] and (out_dir / "real-monotonic" / "diverged.json").is_file()
    assert len(rec["invocations"]) == 1 and rec["invocations"][0]["exit_status"] == 0
    main(["study", "--grid", str(grid), "--runs", str(run.path.parent), "--out", str(out_dir)])
    # a resumed study keeps both
    assert len(json.loads((out_dir / "study.json").read_text())["invocations"]) == 2


def test_every_study_macro_that_main_tex_uses_is_written(tmp_path):
    from conftest import write_study_folder

    m, _ = _macros(tmp_path, write_study_folder(tmp_path / "a", STUDY_A))  # the lab-loss real run finished
    diverged, _ = _macros(
        tmp_path / "b",
        write_study_folder(tmp_path / "b", STUDY_A, real="diverged", real_mean=(30.0, 22.0, 27.0)),
    )
    m = {**m, **diverged}
    used = set(re.findall(r"\\(Study[A-Za-z]+)", (ROOT / "report" / "main.tex").read_text())) - {
        "StudySection"
    }
    assert used - set(m) == set(), sorted(used - set(m))


def test_a_diverged_schedule_run_is_named_and_left_out_of_the_curves(tmp_path):
    """A run of the study's schedules that diverged is named with its epoch; the flattening, the last-epoch
    gains and the final KL count only the runs that finished (its tests count it at the copy's score)."""
    from conftest import write_study_folder

    from lab4.report.study import numbers as S
    from lab4.run.folder import RunDir

    folder = write_study_folder(tmp_path / "a", STUDY_A)
    before, _ = _macros(tmp_path, folder)
    RunDir(folder / "none-s1").write_diverged(
        dict(epoch=2, iteration=9, num_epoch=6, message="none-s1: loss")
    )
    runs, _ = S.load_study(folder)
    m = {**S.diverged_macros(runs), **S.flatten_macros(runs)}
    assert (m["StudyDivergedCount"], m["StudyDivergedList"], m["StudyDivergedEpochs"]) == (
        "1",
        "None (seed 1)",
        "2",
    )
    assert int(m["StudyKLRuns"]) == int(before["StudyKLRuns"]) - 1
    assert S.diverged_macros([r for r in runs if r.name != "none-s1"])["StudyDivergedCount"] == "0"
