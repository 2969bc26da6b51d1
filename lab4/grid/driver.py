"""The experiment driver: every run of the report is ``notebooks/02_train.ipynb`` executed by papermill.

    python -m lab4 grid --grid experiments.yaml --profile quick --runs runs/quick [--only NAME ...] [--jobs N]
    python -m lab4 grid ... --scheduler tcp://host:8786    # or DASK_SCHEDULER: an existing Dask cluster

Each run lands in ``<runs>/<name>/`` next to its executed notebook. A run whose ``summary.json`` says it
trained the configured number of epochs is skipped; any other run is (re)started, and the notebook's
Trainer resumes from ``last.pt``. One failing run never stops the others.

Each run is one Dask task (lab4/grid/cluster.py): on a LocalCluster of --jobs workers (default: one per GPU,
else 3), or on the cluster at --scheduler / $DASK_SCHEDULER, whose workers need this repository and the
same runs folder at the same path. lab4/grid/progress.py shows the whole grid's progress.

Exit status: 0 all runs done; 1 at least one run failed (each failure is listed with its notebook and
the cell's error) or diverged (its loss became non-finite: diverged.json records where, and the run is not
retried, since resuming would repeat it); 2 bad input (grid file, YAML, unknown key or profile); 3 nothing
failed but some runs were skipped because another driver holds their lock (the grid is incomplete: run again
later).
"""

from __future__ import annotations

import fnmatch
import functools
import sys
from pathlib import Path

from lab4.config import make_config
from lab4.grid.execution import RETRIES, TRAIN_NB, Entry, Result, execute
from lab4.grid.spec import load_grid, load_questions  # noqa: F401  (the driver's grid file; re-exported)
from lab4.run.folder import RunDir
from lab4.run.questions import write_questions
from lab4.util.errors import Lab4Error
from lab4.util.paths import require_checkout, shown

EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 1, 2, 3


def describe(i: int, n: int, r: Result) -> str:
    head = f"[{i}/{n}] {r.name}:"
    if r.status == "done":
        psnr = r.summary.get("mean_psnr")
        extra = f", val PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else ""
        k = len(r.retried)
        retry = f" after {k} {'retry' if k == 1 else 'retries'} (resumed from last.pt)" if k else ""
        return f"{head} done in {r.seconds:.1f}s{retry}{extra} -> {shown(r.notebook)}"
    if r.status == "complete":
        return f"{head} skipped (already complete) -> {shown(r.notebook)}"
    if r.status == "locked":
        return f"{head} skipped: {r.name} is being run by another process"
    if r.status == "refused":
        return f"{head} REFUSED: {r.error}"
    if r.status == "diverged":
        return (
            f"{head} DIVERGED ({r.error.removeprefix(f'{r.name}: ')}); not retried: delete "
            f"{shown(Path(r.notebook).with_name(RunDir.DIVERGED))} to try again -> {shown(r.notebook)}"
        )
    return f"{head} FAILED after {r.seconds:.1f}s ({r.error}) -> {shown(r.notebook)}"


def prepare_data(runs: list[Entry]) -> None:
    """Generate and decode each dataset the runs need once, here, before the runs start side by side.

    Otherwise every kernel would render SynthDance and fill the decode cache at the same moment (safe,
    the writes are atomic, but the work is done once per kernel).
    A dataset that cannot be prepared is left alone here: the runs that need it fail in their own
    notebooks, with the error in the cell, and the other runs go on.
    """
    from lab4.datasets import official

    seen = set()
    for run in runs:
        cfg = make_config(run.profile, name=run.name, **run.overrides)
        key = (cfg.data_root, cfg.synth_preset, cfg.frame_H, cfg.frame_W)
        if key in seen:
            continue
        seen.add(key)
        try:
            root = official.resolve_data_root(cfg.data_root, cfg.synth_preset, progress=cfg.progress)
            for split in ("train", "val"):
                official.load_split(root, split, cfg.frame_H, cfg.frame_W, cfg.progress)
            official.load_test(root, cfg.frame_H, cfg.frame_W, cfg.progress)
            if (root / "test_gt").is_dir():
                official.load_test_gt(root / "test_gt", cfg.frame_H, cfg.frame_W, cfg.progress)
        except Lab4Error:
            continue


def run_grid(
    grid,
    profile: str,
    runs_dir,
    only=None,
    jobs: int | None = None,
    scheduler: str | None = None,
    retries: int = RETRIES,
    overwrite: bool = False,
) -> int:
    require_checkout("the experiment driver (make experiments)")
    if not TRAIN_NB.is_file():
        raise Lab4Error(f"{shown(TRAIN_NB)}: the training notebook is missing")
    entries = load_grid(grid, profile)
    if only:
        for pat in only:
            if not any(fnmatch.fnmatchcase(n, pat) for n, _ in entries):
                raise Lab4Error(
                    f"--only {pat}: no such run in {grid} (runs: {', '.join(n for n, _ in entries)})"
                )
        entries = [(n, o) for n, o in entries if any(fnmatch.fnmatchcase(n, p) for p in only)]
    runs_dir = Path(runs_dir).resolve()
    questions = load_questions(grid)
    if questions:  # the report of this folder tests what its grid asked
        write_questions(runs_dir, questions)
    runs = [Entry(n, o, runs_dir / n, profile, overwrite) for n, o in entries]
    n = len(runs)
    results, todo = [], []
    for run in runs:  # finished and locked runs are settled here, without a cluster
        settled = execute(run, train=False)
        if settled is None:
            todo.append(run)
        else:
            results.append(settled)
    from lab4.grid.cluster import default_jobs, visible_gpus

    gpus = [] if scheduler or not todo else visible_gpus()
    jobs = min(jobs or default_jobs(gpus), max(1, len(todo)))
    where = f" on the Dask cluster at {scheduler}" if scheduler else f", {jobs} at a time" if jobs > 1 else ""
    print(
        f"{n} run(s), profile {profile}, into {shown(runs_dir)}{where}"
        + (f" ({len(gpus)} GPUs)" if gpus else ""),
        flush=True,
    )
    for i, r in enumerate(results, 1):
        print(describe(i, n, r), flush=True)
    if todo:
        prepare_data(todo)
        results += run_on_dask(todo, n, len(results), scheduler, jobs, gpus, retries)
    failed = [r for r in results if r.status in ("failed", "diverged", "refused")]
    locked = [r for r in results if r.status == "locked"]
    done = sum(r.status in ("done", "complete") for r in results)
    retried = sum(bool(r.retried) for r in results if r.status == "done")
    again = f" ({retried} after a retry)" if retried else ""
    diverged = sum(r.status == "diverged" for r in results)
    print(
        f"{done}/{n} run(s) complete{again}, {len(failed)} failed"
        + (f" ({diverged} diverged)" if diverged else "")
        + f", {len(locked)} skipped (locked)",
        flush=True,
    )
    if failed:
        print("failed runs (the executed notebooks are kept):", file=sys.stderr)
        for r in failed:
            print(f"  {r.name}: {shown(r.notebook)}: {r.error}", file=sys.stderr)
        return EXIT_FAILED
    if locked:
        print(
            f"not finished: {', '.join(r.name for r in locked)} held by another driver; "
            "run again when it is done",
            file=sys.stderr,
        )
        return EXIT_LOCKED
    return 0


def run_on_dask(
    runs: list[Entry], n: int, settled: int, scheduler, jobs: int, gpus: list[str], retries: int = RETRIES
) -> list[Result]:
    """One Dask task per run (``execute``); a run that trains on CUDA asks for one GPU. ``settled`` runs of
    the ``n`` in the grid were already reported."""
    from lab4.grid import cluster
    from lab4.grid.progress import GridProgress

    cfgs = {r.name: make_config(r.profile, name=r.name, **r.overrides) for r in runs}
    results = []
    with cluster.connect(scheduler, jobs, gpus) as (client, have_gpus):
        link = cluster.dashboard_link(client, local=not scheduler)
        if link:
            print(f"Dask dashboard: {link}", flush=True)
        epochs = {name: cfg.num_epoch for name, cfg in cfgs.items()}
        with GridProgress(runs, epochs, n, settled, shown=shown) as progress:

            def on_result(run, result, error):
                result = result or Result(run.name, "failed", notebook=str(run.notebook), error=error)
                results.append(result)
                progress.finish(run.name, describe(settled + len(results), n, result))

            task = functools.partial(execute, retries=retries)
            cluster.run_all(client, task, runs, cluster.gpu_runs(cfgs, have_gpus), on_result, progress.tick)
    return results
