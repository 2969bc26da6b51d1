"""Interactive work does not dirty the repository: the git filter that `make setup` installs keeps notebooks
committed without outputs (a notebook saved with outputs, as JupyterLab autosaves it, shows no diff; the
committed notebooks pass through unchanged; a real edit still shows); and `make lab` starts as the browser
test does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )


def filtered_repo(path: Path, notebooks=NOTEBOOKS) -> Path:
    """A new git repository with this project's .gitattributes and ``notebooks`` committed, set up like `make
    setup`."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path.mkdir()
    assert git(path, "init", "-q").returncode == 0
    shutil.copy(ROOT / ".gitattributes", path / ".gitattributes")
    (path / "notebooks").mkdir()
    for nb in notebooks:
        shutil.copy(nb, path / "notebooks" / nb.name)
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install_git_filters.sh"), sys.executable],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert git(path, "add", "-A").returncode == 0
    r = git(path, "commit", "-q", "-m", "notebooks")
    assert r.returncode == 0, r.stderr
    return path


def save_as_jupyterlab_does(path: Path) -> None:
    """Outputs, execution counts and the metadata JupyterLab and papermill add when they save, and the
    kernelspec of the kernel it ran: the stock python3, as ipykernel registers it."""
    from ipykernel.kernelspec import get_kernel_dict

    nb = nbformat.read(str(path), as_version=4)
    spec = get_kernel_dict()
    nb.metadata.kernelspec = dict(
        name="python3", display_name=spec["display_name"], language=spec["language"]
    )
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        figure = {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="}
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=f"run {i}\n"),
            nbformat.v4.new_output("display_data", data=figure),
        ]
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
        cell.metadata["scrolled"] = True
    nb.metadata.language_info.update(
        version="3.11.7",
        mimetype="text/x-python",
        file_extension=".py",
        codemirror_mode={"name": "ipython", "version": 3},
        pygments_lexer="ipython3",
        nbconvert_exporter="python",
    )
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, str(path))


def test_committed_notebooks_pass_the_filter_unchanged(tmp_path):
    repo = filtered_repo(tmp_path / "repo")
    for nb in NOTEBOOKS:
        staged = git(repo, "show", f":notebooks/{nb.name}").stdout
        assert staged == nb.read_text(), f"{nb.name}: the filter would change the committed notebook"


def test_a_notebook_saved_with_outputs_shows_no_diff(tmp_path):
    repo = filtered_repo(tmp_path / "repo", [ROOT / "notebooks" / "02_train.ipynb"])
    nb_path = repo / "notebooks" / "02_train.ipynb"
    save_as_jupyterlab_does(nb_path)
    assert '"outputs": []' not in nb_path.read_text().split('"cell_type": "code"')[1][:2000]  # it has outputs
    r = git(repo, "diff", "--exit-code", "--stat")
    assert r.returncode == 0, r.stdout
    # tags survive the filter, and a real edit is still a change (without outputs in the diff)
    staged = nbformat.reads(git(repo, "show", ":notebooks/02_train.ipynb").stdout, as_version=4)
    assert "parameters" in [c for c in staged.cells if c.cell_type == "code"][0].metadata.tags
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells[0].source += "\nOne more line."
    nbformat.write(nb, str(nb_path))
    r = git(repo, "diff", "--no-textconv", "--exit-code")
    assert r.returncode == 1 and "One more line." in r.stdout and "run 0" not in r.stdout


def test_make_lab_opens_a_landing_notebook_with_the_lab4_kernel_even_as_root():
    """The flags tests/test_browser.py starts its server with are the ones `make lab` uses."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = r.stdout[r.stdout.index("jupyter lab") :]
    assert "--MappingKernelManager.default_kernel_name=lab4" in line
    assert re.search(r"--LabApp\.default_url=/lab/tree/notebooks/0[24]_(explore|train)\.ipynb", line)
    assert ("--allow-root" in line) == (os.getuid() == 0)
