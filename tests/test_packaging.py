"""environment.yml agrees with pyproject.toml, every third-party import under lab4/ is declared, and the
Makefile sets up whichever environment is active (else .venv)."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())
IMPORT_TO_DIST = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "skimage": "scikit-image",
    "ipywidgets": "ipywidgets",
    "IPython": "ipython",
}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(req: str) -> str:
    return re.sub(r"\s+", "", req[len(re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0]) :])


def _deps():
    return {_name(r): r for r in PYPROJECT["project"]["dependencies"]}


def _env_entries():
    conda, pip = [], []
    for d in ENV["dependencies"]:
        if isinstance(d, dict):
            pip.extend(d.get("pip", []))
        else:
            conda.append(str(d))
    return conda, pip


def test_env_pip_block_installs_project_with_dev():
    _, pip = _env_entries()
    assert any(re.fullmatch(r"-e\s+\.\[dev\]", p.strip()) for p in pip), pip
    assert "dev" in PYPROJECT["project"]["optional-dependencies"]


def test_env_gets_its_packages_from_pyproject_alone():
    """One list of packages: the conda environment is a Python, pip and `-e .[dev]`, named after the project
    (`conda activate lab4`)."""
    conda, pip = _env_entries()
    assert sorted(_name(c) for c in conda) == ["pip", "python"], conda
    assert [re.sub(r"\s+", " ", p.strip()) for p in pip] == ["-e .[dev]"], pip
    assert ENV["name"] == PYPROJECT["project"]["name"]


def test_env_python_satisfies_requires_python():
    conda, _ = _env_entries()
    py = [c for c in conda if _name(c) == "python"]
    assert len(py) == 1
    version = tuple(int(x) for x in re.findall(r"\d+", py[0].split("=", 1)[1])[:2])
    req = PYPROJECT["project"]["requires-python"]
    for op, ver in re.findall(r"(>=|<=|==|<|>|~=)\s*([\d.]+)", req):
        v = tuple(int(x) for x in ver.split(".")[:2])
        assert {
            ">=": version >= v,
            ">": version > v,
            "<": version < v,
            "<=": version <= v,
            "==": version == v,
            "~=": version >= v,
        }[op], (py[0], req)
    assert re.findall(r"(>=|<=|==|<|>|~=)", req)


def test_env_pins_nothing_differently_from_pyproject():
    conda, pip = _env_entries()
    deps = {**_deps(), **{_name(r): r for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}}
    for entry in conda + [p for p in pip if not p.strip().startswith("-e")]:
        name = _name(entry.replace("::", "/").split("/")[-1])
        if name in ("python", "pip"):
            continue
        assert name in deps, f"environment.yml lists {entry!r}, not declared in pyproject.toml"
        spec = _spec(entry)
        if spec:
            assert spec.lstrip("=") and spec.replace("==", "=").lstrip("=") in _spec(deps[name]).replace(
                "==", "="
            ), (entry, deps[name])


def test_torch_is_a_range_not_an_exact_pin():
    torch_req = _deps()["torch"]
    assert "==" not in torch_req and "===" not in torch_req
    assert re.search(r">=\s*\d", torch_req), torch_req
    for name, req in _deps().items():
        assert "==" not in req, f"{name} is pinned exactly: {req}"


def _third_party_imports():
    stdlib = set(sys.stdlib_module_names)
    found = {}
    for path in sorted((ROOT / "lab4").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                if top not in stdlib and top not in ("lab4", "__future__"):
                    found.setdefault(top, set()).add(path.name)
    return found


def test_every_third_party_import_is_declared():
    found = _third_party_imports()
    assert {"torch", "numpy", "PIL"} <= set(found)  # the scan sees the obvious ones
    deps = _deps()
    for mod, files in found.items():
        dist = IMPORT_TO_DIST.get(mod, mod).lower().replace("_", "-")
        assert dist in deps, f"lab4/{sorted(files)} import {mod!r} but pyproject lacks {dist!r}"


def _make_setup(tmp_path, **env) -> list[str]:
    """The commands `make setup` would run (make -n), with pyproject.toml taken as just changed, under the
    environment variables ``env`` (an active venv or conda environment) and none of the caller's."""
    if shutil.which("make") is None:
        pytest.skip("GNU make not installed")
    drop = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    keep = {k: v for k, v in os.environ.items() if k not in drop}
    r = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "--eval", "jupyter-path: ; +@echo JUPYTER_PATH=$$JUPYTER_PATH"]
        + ["setup", "jupyter-path"],
        cwd=ROOT,
        env={**keep, **{k: str(v) for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if not line.startswith("echo JUPYTER_PATH")]  # -n shows it


_KERNEL = '-m ipykernel install --sys-prefix --name lab4 --display-name "Python (lab4)" >/dev/null'
_DOT_VENV = [
    "python3 -m venv .venv",
    ".venv/bin/python -m pip install -q --upgrade pip",
    ".venv/bin/python -m pip install -q -e '.[dev]'",
    f".venv/bin/python {_KERNEL}",
    "touch .venv/.installed",
    f"bash scripts/install_git_filters.sh {ROOT}/.venv/bin/python",
    f"JUPYTER_PATH={ROOT}/.venv/share/jupyter",
]


def _into(env: Path) -> list[str]:
    return [
        f"{env}/bin/python -m pip install -q -e '.[dev]'",
        f"{env}/bin/python {_KERNEL}",
        f"echo '{ROOT}' >{env}/.lab4-installed",
        f"bash scripts/install_git_filters.sh {env}/bin/python",
        f"JUPYTER_PATH={env}/share/jupyter",
    ]


@pytest.mark.timeout(60)
def test_make_sets_up_the_active_environment_else_dot_venv(tmp_path):
    """No environment active (CI's clean clone): .venv, built as before. An activated venv or a conda
    environment: lab4 installed into it, its kernel and the git filters, no .venv. Conda's base, or the
    checkout's own .venv activated: .venv as with none."""
    assert _make_setup(tmp_path) == _DOT_VENV
    venv, conda, base = tmp_path / "venv", tmp_path / "conda" / "envs" / "lab4", tmp_path / "conda"
    assert _make_setup(tmp_path, VIRTUAL_ENV=venv) == _into(venv)
    assert _make_setup(tmp_path, CONDA_PREFIX=conda, CONDA_DEFAULT_ENV="lab4") == _into(conda)
    # an activated venv inside a conda environment: the venv's python comes first on PATH
    assert _make_setup(tmp_path, VIRTUAL_ENV=venv, CONDA_PREFIX=conda, CONDA_DEFAULT_ENV="lab4") == _into(
        venv
    )
    assert _make_setup(tmp_path, CONDA_PREFIX=base, CONDA_DEFAULT_ENV="base") == _DOT_VENV
    (base / "condabin").mkdir(parents=True)  # base activated by its path: CONDA_DEFAULT_ENV holds the path
    assert _make_setup(tmp_path, CONDA_PREFIX=base, CONDA_DEFAULT_ENV=base) == _DOT_VENV
    assert _make_setup(tmp_path, VIRTUAL_ENV=ROOT / ".venv") == _DOT_VENV
