"""environment.yml agrees with pyproject.toml, and every third-party import under lab4/ is declared."""

import ast
import re
import sys
from pathlib import Path

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
