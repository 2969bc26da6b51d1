"""A run is what its folder says: a resume with other settings and a new run into a used folder are refused in
one line with nothing changed, an overwrite says what it replaced, names follow what is trained, and every way
of training (CLI, 02_train, the grid) goes through one pipeline that ends in summary.json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from lab4.cli import main
from lab4.config import FIELDS, PROFILES, RESUME_MAY_CHANGE, Config, make_config, run_name
from lab4.grid import driver, execution
from lab4.grid.spec import load_grid
from lab4.run.folder import RunDir
from lab4.run.identity import claim, differences

FAST = dict(frame_H=8, frame_W=16, train_vi_len=4, F_dim=8, L_dim=4, N_dim=4, D_out_dim=8, val_every=0)
FAST_ARGS = [a for k, v in FAST.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def train_args(root, run, *extra) -> list[str]:
    return ["train", "--profile", "tiny", "--data-root", str(root), "--run-dir", str(run), *FAST_ARGS, *extra]


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tiny_root, tmp_path_factory) -> Path:
    """A finished 1-epoch cyclical run made by `lab4 train`; tests copy it before changing anything."""
    run = tmp_path_factory.mktemp("identity") / "R"
    assert main(train_args(tiny_root, run, "--kl-anneal-type", "cyclical", "--num-epoch", "1")) == 0
    return run


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(finished, tmp_path / "R"))


@pytest.mark.timeout(120)
def test_resume_with_another_schedule_is_refused_and_changes_nothing(tiny_root, run_copy, capsys):
    before = digests(run_copy)
    rc = main(
        train_args(tiny_root, run_copy, "--kl-anneal-type", "monotonic", "--num-epoch", "1", "--resume")
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert str(run_copy.name) in err and "kl_anneal_type cyclical -> monotonic" in err
    assert "another name or run folder" in err and "--overwrite" in err
    assert digests(run_copy) == before  # last.pt and config.json byte for byte


@pytest.mark.timeout(120)
def test_another_seed_into_a_finished_folder_is_refused_without_overwrite(tiny_root, run_copy, capsys):
    before = digests(run_copy)
    rc = main(
        train_args(tiny_root, run_copy, "--kl-anneal-type", "cyclical", "--num-epoch", "1", "--seed", "1")
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "seed 0 -> 1" in err, err
    assert digests(run_copy) == before
    # the same run again
    rc = main(train_args(tiny_root, run_copy, "--kl-anneal-type", "cyclical", "--num-epoch", "1"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "already holds this run" in err and "--resume" in err, err
    assert digests(run_copy) == before


@pytest.mark.timeout(180)
def test_overwrite_says_what_it_replaced_and_leaves_only_the_new_run(tiny_root, run_copy, capsys):
    (run_copy / "diverged.json").write_text("{}")  # a stale record of the old run must go with it
    rc = main(
        train_args(
            tiny_root,
            run_copy,
            "--kl-anneal-type",
            "none",
            "--num-epoch",
            "1",
            "--overwrite",
            "--predict",
            "false",
        )
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    line = next(ln for ln in err.splitlines() if "replaced the run" in ln)
    assert "cyclical, 1 of 1 epochs trained, finished" in line and "kl_anneal_type cyclical -> none" in line
    assert "last.pt" in line and "summary.json" in line and "diverged.json" in line
    assert not (run_copy / "diverged.json").exists() and not (run_copy / "submission.csv").exists()
    assert json.loads((run_copy / "summary.json").read_text())["kl_anneal_type"] == "none"


@pytest.mark.timeout(180)
def test_a_resume_may_extend_a_run_but_not_shorten_it(tiny_root, run_copy, capsys):
    rc = main(
        train_args(
            tiny_root,
            run_copy,
            "--kl-anneal-type",
            "cyclical",
            "--num-epoch",
            "2",
            "--resume",
            "--device",
            "cpu",
        )
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "num_epoch 1 -> 2" in err and "spans the run" in err  # the schedule stretches: said, not hidden
    assert RunDir(run_copy).epochs_done() == 2 and RunDir(run_copy).summary()["epochs"] == 2
    rc = main(train_args(tiny_root, run_copy, "--kl-anneal-type", "cyclical", "--num-epoch", "1", "--resume"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "has trained 2 epochs, more than the 1 asked" in err, err


@pytest.mark.timeout(60)
def test_a_cli_run_is_in_the_report_table(finished, capsys):
    """`lab4 train` runs the whole pipeline, so the run has summary.json and the table lists it."""
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["name"] == "cyclical" and summary["mean_psnr"] is not None
    assert (finished / "val_summary.json").is_file() and (finished / "submission.csv").is_file()
    assert main(["report", "table", "--runs", str(finished.parent)]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| Cyclical"))
    assert f"{summary['mean_psnr']:.2f}" in row


def test_names_follow_what_is_trained():
    assert run_name("quick") == "cyclical" and make_config("quick").name == "cyclical"
    assert make_config("quick", kl_anneal_type="monotonic", seed=1).name == "monotonic-s1"
    assert make_config("quick", kl_anneal_type="none", tfr=0.0).name == "none-tf-off"
    assert make_config("quick", tfr=0.5, tfr_d_step=0.0, seed=2).name == "cyclical-tfr0.5-dstep0-s2"
    # the profile's own teacher forcing adds nothing
    assert make_config("quick", tfr_sde=1).name == "cyclical"
    assert make_config("quick", kl_anneal_type="none", name="mine").name == "mine"
    names = {
        make_config("quick", kl_anneal_type=k, seed=s).name for k in ("cyclical", "monotonic") for s in (0, 1)
    }
    assert len(names) == 4  # every change of schedule or seed is another folder


def test_a_grid_entry_without_a_name_is_named_like_a_cli_run(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "experiments:\n  - overrides: {kl_anneal_type: monotonic, tfr: 0.0}\n    seeded: true\n"
        "seeds:\n  tiny: [0, 3]\n"
    )
    assert [n for n, _ in load_grid(grid, "tiny")] == ["monotonic-tf-off", "monotonic-tf-off-s3"]


def test_fields_that_may_change_on_resume_are_fields_with_reasons():
    assert set(RESUME_MAY_CHANGE) < FIELDS
    assert all(isinstance(why, str) and len(why) > 10 for why in RESUME_MAY_CHANGE.values())
    for key in (
        "kl_anneal_type",
        "seed",
        "lr",
        "batch_size",
        "tfr",
        "kl_weight",
        "name",
        "data_root",
        "F_dim",
    ):
        assert key not in RESUME_MAY_CHANGE, key


@pytest.mark.timeout(60)
def test_every_other_field_is_part_of_the_identity(finished):
    """Changing any field outside RESUME_MAY_CHANGE is a difference; changing one inside it is not."""
    cfg = RunDir(finished).load_config()
    assert differences(RunDir(finished), cfg) == []
    # SynthDance here is another dataset
    assert differences(RunDir(finished), cfg.replace(data_root="")) != []
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        other = (
            not value
            if isinstance(value, bool)
            else value + 1
            if isinstance(value, (int, float))
            else (*value, 99)
            if isinstance(value, tuple)
            else f"{value}x"
        )
        diffs = differences(RunDir(finished), cfg.replace(**{f.name: other}))
        assert bool(diffs) == (f.name not in RESUME_MAY_CHANGE), (f.name, diffs)


def test_claim_on_an_empty_folder_or_a_notebook_alone_trains(tmp_path):
    (tmp_path / "02_train.ipynb").write_text("{}")  # papermill writes the executed notebook before training
    cfg = make_config("tiny", run_dir=str(tmp_path))
    assert claim(RunDir(tmp_path), cfg, resume=False, overwrite=False) is None
    assert (tmp_path / "02_train.ipynb").is_file()


@pytest.mark.timeout(60)
def test_the_grid_refuses_a_folder_with_other_settings_unless_overwrite(finished, tmp_path, run_copy):
    other = execution.Entry(
        run_copy.name,
        dict(FAST, kl_anneal_type="none", data_root=str(RunDir(finished).config()["data_root"]), num_epoch=1),
        run_copy,
        "tiny",
    )
    result = execution.execute(other, train=False)
    assert result.status == "refused" and "kl_anneal_type cyclical -> none" in result.error
    assert "REFUSED" in driver.describe(1, 1, result)
    assert (
        execution.execute(dataclasses.replace(other, overwrite=True), train=False) is None
    )  # it would train
    same = dataclasses.replace(
        other, overrides={**other.overrides, "kl_anneal_type": "cyclical"}, name="cyclical"
    )
    assert execution.execute(same, train=False).status == "complete"
    assert execution.notebook_parameters(dataclasses.replace(other, overwrite=True))["overwrite"] is True


@pytest.mark.timeout(420)
def test_02_train_with_only_the_schedule_changed_trains_into_a_new_folder(tiny_root, tmp_path, monkeypatch):
    """The notebook's defaults (name None, resume True) as a student leaves them: another schedule is another
    run folder, and the first run is untouched."""
    monkeypatch.setenv("LAB4_HOME", str(tmp_path))  # the kernel inherits it: runs/<profile>/<name> under it
    params = dict(profile="tiny", data_root=str(tiny_root), num_epoch=1, extra=dict(FAST, predict=False))
    execution.execute_notebook(execution.TRAIN_NB, tmp_path / "a.ipynb", params)
    first = tmp_path / "runs" / "tiny" / "cyclical"
    before = digests(first)
    execution.execute_notebook(
        execution.TRAIN_NB, tmp_path / "b.ipynb", {**params, "kl_anneal_type": "monotonic"}
    )
    second = tmp_path / "runs" / "tiny" / "monotonic"
    assert json.loads((second / "summary.json").read_text())["kl_anneal_type"] == "monotonic"
    assert digests(first) == before


def test_the_students_gpu_profile_is_the_measured_recipe():
    """`full` keeps the course template's optimisation (batch 2, Adam at lr 1e-3, clip at norm 1, the KL
    summed, gamma 0.1) with the milestones moved later as the best public run moved them; only speed options
    on top."""
    full, lab = make_config("full"), make_config("lab")
    template = dict(
        batch_size=2,
        lr=1e-3,
        clip_grad=1.0,
        kl_weight=1.0,
        gamma=0.1,
        kl_beta_max=1.0,
        free_bits=0.0,
        tfr=1.0,
        tfr_sde=10,
        tfr_d_step=0.1,
        kl_anneal_type="cyclical",
        kl_anneal_cycle=10,
        kl_anneal_ratio=1.0,
        num_epoch=70,
        train_vi_len=16,
        F_dim=128,
        L_dim=32,
        N_dim=12,
        D_out_dim=192,
    )
    for key, value in template.items():
        assert getattr(full, key) == value == getattr(lab, key), key
    assert full.milestones == (16, 26)  # 60 and 100 of 270 epochs, at the lab's 70
    speed = {"amp", "channels_last", "compile", "fused_adam", "cuda_graphs"}
    changed = {k for k in PROFILES["full"] if getattr(full, k) != getattr(lab, k)}
    assert changed == speed | {"synth_preset", "milestones", "val_every"}
    b16 = make_config("full-b16")
    assert (b16.batch_size, b16.lr) == (16, 2e-3) and b16.milestones == full.milestones
