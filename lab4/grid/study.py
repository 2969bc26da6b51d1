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
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from lab4.grid.driver import EXIT_FAILED, run_grid
from lab4.grid.spec import load_grid
from lab4.rundir import RunDir, load_runs
from lab4.util.cliargs import KebabRawHelpFormatter, add_flag
from lab4.util.device import cpu_has_native_bf16, cpu_model_name
from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_text
from lab4.util.paths import project_root, shown

HELP = "run the study grid (study.yaml) and export it to results/study/"
PROFILE = "study"
RUN_FILES = (RunDir.SUMMARY, RunDir.VAL_SUMMARY, "config.json", RunDir.METRICS, RunDir.PSNR, RunDir.DIVERGED)
RECORD = "study.json"


def commit() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it ("unknown" outside git)."""
    root = project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpu_family_model() -> str:
    """"family 25 model 17": names the generation (Zen 2, Zen 4, ...) where the model name alone does not."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return ""
    return f"family {fields['cpu family']} model {fields['model']}" if {"cpu family", "model"} <= set(fields) else ""


def machine() -> dict:
    return dict(processor=cpu_model_name(), cpu_id=_cpu_family_model(), cores=os.cpu_count(), native_bf16=cpu_has_native_bf16(),
                cpu_bf16_env=os.environ.get("LAB4_CPU_BF16"), torch=torch.__version__, python=platform.python_version(),
                system=platform.system())


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
    this = dict(command=command, commit=commit(), machine=machine(), exit_status=rc, seconds=round(wall_s, 1),
                finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    rec = dict(command=command, commit=this["commit"], machine=this["machine"], runs=names, exit_status=rc,
               diverged=[r.name for r in runs if r.diverged()],
               span_seconds=round(max(ends) - min(starts), 1) if starts and ends else None,
               cpu_seconds=round(sum(r.summary().get("cpu_seconds") or 0 for r in runs), 1),
               invocations=[*before, this])
    atomic_write_text(Path(out) / RECORD, json.dumps(rec, indent=2) + "\n")
    return rec


def add_arguments(p) -> None:
    p.formatter_class = KebabRawHelpFormatter
    p.description = __doc__
    add_flag(p, "grid", default="study.yaml", help="the study grid (default study.yaml)")
    add_flag(p, "runs", default="runs/study", help="runs folder (default runs/study)")
    add_flag(p, "out", default="results/study", help="where the report reads the study (default results/study)")
    add_flag(p, "jobs", type=int, default=None, help="runs at the same time (default: the grid driver's)")
    add_flag(p, "command", default="", help="the command to record in study.json (default: this one)")


def run(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise Lab4Error("--jobs must be >= 1")
    t0 = time.time()
    rc = run_grid(args.grid, PROFILE, args.runs, jobs=args.jobs)
    if rc == EXIT_FAILED and all(RunDir(Path(args.runs) / n).summary() or RunDir(Path(args.runs) / n).diverged()
                                 for n, _ in load_grid(args.grid, PROFILE)):
        rc = 0  # every run finished or diverged: a divergence is one of the study's results, recorded as such
    names = export(args.runs, args.out)
    if not names:
        print(f"no finished study runs in {shown(args.runs)}; nothing exported", file=sys.stderr)
        return rc or 1
    command = args.command or "python -m lab4 study " + " ".join(sys.argv[2:])
    rec = record(args.out, names, command.strip(), rc, time.time() - t0)
    span = f", {rec['span_seconds'] / 60:.1f} min from the first run's start to the last one's end" \
        if rec["span_seconds"] else ""
    print(f"study: {len(names)} run(s) exported to {shown(args.out)}{span}", flush=True)
    return rc


if __name__ == "__main__":
    from lab4.cli import main
    sys.exit(main(["study", *sys.argv[1:]]))
