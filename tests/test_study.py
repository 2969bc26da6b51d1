"""`make study`: the study grid's runs, the profile's budget against quick's, and the export to results/study/."""
import json
import shutil
from pathlib import Path

import pytest

from lab4.config import PROFILES, make_config
from lab4.grid import study
from lab4.grid.spec import load_grid
from lab4.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
QUIRKS = {"lr-late": {"milestones": [4]}, "leaky-0.01": {"leaky_true_slope": 0.01},
          "monotonic-held": {"kl_anneal_type": "monotonic-held"}}


@pytest.fixture(scope="module")
def grid():
    return dict(load_grid(ROOT / "study.yaml", "study"))


def test_study_grid_expands_to_three_seeds_of_each_schedule_and_quirk(grid):
    names = set(grid)
    for base in ("monotonic", "cyclical", "none", *QUIRKS):
        assert {base, f"{base}-s1", f"{base}-s2"} <= names, base
    assert "real-monotonic" in names and len(grid) == 6 * 3 + 1
    for s in ("monotonic", "cyclical", "none"):
        assert grid[s] == {"kl_anneal_type": s} and grid[f"{s}-s2"]["seed"] == 2


def test_each_quirk_changes_one_thing_against_monotonic_at_the_same_seed(grid):
    for q, change in QUIRKS.items():
        for suffix in ("", "-s1", "-s2"):
            a = make_config("study", **grid[f"monotonic{suffix}"]).to_dict()
            b = make_config("study", **grid[f"{q}{suffix}"]).to_dict()
            differ = {k for k in a if a[k] != b[k]} - {"name"}
            assert differ == set(change) and all(b[k] == v for k, v in change.items()), (q, differ)


def test_study_profile_is_quick_at_twice_the_epochs_under_the_labs_loss():
    quick, st = make_config("quick"), make_config("study")
    assert st.num_epoch == 2 * quick.num_epoch and st.kl_weight == 1.0 and st.val_every == 1
    assert st.milestones == (2, 5) == make_config("lab").milestones and st.leaky_true_slope == 1.0
    same = ("F_dim", "L_dim", "N_dim", "D_out_dim", "batch_size", "lr", "train_vi_len", "partial", "synth_preset")
    assert all(getattr(st, k) == getattr(quick, k) for k in same)
    # cycles as long in epochs as quick's
    assert st.num_epoch / st.kl_anneal_cycle == quick.num_epoch / quick.kl_anneal_cycle
    assert "study" in PROFILES


def test_real_footage_entry_has_the_same_iterations_and_an_absolute_data_root(grid):
    real = make_config("study", **grid["real-monotonic"])
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
    RunDir(runs / "monotonic").write_summary(dict(name="monotonic", started_at=100.0, finished_at=160.0,
                                                  cpu_seconds=50.0))
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
