"""The notebooks run under papermill with the lab4 kernel, produce their files, export to HTML, and are
committed clean (no outputs, a tagged parameters cell)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from lab4.grid import execution
from lab4.report.html import run_html
from lab4.util import notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Smaller than the tiny profile's default so each notebook trains in seconds (1 epoch of short clips).
FAST = dict(num_epoch=1, extra=dict(train_vi_len=4, partial=0.5))
RUN_FILES = [
    "metrics.csv",
    "psnr_per_frame.csv",
    "psnr_per_frame.png",
    "config.json",
    "last.pt",
    "samples.png",
    "pred_seq0.gif",
    "submission.csv",
    "summary.json",
    "02_train.ipynb",
    "curves.png",
    "val_summary.json",
]
SUMMARY_KEYS = {
    "name",
    "profile",
    "kl_anneal_type",
    "tfr",
    "tfr_sde",
    "tfr_d_step",
    "seed",
    "mean_psnr",
    "mean_ssim",
    "baseline_mean_psnr",
    "public",
    "private",
    "wall_seconds",
    "device",
    "epochs",
    "speed",
    "speed_fallback",
}


def execute(notebook: str, out: Path, **params) -> nbformat.NotebookNode:
    execution.execute_notebook(NOTEBOOKS / notebook, out, params)
    return nbformat.read(str(out), as_version=4)


@pytest.fixture(scope="module")
def train_run(tiny_root, tmp_path_factory) -> Path:
    """One executed 02_train (tiny profile), shared by the tests below; its run folder sits in runs/."""
    run_dir = tmp_path_factory.mktemp("nb_runs") / "tiny-nb"
    run_dir.mkdir()
    execute(
        "02_train.ipynb",
        run_dir / "02_train.ipynb",
        profile="tiny",
        name="tiny-nb",
        data_root=str(tiny_root),
        run_dir=str(run_dir),
        **FAST,
    )
    return run_dir


def test_train_notebook_writes_the_run(train_run):
    for f in RUN_FILES:
        assert (train_run / f).is_file(), f
    summary = json.loads((train_run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["name"] == "tiny-nb" and summary["profile"] == "tiny" and summary["epochs"] == 1
    assert summary["device"].startswith("cpu")
    assert summary["speed"] == dict(
        amp=False, channels_last=False, compile=False, cuda_graphs=False, fused_adam=False
    )
    assert summary["speed_fallback"] is None
    # SynthDance has test_gt
    assert isinstance(summary["mean_psnr"], float) and isinstance(summary["public"], float)
    cfg = json.loads((train_run / "config.json").read_text())
    # `extra` and flat parameters both reach the config
    assert cfg["train_vi_len"] == 4 and cfg["num_epoch"] == 1
    assert "epoch" in (train_run / "metrics.csv").read_text()


def test_dataset_notebook_runs(tiny_root, tmp_path):
    nb = execute("01_dataset.ipynb", tmp_path / "01.ipynb", data_root=str(tiny_root), split="val")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "val: 24 frames" in text


@pytest.mark.timeout(330)
def test_explore_notebook_builds_widgets(train_run, tmp_path, monkeypatch):
    """A widget cell can, rarely and only under load, wait forever on a reply that has arrived (the nbclient
    hang of docs/timings.md; once in a clean-clone suite on two busy cores): a 90 s cell deadline ends such
    an execution and it is run once more, as the grid retries a run. A notebook that fails twice fails."""
    monkeypatch.setenv("LAB4_CELL_DEADLINE", "90")
    for attempt in range(2):
        try:
            nb = execute(
                "04_explore.ipynb",
                tmp_path / f"04-{attempt}.ipynb",
                runs_dir=str(train_run.parent),
                run="tiny-nb",
            )
            break
        except notebooks.NotebookStopped:
            if attempt:
                raise
    kinds = [k for c in nb.cells if c.cell_type == "code" for o in c.outputs for k in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" in kinds and "image/png" in kinds


def test_html_export_of_an_executed_notebook(train_run, tmp_path):
    assert run_html(train_run.parent, tmp_path / "build") == 0
    html = tmp_path / "build" / "html" / "tiny-nb__02_train.html"
    assert html.is_file() and "summary.json" in html.read_text()


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    # the stock kernelspec, which Colab, Kaggle and VS Code look for, named as ipykernel names it (so a save
    # from JupyterLab changes nothing); the driver names its `lab4` kernel itself
    spec = nb.metadata.kernelspec
    assert (spec.name, spec.display_name) == ("python3", "Python 3 (ipykernel)")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    for c in code:
        assert c.outputs == [] and c.execution_count is None, f"{path.name}: commit notebooks without outputs"


def test_train_parameters_cell_is_the_one_flat_list(tmp_path):
    """02_train's parameters cell: flat literals named like Config fields (plus resume, overwrite, extra); the
    driver reads its flat list from there, passes those flat and any other field in `extra`, and the notebook
    builds its config from them."""
    import ast

    from lab4.config import FIELDS
    from lab4.run.pipeline import notebook_config

    nb = nbformat.read(str(NOTEBOOKS / "02_train.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    names = []
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        names.append(node.targets[0].id)
        ast.literal_eval(node.value)  # a literal: derived values belong in the next cell
    flat = set(names) - {"resume", "overwrite", "extra"}
    assert (
        {"resume", "overwrite", "extra"} < set(names)
        and flat <= FIELDS
        and "lr" in flat
        and "milestones" not in flat
    )
    assert execution.notebook_flat_params() == flat
    params = execution.notebook_parameters(
        execution.Entry("r", {"lr": 0.01, "milestones": (3, 4)}, tmp_path, "tiny")
    )
    assert params["lr"] == 0.01 and params["extra"] == {"milestones": [3, 4]} and "milestones" not in params
    cfg = notebook_config({**params, "batch_size": None, "In": [], "_": None})  # a kernel's globals()
    assert (cfg.lr, cfg.milestones, cfg.name, cfg.profile, cfg.run_dir) == (
        0.01,
        (3, 4),
        "r",
        "tiny",
        str(tmp_path),
    )
    assert cfg.batch_size == 2  # None keeps the profile's value
    assert notebook_config(dict(profile="tiny", name="n", run_dir="", extra={"lr": 0.5}, lr=None)).lr == 0.5
    assert notebook_config(dict(profile="tiny", name="n", run_dir="")).run_dir.endswith("runs/tiny/n")


def test_parameter_comments_agree_with_the_config():
    """A parameter named like a Config field has a comment that starts with the first sentence of the field's
    help (lab4/config/fields.py), then the notebook's own note; an enumeration's comment names every choice.
    So a notebook says what `lab4 train --help` and docs/config.md say."""
    import ast
    import io
    import re
    import tokenize

    from lab4.config import FIELDS, choices, summary

    wrong, checked = [], 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        source = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        comments = {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}
        for node in ast.parse(source).body:
            name = node.targets[0].id if isinstance(node, ast.Assign) else None
            if name not in FIELDS:
                continue
            checked += 1
            comment = comments.get(node.lineno, "")
            missing = set(choices(name)) - set(re.findall(r"[\w:-]+", comment))
            if not comment.startswith(summary(name)) or missing:
                wrong.append(f"{path.name}: {name}: {comment!r} should start with {summary(name)!r}")
                wrong += [f"    and name {', '.join(sorted(missing))}"] if missing else []
    assert not wrong, "\n".join(wrong)
    assert checked >= 20  # 01_dataset's, 02_train's and 04_explore's


def test_driver_kernels_start_quietly(tmp_path):
    """A notebook run by the driver leaves the terminal to the driver: no kernel log lines on stderr."""
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7")]
    nbformat.write(nb, str(tmp_path / "in.ipynb"))
    code = (
        "import sys; from lab4.grid import execution; "
        "execution.execute_notebook(sys.argv[1], sys.argv[2], {})"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "IPKernelApp" not in r.stderr, r.stderr
    assert nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells[0].execution_count == 1
