"""`make study`: what a longer budget changes. The study grid (study.yaml, profile ``study``) run by the same
driver and notebooks as the report's grid, then each run's small files exported to ``results/study/``.

    python -m lab4 study [--grid study.yaml] [--runs runs/study] [--out results/study] [--jobs N]

Resumable like any grid: finished runs are skipped and an interrupted one resumes from its last.pt, so
running it again only redoes what is missing. The export copies what the report reads (summary.json,
val_summary.json, config.json, metrics.csv, psnr_per_frame.csv; no checkpoints, notebooks or pictures) and
writes ``study.json``: the command, the machine (processor, cores, torch, native bf16), the commit, and the
time from the first run's start to the last one's end. `make report` reads results/study/; it never runs
the study.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from lab4.grid.driver import EXIT_FAILED, run_grid
from lab4.grid.spec import load_grid
from lab4.run.folder import RunDir, load_runs
from lab4.util.files import atomic_write_text
from lab4.util.machine import git_state, machine as this_machine
from lab4.util.paths import shown

PROFILE = "study"
RUN_FILES = (RunDir.SUMMARY, RunDir.VAL_SUMMARY, RunDir.CONFIG, RunDir.METRICS, RunDir.PSNR, RunDir.DIVERGED)
RECORD = "study.json"


def commit() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it ("unknown" outside git)."""
    head, dirty = git_state()
    return "unknown" if head is None else head + ("-dirty" if dirty else "")


def machine() -> dict:
    """lab4.util.machine's record, plus the keys the report reads: ``processor`` (the model name), ``cpu_id``
    ("family 25 model 17": names the generation where the model name alone does not) and ``cores``."""
    rec = this_machine()
    family, model = rec["cpu_family"], rec["cpu_model"]
    cpu_id = f"family {family} model {model}" if family is not None and model is not None else ""
    return dict(rec, processor=rec["cpu_model_name"], cpu_id=cpu_id, cores=rec["cpus"])


def export(runs_dir, out) -> list[str]:
    """Each finished or diverged run's small files into ``out/<run>/`` (replacing what a previous export left
    there): a divergence is one of the study's results."""
    out = Path(out)
    names = []
    for run in load_runs(runs_dir):
        if not run.summary() and not run.diverged():  # unfinished: nothing the report could use
            continue
        dest = out / run.name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for f in RUN_FILES:
            if (run.path / f).is_file():
                shutil.copy2(run.path / f, dest / f)
        names.append(run.name)
    return names


def record(out, names: list[str], command: str, rc: int, wall_s: float) -> dict:
    """study.json: what ran, where, from which commit, and how long the runs took end to end. Each
    invocation (a resumed study has several) is kept in ``invocations`` with its own commit and time."""
    runs = [RunDir(Path(out) / n) for n in names]
    starts = [r.summary().get("started_at") for r in runs if r.summary().get("started_at")]
    ends = [r.summary().get("finished_at") for r in runs if r.summary().get("finished_at")]
    try:
        before = json.loads((Path(out) / RECORD).read_text()).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        before = []
    this = dict(
        command=command,
        commit=commit(),
        machine=machine(),
        exit_status=rc,
        seconds=round(wall_s, 1),
        finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    rec = dict(
        command=command,
        commit=this["commit"],
        machine=this["machine"],
        runs=names,
        exit_status=rc,
        diverged=[r.name for r in runs if r.diverged()],
        span_seconds=round(max(ends) - min(starts), 1) if starts and ends else None,
        cpu_seconds=round(sum(r.summary().get("cpu_seconds") or 0 for r in runs), 1),
        invocations=[*before, this],
    )
    atomic_write_text(Path(out) / RECORD, json.dumps(rec, indent=2) + "\n")
    return rec


def run_study(grid, runs, out, jobs: int | None = None, command: str = "") -> int:
    """The study grid through the driver, then its export and study.json; the driver's exit status, except
    that a grid whose every run finished or diverged counts as done (a divergence is a result here)."""
    t0 = time.time()
    rc = run_grid(grid, PROFILE, runs, jobs=jobs)
    if rc == EXIT_FAILED and all(
        RunDir(Path(runs) / n).summary() or RunDir(Path(runs) / n).diverged()
        for n, _ in load_grid(grid, PROFILE)
    ):
        rc = 0
    names = export(runs, out)
    if not names:
        print(f"no finished study runs in {shown(runs)}; nothing exported", file=sys.stderr)
        return rc or 1
    rec = record(out, names, command.strip(), rc, time.time() - t0)
    span = (
        f", {rec['span_seconds'] / 60:.1f} min from the first run's start to the last one's end"
        if rec["span_seconds"]
        else ""
    )
    print(f"study: {len(names)} run(s) exported to {shown(out)}{span}", flush=True)
    return rc
