"""The notebooks run under papermill with the lab4 kernel, produce their files, export to HTML, and are
committed clean (no outputs, a tagged parameters cell)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from lab4 import experiments

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Smaller than the tiny profile's default so each notebook trains in seconds (1 epoch of short clips).
FAST = dict(num_epoch=1, extra=dict(train_vi_len=4, partial=0.5))
RUN_FILES = ["metrics.csv", "psnr_per_frame.csv", "psnr_per_frame.png", "config.json", "last.pt", "samples.png",
             "pred_seq0.gif", "submission.csv", "summary.json", "02_train.ipynb"]
SUMMARY_KEYS = {"name", "profile", "kl_anneal_type", "tfr", "tfr_sde", "tfr_d_step", "seed", "mean_psnr", "mean_ssim",
                "baseline_mean_psnr", "public", "private", "wall_seconds", "device", "epochs"}


def execute(notebook: str, out: Path, **params) -> nbformat.NotebookNode:
    experiments.execute_notebook(NOTEBOOKS / notebook, out, params)
    return nbformat.read(str(out), as_version=4)


@pytest.fixture(scope="module")
def train_run(tiny_root, tmp_path_factory) -> Path:
    """One executed 02_train (tiny profile), shared by the tests below; its run folder sits in runs/."""
    run_dir = tmp_path_factory.mktemp("nb_runs") / "tiny-nb"
    run_dir.mkdir()
    execute("02_train.ipynb", run_dir / "02_train.ipynb", profile="tiny", name="tiny-nb", data_root=str(tiny_root),
            run_dir=str(run_dir), **FAST)
    return run_dir


def test_train_notebook_writes_the_run(train_run):
    for f in RUN_FILES:
        assert (train_run / f).is_file(), f
    summary = json.loads((train_run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["name"] == "tiny-nb" and summary["profile"] == "tiny" and summary["epochs"] == 1
    assert summary["device"].startswith("cpu")
    assert isinstance(summary["mean_psnr"], float) and isinstance(summary["public"], float)  # SynthDance has test_gt
    cfg = json.loads((train_run / "config.json").read_text())
    assert cfg["train_vi_len"] == 4 and cfg["num_epoch"] == 1  # `extra` and flat parameters both reach the config
    assert "epoch" in (train_run / "metrics.csv").read_text()


def test_dataset_notebook_runs(tiny_root, tmp_path):
    nb = execute("01_dataset.ipynb", tmp_path / "01.ipynb", data_root=str(tiny_root), split="val")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "val: 24 frames" in text


def test_explore_notebook_builds_widgets(train_run, tmp_path):
    nb = execute("04_explore.ipynb", tmp_path / "04.ipynb", runs_dir=str(train_run.parent), run="tiny-nb")
    kinds = [k for c in nb.cells if c.cell_type == "code" for o in c.outputs for k in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" in kinds and "image/png" in kinds


def test_html_export_of_an_executed_notebook(train_run, tmp_path):
    assert experiments.run_html(train_run.parent, tmp_path / "build") == 0
    html = tmp_path / "build" / "html" / "tiny-nb__02_train.html"
    assert html.is_file() and "summary.json" in html.read_text()


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "lab4"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    for c in code:
        assert c.outputs == [] and c.execution_count is None, f"{path.name}: commit notebooks without outputs"


def test_driver_knows_the_train_notebook_parameters():
    params = pm.inspect_notebook(str(NOTEBOOKS / "02_train.ipynb"))
    assert set(experiments.NOTEBOOK_PARAMS) | {"resume", "extra"} == set(params)


def test_driver_kernels_start_quietly(tmp_path):
    """A notebook run by the driver leaves the terminal to the driver: no kernel log lines on stderr."""
    import subprocess
    import sys
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7")]
    nbformat.write(nb, str(tmp_path / "in.ipynb"))
    code = ("import sys; from lab4 import experiments; "
            "experiments.execute_notebook(sys.argv[1], sys.argv[2], {})")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "IPKernelApp" not in r.stderr, r.stderr
    assert nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells[0].execution_count == 1
