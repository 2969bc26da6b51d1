"""Where lab4 keeps things, the same whether it runs from the repository or from ``pip install .``.

Data, the decode cache and default run folders go under :func:`home`: ``$LAB4_HOME`` if set, else the
repository checkout lab4 runs from, else the current folder; never into site-packages. A path the
user typed is made absolute where it was typed (:func:`absolute`), before it reaches a notebook that
runs in another folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab4.util.errors import Lab4Error

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lab4/


def checkout() -> Path | None:
    """The repository root when lab4 runs from a checkout (an editable install or PYTHONPATH), else None."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def home() -> Path:
    """The folder that holds data/, data/cache/ and the default runs/."""
    if os.environ.get("LAB4_HOME"):
        return absolute(os.environ["LAB4_HOME"])
    return checkout() or Path.cwd()


def require_checkout(what: str) -> Path:
    """The repository root, or one line saying that ``what`` needs it (the notebooks are not installed)."""
    root = checkout()
    if root is None:
        raise Lab4Error(
            f"{what} needs the lab4 repository checkout (its notebooks/ are not installed with "
            f"the package at {PACKAGE_DIR}); clone the repository and run it from there"
        )
    return root


def project_root() -> Path:
    """The checkout when lab4 runs from one, else its home: what printed paths are relative to."""
    return checkout() or home()


def shown(path) -> str:
    """A path as lab4 prints it: relative to the project when inside it, so logs and HTML carry no machine
    paths."""
    try:
        return str(Path(path).resolve().relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def absolute(path) -> Path:
    """``path`` as an absolute path against the current folder (``~`` expanded, symlinks kept)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def named_dataset(given: str = "") -> str:
    """The dataset a user named, as an absolute path: ``given``, else $LAB4_DATA; "" when neither
    (SynthDance).

    The one place a dataset path enters: made absolute against the folder it was typed in, before it reaches
    a notebook that runs in notebooks/ or a grid worker elsewhere."""
    named = str(given or os.environ.get("LAB4_DATA", ""))
    return str(absolute(named)) if named else ""


def dataset_path(data_root: str = "", synth_preset: str = "small") -> Path:
    """Where a run's data is, without making it: the named dataset, else SynthDance's folder for the
    preset."""
    named = named_dataset(data_root)
    return Path(named) if named else synth_folder(synth_preset)


def synth_folder(preset: str) -> Path:
    """SynthDance's folder for a preset, made on demand by lab4.datasets.official.resolve_data_root."""
    return home() / "data" / f"synthdance-{preset}"


def run_folder(profile: str, name: str) -> Path:
    """Where a run goes when no folder is given: runs/<profile>/<name> under :func:`home`, for the CLI, the
    notebooks and the grid alike."""
    return runs_folder(profile) / name


def runs_folder(profile: str) -> Path:
    """The folder of a profile's runs when none is given (``lab4 grid`` without --runs)."""
    return home() / "runs" / profile
