"""The notebooks as Colab, Kaggle or VS Code run them (docs/colab.md): their own kernelspec, the stock
``python3``, in an environment where lab4 is pip-installed (not editable), from a folder outside the
checkout, with the dataset given by $LAB4_DATA alone. The driver's ``lab4`` kernel plays no part."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Each notebook's parameters, as a user would set them; the dataset comes from $LAB4_DATA. 02 trains one
# epoch of short clips (as tests/test_notebooks.py does) into runs/tiny/tiny-nb under the working folder.
PARAMETERS = {
    "01_dataset.ipynb": dict(split="val"),
    "02_train.ipynb": dict(
        profile="tiny", name="tiny-nb", num_epoch=1, extra=dict(train_vi_len=4, partial=0.5)
    ),
    "03_compare.ipynb": dict(runs_dir="runs/tiny", fresh_rollout=False),
    "04_explore.ipynb": dict(run="tiny/tiny-nb"),
}
# Runs in the new environment: papermill without a kernel name takes each notebook's own kernelspec.
DRIVER = """
import json, sys, time
import papermill as pm
from lab4.util.paths import checkout
assert checkout() is None, "lab4 runs from the checkout, not from the installed package"
notebooks, parameters = sys.argv[1], json.loads(sys.argv[2])
for name, params in parameters.items():
    t0 = time.perf_counter()
    pm.execute_notebook(f"{notebooks}/{name}", name, parameters=params, progress_bar=False,
                        execution_timeout=120, start_timeout=120)
    print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
"""


def stock_env(base: Path) -> Path:
    """A new venv with lab4 pip-installed from a copy of the checkout (so the build leaves nothing in it), not
    editable; its other packages are this environment's, on its path through a .pth file, as
    ``--system-site-packages`` would give them where torch is a system package. That file only adds the
    folder: the editable install's own .pth files there are not run, so the checkout stays out of reach."""
    src = base / "src"
    shutil.copytree(ROOT / "lab4", src / "lab4", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(site, "this_envs_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: leave this environment's editable lab4 alone
    r = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile"]
        + ["--ignore-installed", "--disable-pip-version-check", str(src)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return python


def outputs(nb) -> tuple[str, list[str]]:
    """The text a notebook printed, and the MIME types it displayed."""
    code = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return "".join(o.get("text", "") for o in code), [k for o in code for k in o.get("data", {})]


@pytest.mark.slow
# four kernels and a pip install: 100 s on 2 cores with a load of 1-2, 195 s with a load of 7-9
@pytest.mark.timeout(420)
def test_notebooks_run_on_a_stock_python3_kernel_from_an_installed_lab4(tiny_root, tmp_path):
    for name in PARAMETERS:
        spec = nbformat.read(str(NOTEBOOKS / name), as_version=4).metadata.kernelspec
        assert (spec.name, spec.display_name) == ("python3", "Python 3 (ipykernel)"), name
    python = stock_env(tmp_path)
    user = tmp_path / "content"  # Colab's working folder
    user.mkdir()
    jupyter = tmp_path / "jupyter"  # no kernels registered by the user: python3 is the environment's own
    drop = ("JUPYTER_PATH", "PYTHONPATH", "VIRTUAL_ENV", "LAB4_HOME", "LAB4_CACHE", "LAB4_RUNS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        LAB4_DATA=str(tiny_root),
        OMP_NUM_THREADS="1",
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
    )
    r = subprocess.run(
        [str(python), "-c", DRIVER, str(NOTEBOOKS), json.dumps(PARAMETERS)],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    text, shown = outputs(nbformat.read(str(user / "01_dataset.ipynb"), as_version=4))
    assert f"dataset: {tiny_root}" in text and "val: 24 frames" in text
    # the run, the figures and the report's numbers land under the working folder
    run = user / "runs" / "tiny" / "tiny-nb"
    assert json.loads((run / "summary.json").read_text())["epochs"] == 1
    assert json.loads((run / "config.json").read_text())["data_root"] == str(tiny_root)
    assert (user / "figures" / "strip.png").is_file()
    assert (user / "report" / "generated" / "macros.tex").is_file()
    text, shown = outputs(nbformat.read(str(user / "04_explore.ipynb"), as_version=4))
    assert "application/vnd.jupyter.widget-view+json" in shown and "image/png" in shown
    assert (user / "data" / "cache").is_dir()  # the decode cache too, never the dataset's folder
