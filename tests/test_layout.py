"""The package's shape: folders that show its parts, imports that only run downwards, files a reader can hold.

Layers, bottom up: util (plumbing) < datasets < the core (lab4/*.py) < grid and report < perf (the GPU
session runs the grid). A module imports from its own layer or below; grid and report never import each
other. ``python -m <module>`` aliases import the command line inside their ``__main__`` guard, which is
not an import of the module itself, so those are skipped.
"""
import ast
from pathlib import Path

import pytest

from lab4.cli import COMMANDS

PACKAGE = Path(__file__).resolve().parents[1] / "lab4"
LAYER = {"util": 0, "datasets": 1, "core": 2, "grid": 3, "report": 3, "perf": 4}
MAX_LINES, MAX_MODULES = 350, 12


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYER else "core"


def _imports(path: Path) -> list[str]:
    """The lab4 modules ``path`` imports, at module level or in functions, outside ``if __name__ == ...``."""
    tree = ast.parse(path.read_text())
    guards = [n for n in tree.body if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
    skipped = {id(n) for g in guards for n in ast.walk(g)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lab4"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("lab4")]
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
            if LAYER[b] > LAYER[a] or (a != b and LAYER[a] == LAYER[b]):
                wrong.append(f"{name} ({a}) imports {target} ({b})")
    assert not wrong, "\n".join(wrong)


def test_files_and_folders_stay_small():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for _, p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, long
    folders = {p.parent for _, p in _modules()}
    crowded = {str(f.relative_to(PACKAGE.parent)): n for f in folders if (n := len(list(f.glob("*.py")))) > MAX_MODULES}
    assert not crowded, crowded


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_registered_command_has_help_arguments_and_run(command):
    import importlib
    module = importlib.import_module(COMMANDS[command])
    assert isinstance(module.HELP, str) and module.HELP
    assert callable(module.add_arguments) and callable(module.run)
