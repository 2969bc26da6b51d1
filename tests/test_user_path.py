"""The real user's path: a dataset at a relative path, given by make, $LAB4_DATA or the CLI; a run that
remembers its data; lab4 installed with pip from another folder; `make experiments` + figures from a
relative DATA outside the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab4.cli import main
from lab4.config import make_config
from lab4.datasets import official as D
from lab4.grid import execution
from lab4.run.folder import RunDir

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "--F-dim",
    "8",
    "--L-dim",
    "4",
    "--N-dim",
    "4",
    "--D-out-dim",
    "8",
    "--device",
    "cpu",
    "--num-epoch",
    "1",
]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and re.match(r"lab4 [a-z-]+: error: ", err[0]), err
    return err[0]


# -- item 1: a relative path is resolved where it was typed ---------------------------------------
def test_relative_data_root_lab4_data_and_grid_paths_become_absolute(tiny_root, tmp_path, monkeypatch):
    here = tmp_path / "work" / "sub"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    rel = os.path.relpath(tiny_root, here)  # ../../../data0/synthdance-tiny or the like
    assert not Path(rel).is_absolute()
    assert make_config("tiny", data_root=rel).data_root == str(tiny_root)
    monkeypatch.setenv("LAB4_DATA", rel)
    assert D.resolve_data_root("") == tiny_root
    # the driver hands each notebook (run in notebooks/) absolute paths, from $LAB4_DATA or a grid override
    run = execution.Entry("x", {}, Path("runs/x"), "tiny")
    params = execution.notebook_parameters(run)
    assert params["data_root"] == str(tiny_root) and params["run_dir"] == str(here / "runs" / "x")
    monkeypatch.delenv("LAB4_DATA")
    params = execution.notebook_parameters(execution.Entry("x", {"data_root": rel}, Path("r"), "tiny"))
    assert params["data_root"] == str(tiny_root)


def test_cli_data_root_relative_to_the_callers_folder(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(tiny_root, tmp_path)
    assert main(["train", "--profile", "tiny", "--data-root", rel, "--run-dir", "r", *SMALL]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data_root"] == str(tiny_root) and cfg["run_dir"] == str(tmp_path / "r")


def _make_lab4_data(cwd, env, *args) -> str:
    """$LAB4_DATA as the repository's Makefile exports it to its recipes, run from ``cwd``."""
    r = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(ROOT / "Makefile"),
            "--eval",
            'show-data: ; @echo "[$$LAB4_DATA]"',
            "show-data",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@needs_make
def test_make_resolves_data_and_honours_an_exported_lab4_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LAB4_DATA", "DATA", "MAKEFLAGS")}
    assert _make_lab4_data(tmp_path, env) == "[]"
    assert _make_lab4_data(tmp_path, env, "DATA=../ds") == f"[{tmp_path.parent / 'ds'}]"
    assert _make_lab4_data(tmp_path, env, "DATA=/abs/ds") == "[/abs/ds]"
    env["LAB4_DATA"] = "mine/ds"  # exported by the user, no DATA: kept (made absolute), not cleared
    assert _make_lab4_data(tmp_path, env) == f"[{tmp_path / 'mine' / 'ds'}]"
    assert _make_lab4_data(tmp_path, env, "DATA=other") == f"[{tmp_path / 'other'}]"  # DATA wins


# -- item 2: a run remembers its data ---------------------------------------------------------------
def test_run_records_its_dataset_and_refuses_a_changed_or_missing_one(
    tiny_root, tmp_path, monkeypatch, capsys
):
    data = tmp_path / "my data"
    shutil.copytree(tiny_root, data)
    run = tmp_path / "run"
    assert main(["train", "--profile", "tiny", "--data-root", str(data), "--run-dir", str(run), *SMALL]) == 0
    cfg = json.loads((run / "config.json").read_text())
    rec = cfg["dataset"]
    assert cfg["data_root"] == rec["root"] == str(data)
    assert (
        rec["train"]["frames"] == len(D.load_split(data, "train", progress=False))
        and rec["val"]["frames"] == 24
    )
    assert (
        rec["val"]["key"] == D.load_split(data, "val", progress=False).key and len(rec["train"]["key"]) == 24
    )
    assert RunDir(run).dataset() == data

    monkeypatch.setenv("LAB4_DATA", str(tiny_root))  # a variable set later does not redirect the run
    assert RunDir(run).dataset() == data
    monkeypatch.delenv("LAB4_DATA")

    # changed: one file rewritten -> one line naming the run and its dataset
    frame = data / "val" / "val_img" / "frame3.png"
    frame.write_bytes(frame.read_bytes())
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run), "--device", "cpu"]) == 2
    line = _one_line(capsys)
    assert str(run) in line and str(data) in line and "no longer matches" in line
    # told otherwise: --data-root wins, no check
    assert main(["evaluate", "--run-dir", str(run), "--data-root", str(tiny_root), "--device", "cpu"]) == 0
    capsys.readouterr()
    # gone
    shutil.rmtree(data)
    assert main(["predict", "--run-dir", str(run), "--device", "cpu"]) == 2
    line = _one_line(capsys)
    assert str(run) in line and str(data) in line and "is gone" in line


def test_a_synthdance_run_records_the_generated_dataset(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB4_HOME", str(tmp_path / "home"))
    # as `make-data` would leave it
    shutil.copytree(tiny_root, tmp_path / "home" / "data" / "synthdance-tiny")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--profile", "tiny", *SMALL]) == 0  # no dataset named: SynthDance tiny
    cfg = json.loads((tmp_path / "home" / "runs" / "tiny" / "cyclical" / "config.json").read_text())
    assert cfg["data_root"] == cfg["dataset"]["root"] == str(tmp_path / "home" / "data" / "synthdance-tiny")


# -- item 4: installed with pip, used from another folder ------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_pip_installed_package_works_from_any_folder(tiny_root, tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "lab4", src / "lab4", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    site = tmp_path / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-compile",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    user = tmp_path / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LAB4_DATA", "LAB4_HOME", "LAB4_CACHE")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")

    def lab4(*args, **extra):
        return subprocess.run(
            [sys.executable, "-m", "lab4", *args],
            cwd=user,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    r = subprocess.run(
        [sys.executable, "-c", "import lab4.util.paths as p; print(p.PACKAGE_DIR, p.checkout(), p.home())"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.stdout.split() == [str(site / "lab4"), "None", str(user)], r.stderr
    r = lab4("train", "--profile", "tiny", "--data-root", os.path.relpath(tiny_root, user), *SMALL)
    assert r.returncode == 0, r.stderr
    assert (user / "runs" / "tiny" / "cyclical" / "last.pt").is_file() and any(
        (user / "data" / "cache").iterdir()
    )
    home = tmp_path / "home"
    r = lab4("make-data", "--preset", "tiny", LAB4_HOME=str(home))
    assert r.returncode == 0, r.stderr
    assert (home / "data" / "synthdance-tiny" / "synthdance.json").is_file()
    assert not any(p.name in ("data", "runs") for p in site.iterdir())  # nothing written next to the package
    # the driver needs the checkout's notebooks: one line saying so
    r = subprocess.run(
        [sys.executable, "-m", "lab4", "grid", "--profile", "tiny"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "repository checkout" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- "done when": make experiments + figures from a relative DATA outside the repository ------------
@needs_make
@pytest.mark.slow
@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_make_experiments_and_figures_from_a_relative_dataset_outside_the_repo(tiny_root, tmp_path):
    data = tmp_path / "LAB4_Dataset"
    shutil.copytree(tiny_root, data)
    runs, build = tmp_path / "runs", tmp_path / "build"
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        json.dumps(
            {
                "experiments": [
                    {
                        "name": "one",
                        "overrides": dict(F_dim=8, L_dim=4, N_dim=4, D_out_dim=8, num_epoch=1, device="cpu"),
                    }
                ]
            }
        )
    )
    rel = os.path.relpath(data, ROOT)  # as a user types it: ../somewhere/LAB4_Dataset
    assert rel.startswith("..")
    env = {k: v for k, v in os.environ.items() if k not in ("LAB4_DATA", "DATA", "MAKEFLAGS")}
    # -o setup: the venv is ready; don't let make re-install it because pyproject.toml is newer
    cmd = [
        "make",
        "-s",
        "-C",
        str(ROOT),
        "-o",
        "setup",
        "-o",
        ".venv/.installed",
        "experiments",
        f"DATA={rel}",
        "PROFILE=tiny",
        f"GRID={grid}",
        f"RUNS={runs}",
        "JOBS=1",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    cfg = json.loads((runs / "one" / "config.json").read_text())
    assert cfg["data_root"] == cfg["dataset"]["root"] == str(data)
    assert json.loads((runs / "one" / "summary.json").read_text())["epochs"] == 1
    # the figures, into temp folders (make figures would write the repository's figures/)
    rc = main(
        [
            "report",
            "figures",
            "--runs",
            str(runs),
            "--build",
            str(build),
            "--figures-dir",
            str(tmp_path / "figures"),
            "--generated-dir",
            str(tmp_path / "gen"),
        ]
    )
    assert rc == 0
    assert any((tmp_path / "figures").iterdir()) and any((tmp_path / "gen").iterdir())
