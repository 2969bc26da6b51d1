"""Executing one entry of the grid: ``notebooks/02_train.ipynb`` through papermill under the run's driver
lock, its parameters from the entry, a retry from last.pt when its kernel died or passed a deadline.

:func:`execute` is the Dask task of a run (lab4.grid.driver plans the grid and settles it); it never raises
for a failing notebook, and returns the run's :class:`Result`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab4.config import FIELDS, make_config
from lab4.run.folder import RunDir
from lab4.run.identity import conflict
from lab4.util import notebooks
from lab4.util.paths import absolute, named_dataset, project_root, shown

PROJECT_ROOT = project_root()  # the driver needs the checkout's notebooks; see require_checkout()
NOTEBOOKS = PROJECT_ROOT / "notebooks"
TRAIN_NB = NOTEBOOKS / "02_train.ipynb"
RETRIES = 1  # a run whose kernel died or passed its deadline is tried once more, from last.pt


def execute_notebook(notebook, out, parameters: dict, **deadlines):
    """A notebook run from notebooks/ under deadlines (lab4/util/notebooks.py), as the driver runs it."""
    return notebooks.execute(notebook, out, parameters, cwd=NOTEBOOKS, **deadlines)


def notebook_flat_params() -> frozenset[str]:
    """The Config fields that 02_train.ipynb has as flat parameters, read from its `parameters` cell, the one
    list of them; any other override travels in the notebook's `extra` dict."""
    import papermill as pm

    return frozenset(pm.inspect_notebook(str(TRAIN_NB))) & FIELDS


@dataclass
class Entry:
    """One entry of the grid, planned: its name, overrides, run folder and profile (the finished folder is a
    RunDir)."""

    name: str
    overrides: dict
    run_dir: Path
    profile: str
    overwrite: bool = False  # replace a run with other settings in run_dir instead of refusing it

    @property
    def notebook(self) -> Path:
        return self.run_dir / "02_train.ipynb"


@dataclass
class Result:
    name: str
    status: str  # done | complete | locked | failed | diverged | refused
    seconds: float = 0.0
    notebook: str = ""
    error: str = ""
    summary: dict = field(default_factory=dict)
    # why each earlier attempt stopped (deadline, dead kernel)
    retried: list[str] = field(default_factory=list)


def notebook_parameters(run: Entry) -> dict:
    """Papermill parameters for 02_train: flat ones where the notebook has them, the rest in `extra`."""
    params = dict(
        name=run.name,
        profile=run.profile,
        run_dir=str(absolute(run.run_dir)),
        resume=True,
        overwrite=run.overwrite,
    )
    extra, flat = {}, notebook_flat_params()
    for k, v in run.overrides.items():
        if k in flat:
            params[k] = v
        else:
            extra[k] = list(v) if isinstance(v, tuple) else v
    if data_root := named_dataset(params.get("data_root", "")):  # absolute: the notebook runs in notebooks/
        params["data_root"] = data_root
    params["extra"] = extra
    return params


def entry_config(run: Entry):
    return make_config(run.profile, name=run.name, run_dir=str(run.run_dir), **run.overrides)


def is_complete(run: Entry) -> bool:
    """summary.json is written last by the notebook, so its epoch count says the run is finished."""
    return RunDir(run.run_dir).is_finished(entry_config(run).num_epoch)


def execute(run: Entry, train: bool = True, retries: int = RETRIES) -> Result | None:
    """Execute 02_train for one run under its driver lock; never raises for a failing notebook.

    This is the Dask task of a run. ``train=False`` only looks (locked? complete? else None), so the
    driver settles finished and locked runs without starting a cluster for them. A run whose kernel died
    or ran past a deadline is executed again, up to ``retries`` times; the notebook resumes from last.pt.
    """
    from filelock import FileLock, Timeout

    run.run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.run_dir / ".driver.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return Result(run.name, "locked")
    t0 = time.perf_counter()
    try:
        other = conflict(RunDir(run.run_dir), entry_config(run), resume=True)  # a run with other settings
        if other and not run.overwrite:
            return Result(run.name, "refused", notebook=str(run.notebook), error=other)
        if not other and is_complete(run):
            return Result(run.name, "complete", notebook=str(run.notebook))
        # resuming would repeat it: not retried
        if not other and (diverged := RunDir(run.run_dir).diverged()):
            return Result(run.name, "diverged", notebook=str(run.notebook), error=diverged.get("message", ""))
        if not train:
            return None
        import papermill as pm

        retried = []

        def ended(status: str, notebook, error: str = "", **kw) -> Result:
            return Result(run.name, status, time.perf_counter() - t0, str(notebook), error, **kw)

        while True:
            try:
                execute_notebook(TRAIN_NB, run.notebook, notebook_parameters(run), profile=run.profile)
                break
            except pm.PapermillExecutionError as e:  # the notebook's own error: another try would repeat it
                if diverged := RunDir(run.run_dir).diverged():
                    return ended("diverged", run.notebook, diverged.get("message", ""), retried=retried)
                return ended("failed", run.notebook, f"{e.ename}: {e.evalue}", retried=retried)
            except notebooks.NotebookStopped as e:  # a deadline or a dead kernel: resume from last.pt
                kept = keep_attempt(run, len(retried) + 1, e)
                retried.append(e.what)
                if len(retried) > retries:
                    error = f"{e.what} (tried {len(retried)} times)"
                    return ended("failed", kept, error, retried=retried[:-1])
            # a missing kernel spec, a broken notebook file: still only this run's problem
            except Exception as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                return ended("failed", run.notebook, f"{type(e).__name__}: {msg}", retried=retried)
        return ended("done", run.notebook, summary=RunDir(run.run_dir).summary(), retried=retried)
    finally:
        lock.release()


def keep_attempt(run: Entry, attempt: int, stopped: notebooks.NotebookStopped) -> Path:
    """Keep a stopped attempt's executed notebook beside the run (02_train.attempt1.ipynb) and log why it
    stopped in the run folder, where the grid's progress display sees it; the next attempt writes its own."""
    kept = run.notebook.with_name(f"{run.notebook.stem}.attempt{attempt}.ipynb")
    if stopped.notebook.is_file():
        os.replace(stopped.notebook, kept)
    RunDir(run.run_dir).add_attempt(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} attempt {attempt}: {stopped.what} ({shown(kept)})"
    )
    return kept
