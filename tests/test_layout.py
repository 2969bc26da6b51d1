"""The package's shape: folders that show its parts, imports that only run downwards, files a reader can hold.

Layers, bottom up: util (plumbing) < datasets < the core (lab4/*.py) < grid and report < perf (the GPU
session runs the grid) < cli (the one command). A module imports from its own layer or below; grid and
report never import each other, and only lab4/__main__.py imports the command line. An import is any
``import``/``from ... import`` of lab4, at module level or in a function, and any
``importlib.import_module("lab4....")`` with a literal name. A module holds at most MAX_LINES lines as ruff
formats them (pyproject.toml's [tool.ruff]), and a folder at most MAX_MODULES modules.
"""

import ast
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab4.cli import COMMANDS, MAINTAINER, STUDENT

PACKAGE = Path(__file__).resolve().parents[1] / "lab4"
LAYER = {"util": 0, "datasets": 1, "core": 2, "grid": 3, "report": 3, "perf": 4, "cli": 5}
ENTRY_POINT = "lab4.__main__"  # python -m lab4: the one module outside cli that may import it
MAX_LINES, MAX_MODULES = 350, 12
MAX_WIDTH = 110  # pyproject.toml's [tool.ruff] line-length


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYER else "core"


def _is_import_module(call: ast.Call) -> bool:
    f = call.func
    return (
        isinstance(f, ast.Attribute) and f.attr == "import_module" and ast.unparse(f.value) == "importlib"
    ) or (isinstance(f, ast.Name) and f.id == "import_module")


def _imports(path: Path) -> list[str]:
    """The lab4 modules ``path`` imports, at module level or in functions, by statement or by
    ``importlib.import_module`` with a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lab4"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("lab4")]
        elif (
            isinstance(node, ast.Call)
            and _is_import_module(node)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("lab4")
        ):
            found.append(node.args[0].value)
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        yield name, path


def test_imports_run_downwards_only():
    wrong = []
    for name, path in _modules():
        for target in _imports(path):
            a, b = _part(name), _part(target)
            if name == ENTRY_POINT and b == "cli":
                continue
            if LAYER[b] > LAYER[a] or (a != b and LAYER[a] == LAYER[b]):
                wrong.append(f"{name} ({a}) imports {target} ({b})")
    assert not wrong, "\n".join(wrong)


def test_the_layering_test_sees_every_kind_of_import(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import importlib\nfrom importlib import import_module\n"
        "def f():\n    import lab4.cli\n    from lab4.grid import driver\n"
        "    importlib.import_module('lab4.perf.bench')\n    import_module('lab4.report.build')\n"
        "    importlib.import_module(name)\n"
    )
    assert _imports(src) == ["lab4.cli", "lab4.grid", "lab4.perf.bench", "lab4.report.build"]


def test_no_module_runs_as_a_script():
    """One entry point: ``lab4`` / ``python -m lab4``; no module has an ``if __name__ == "__main__"``
    block."""
    scripts = [
        name
        for name, path in _modules()
        if name != ENTRY_POINT
        and any(
            isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)
            for n in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert not scripts, scripts


def test_files_and_folders_stay_small():
    long = [
        f"{p.relative_to(PACKAGE.parent)}: {n} lines"
        for _, p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, long
    folders = {p.parent for _, p in _modules()}
    crowded = {
        str(f.relative_to(PACKAGE.parent)): n
        for f in folders
        if (n := len(list(f.glob("*.py")))) > MAX_MODULES
    }
    assert not crowded, crowded


def _ruff() -> list[str] | None:
    """How to run ruff here: the installed module, else a ruff on PATH; None when there is neither."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    return [exe] if (exe := shutil.which("ruff")) else None


@pytest.mark.parametrize("check", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_the_package_is_formatted_as_ruff_formats_it(check):
    """The line cap counts formatted code: a module cannot stay under MAX_LINES by squeezing its lines."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    r = subprocess.run(
        [*ruff, *check, str(PACKAGE)], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_line_is_wider_than_the_formatter_allows():
    wide = [
        f"{p.relative_to(PACKAGE.parent)}:{i}: {len(line)} characters"
        for _, p in _modules()
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if len(line) > MAX_WIDTH
    ]
    assert not wide, wide


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_flags_and_a_runner_in_the_cli(command):
    c = COMMANDS[command]
    assert c.module.startswith("lab4.cli.") and isinstance(c.help, str) and c.help
    add_flags, run = importlib.import_module(c.module).COMMANDS[command]
    assert callable(add_flags) and callable(run)
    assert sum(command in (x.name for x in group) for group in (STUDENT, MAINTAINER)) == 1


def test_run_file_names_are_spelled_only_in_run_folder():
    """RunDir owns a run folder: every other module names its files through RunDir's constants, so renaming
    one is a change in one place."""
    from lab4.run.folder import RunDir

    names = set(RunDir.RUN_FILES)
    owner = PACKAGE / "run" / "folder.py"
    spelled = []
    for _, path in _modules():
        if path == owner:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert not spelled, "\n".join(spelled)
