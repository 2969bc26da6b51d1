"""The grid's commands: ``lab4 grid`` (lab4.grid.driver) and ``lab4 study`` (lab4.grid.study).

Their help is the working module's docstring; the modules are imported when the command is chosen.
"""

from __future__ import annotations

import os
import sys

from lab4.cli.flags import KebabRawHelpFormatter, add_flag
from lab4.util.errors import Lab4Error

INTERRUPTED = "re-run to continue; finished runs are kept"


def grid_flags(p) -> None:
    from lab4.config import PROFILES
    from lab4.grid import driver, execution
    from lab4.util import notebooks

    p.formatter_class = KebabRawHelpFormatter
    p.description = driver.__doc__
    p.set_defaults(interrupted=INTERRUPTED)
    add_flag(p, "grid", default="experiments.yaml", help="the experiment grid (default experiments.yaml)")
    add_flag(p, "profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    add_flag(
        p, "runs", default="", help="runs folder (default runs/<profile> under $LAB4_HOME, else the checkout)"
    )
    add_flag(
        p,
        "overwrite",
        action="store_true",
        help="replace a run trained with other settings than the grid's, instead of refusing it",
    )
    add_flag(p, "only", nargs="+", metavar="NAME", help="run only these runs (shell-style patterns allowed)")
    add_flag(
        p,
        "jobs",
        type=int,
        default=None,
        help="runs at the same time on the local Dask cluster (default: one per GPU, else 3)",
    )
    add_flag(
        p,
        "scheduler",
        default=None,
        metavar="ADDRESS",
        help="an existing Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER, else a "
        "LocalCluster); its workers need this repository and the runs folder at the same path",
    )
    add_flag(
        p,
        "retries",
        type=int,
        default=execution.RETRIES,
        help=f"tries more for a run whose kernel died or passed its deadline (default {execution.RETRIES})",
    )
    add_flag(
        p,
        "train_deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the training cell may run (default: by profile, "
        f"{', '.join(f'{k} {notebooks.human(v)}' for k, v in notebooks.TRAINING_S.items())}; "
        "or $LAB4_TRAIN_DEADLINE)",
    )
    add_flag(
        p,
        "cell_deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"how long any other cell may run (default {notebooks.human(notebooks.CELL_S)}, "
        "or $LAB4_CELL_DEADLINE)",
    )


def cmd_grid(args) -> int:
    from lab4.grid.driver import run_grid
    from lab4.util import notebooks
    from lab4.util.paths import runs_folder

    runs = args.runs or runs_folder(args.profile)
    scheduler = args.scheduler or os.environ.get("DASK_SCHEDULER") or None
    if args.jobs is not None and args.jobs < 1:
        raise Lab4Error("--jobs must be >= 1")
    if args.retries < 0:
        raise Lab4Error("--retries must be >= 0")
    for flag, value, env in (
        ("--train-deadline", args.train_deadline, "LAB4_TRAIN_DEADLINE"),
        ("--cell-deadline", args.cell_deadline, "LAB4_CELL_DEADLINE"),
    ):
        if value is not None:
            if value <= 0:
                raise Lab4Error(f"{flag} must be > 0 seconds")
            os.environ[env] = f"{value:g}"  # the workers and their kernels start after this, and inherit it
    notebooks.training_deadline(args.profile)  # a bad $LAB4_TRAIN_DEADLINE or $LAB4_CELL_DEADLINE: exit 2
    notebooks.cell_deadline()
    notebooks.heartbeat_limit()  # a bad $LAB4_HEARTBEAT: exit 2 here, not in every run
    return run_grid(
        args.grid, args.profile, runs, args.only, args.jobs, scheduler, args.retries, args.overwrite
    )


def study_flags(p) -> None:
    from lab4.grid import study

    p.formatter_class = KebabRawHelpFormatter
    p.description = study.__doc__
    add_flag(p, "grid", default="study.yaml", help="the study grid (default study.yaml)")
    add_flag(p, "runs", default="runs/study", help="runs folder (default runs/study)")
    add_flag(
        p, "out", default="results/study", help="where the report reads the study (default results/study)"
    )
    add_flag(p, "jobs", type=int, default=None, help="runs at the same time (default: the grid driver's)")
    add_flag(p, "command", default="", help="the command to record in study.json (default: this one)")


def cmd_study(args) -> int:
    from lab4.grid.study import run_study

    if args.jobs is not None and args.jobs < 1:
        raise Lab4Error("--jobs must be >= 1")
    command = args.command or "python -m lab4 study " + " ".join(sys.argv[2:])
    return run_study(args.grid, args.runs, args.out, args.jobs, command)


# command -> (add its flags, run it)
COMMANDS = {"grid": (grid_flags, cmd_grid), "study": (study_flags, cmd_study)}
