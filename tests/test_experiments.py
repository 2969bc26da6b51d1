"""The experiment driver: runs a grid through 02_train, skips finished runs, survives a failing run,
respects another driver's lock, and rejects bad grids in one line (exit 2)."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from lab4 import experiments
from lab4.experiments import main

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(num_epoch=1, train_vi_len=4, partial=0.5)


def write_grid(path: Path, entries) -> Path:
    path.write_text(yaml.safe_dump({"experiments": entries}))
    return path


@pytest.fixture(scope="module")
def grid_run(tiny_root, tmp_path_factory):
    """A good run and one whose data_root does not exist, both at once: (grid, runs, exit code, stdout+err)."""
    tmp = tmp_path_factory.mktemp("driver")
    ok = {**FAST, "data_root": str(tiny_root)}
    grid = write_grid(tmp / "grid.yaml", [
        {"name": "ok-a", "overrides": {**ok, "kl_anneal_type": "monotonic"}},
        {"name": "bad", "overrides": {**FAST, "data_root": str(tmp / "no-such-data")}},
    ])
    runs = tmp / "runs"
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(["--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--jobs", "2"])
    return grid, runs, code, out.getvalue()


def test_failing_run_is_reported_and_others_complete(grid_run):
    grid, runs, code, out = grid_run
    assert code == 1, out
    summary = json.loads((runs / "ok-a" / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["name"] == "ok-a" and summary["kl_anneal_type"] == "monotonic"
    assert "[2/2] ok-a: done in" in out or "[1/2] ok-a: done in" in out
    failed_nb = runs / "bad" / "02_train.ipynb"
    assert failed_nb.is_file()  # the failed notebook is kept, with the error in it
    assert "Lab4Error" in failed_nb.read_text()
    line = next(l for l in out.splitlines() if l.strip().startswith("bad:"))
    assert str(failed_nb) in line and "Lab4Error" in line and "does not exist" in line


def test_rerun_skips_completed_runs(grid_run, capsys):
    grid, runs, _, _ = grid_run
    before = (runs / "ok-a" / "summary.json").stat().st_mtime_ns
    assert main(["--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--only", "ok-*"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped (already complete)") == 1
    assert (runs / "ok-a" / "summary.json").stat().st_mtime_ns == before


def test_locked_run_is_skipped_with_a_message(grid_run, capsys):
    grid, runs, _, _ = grid_run
    with FileLock(str(runs / "ok-a" / ".driver.lock")):
        code = main(["--grid", str(grid), "--profile", "tiny", "--runs", str(runs), "--only", "ok-a"])
    captured = capsys.readouterr()
    assert code == experiments.EXIT_LOCKED
    assert "skipped: ok-a is being run by another process" in captured.out


def test_parameters_split_into_flat_and_extra(tmp_path):
    run = experiments.Run("x", {"tfr": 0.5, "milestones": (3,), "F_dim": 8}, tmp_path / "x", "tiny")
    params = experiments.notebook_parameters(run)
    assert params["tfr"] == 0.5 and params["extra"] == {"milestones": [3], "F_dim": 8}
    assert params["run_dir"] == str(tmp_path / "x") and params["resume"] is True


def test_committed_grid_is_valid():
    names = [n for n, _ in experiments.load_grid(ROOT / "experiments.yaml", "quick")]
    assert names == ["cyclical", "monotonic", "none", "tf-off", "tf-half"]
    full = [n for n, _ in experiments.load_grid(ROOT / "experiments.yaml", "full")]
    assert {"cyclical-s1", "monotonic-s2", "none-s1"} <= set(full) and len(full) == 11


@pytest.mark.parametrize("text, message", [
    (None, "no such grid file"),
    ("experiments: [name: x\n", "bad YAML"),
    ("experiments:\n  - name: x\n    overrides: {not_a_field: 1}\n", "unknown config field(s) not_a_field"),
    ("experiments:\n  - name: x\n    overrides: {tfr: 2.0}\n", "tfr must be in [0, 1]"),
    ("experiments:\n  - name: x\n    overrides: {run_dir: y}\n", "set by the driver"),
    ("experiments:\n  - name: x\n  - name: x\n", "duplicate run name"),
])
def test_bad_grid_is_one_line_exit_2(tmp_path, capsys, text, message):
    grid = tmp_path / "grid.yaml"
    if text is not None:
        grid.write_text(text)
    assert main(["--grid", str(grid), "--profile", "tiny", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_profile_and_only(tmp_path, capsys):
    grid = write_grid(tmp_path / "grid.yaml", [{"name": "x"}])
    assert main(["--grid", str(grid), "--profile", "huge", "--runs", str(tmp_path)]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
    assert main(["--grid", str(grid), "--profile", "tiny", "--runs", str(tmp_path), "--only", "y"]) == 2
    assert "--only y: no such run" in capsys.readouterr().err


def test_figures_and_html_need_a_runs_folder(tmp_path, capsys):
    missing = str(tmp_path / "nothing")
    assert main(["--html", "--runs", missing, "--build", str(tmp_path / "build")]) == 2
    assert "no such runs folder" in capsys.readouterr().err
    if experiments.COMPARE_NB.is_file():
        assert main(["--figures", "--runs", missing, "--build", str(tmp_path / "build")]) == 2
        assert "no such runs folder" in capsys.readouterr().err


def test_prepare_data_decodes_each_dataset_once_and_skips_bad_ones(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB4_CACHE", str(tmp_path / "cache"))
    good = {**FAST, "data_root": str(tiny_root)}
    runs = [experiments.Run("a", good, tmp_path / "a", "tiny"),
            experiments.Run("b", {**good, "kl_anneal_type": "none"}, tmp_path / "b", "tiny"),
            experiments.Run("bad", {**FAST, "data_root": str(tmp_path / "missing")}, tmp_path / "bad", "tiny")]
    experiments.prepare_data(runs)  # the missing dataset is left for its run's notebook to report
    cached = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").glob("*.pt"))
    tag = tiny_root.resolve().name
    assert cached == [f"{tag}-test", f"{tag}-test_gt", f"{tag}-train", f"{tag}-val"]
