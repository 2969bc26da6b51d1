"""docs/config.md, made from the config's metadata: every field, every profile and every environment variable
lab4, its scripts and its Makefile read, so the page cannot say something the code does not
(``python -m lab4 config-doc`` writes it; a test checks that it is up to date)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from lab4.config.fields import Config, choices, field_help
from lab4.config.profiles import PROFILE_HELP, PROFILES
from lab4.util import notebooks


class Env(NamedTuple):
    name: str
    default: str
    what: str
    read_by: str


def _deadlines() -> str:
    by_profile = ", ".join(f"{p} {notebooks.human(s)}" for p, s in notebooks.TRAINING_S.items())
    return f"by profile: {by_profile}"


# Every environment variable read by lab4/, scripts/, the Makefile (its ``?=`` variables) and the tests;
# tests/test_config_doc.py finds them in the code and fails on one missing here.
ENVIRONMENT = (
    Env(
        "LAB4_DATA",
        "unset: SynthDance",
        "The dataset used when a config's data_root is empty. `make DATA=...` "
        "sets it; a relative path is made absolute where it was given.",
        "lab4/util/paths.py, Makefile",
    ),
    Env(
        "LAB4_HOME",
        "the checkout, else the current folder",
        "The folder that holds data/, data/cache/ and the default runs/.",
        "lab4/util/paths.py",
    ),
    Env(
        "LAB4_CACHE",
        "$LAB4_HOME/data/cache",
        "Where decoded frames are cached (one .pt file per split and frame size), so that the next run "
        "loads them fast.",
        "lab4/datasets/official.py",
    ),
    Env(
        "LAB4_RUNS",
        "runs/ under $LAB4_HOME",
        "The folder 04_explore searches for runs when its runs_dir is empty.",
        "lab4/report/explore.py",
    ),
    Env(
        "LAB4_CPU_BF16",
        "unset",
        "0: treat the CPU as one without native bf16, so amp trains in fp32: to measure as on such a "
        "CPU. Other values change nothing.",
        "lab4/util/device.py",
    ),
    Env(
        "LAB4_TRAIN_DEADLINE",
        _deadlines(),
        "Seconds a notebook's training cell may run under the grid "
        "before it is stopped (`lab4 grid --train-deadline`).",
        "lab4/util/notebooks.py",
    ),
    Env(
        "LAB4_CELL_DEADLINE",
        notebooks.human(notebooks.CELL_S),
        "Seconds any other notebook cell may run under the grid (`lab4 grid --cell-deadline`).",
        "lab4/util/notebooks.py",
    ),
    Env(
        "LAB4_HEARTBEAT",
        notebooks.human(notebooks.HEARTBEAT_S),
        "Seconds a notebook's kernel may miss "
        "heartbeats before the grid kills it and retries the run from last.pt.",
        "lab4/util/notebooks.py",
    ),
    Env(
        "LAB4_CHROMIUM",
        "/usr/bin/chromium",
        "The Chromium that the explorer's picture and browser test drive.",
        "scripts/explorer_picture.py, tests/test_browser.py",
    ),
    Env(
        "LAB4_TEST_INDUCTOR",
        "unset",
        "1: the compile tests use inductor, as training does (minutes on 2 cores), instead of aot_eager.",
        "tests/test_fastpath.py",
    ),
    Env(
        "DASK_SCHEDULER",
        "unset: a local cluster",
        "A Dask scheduler's address (tcp://host:8786) that the grid sends its runs to; --scheduler wins.",
        "lab4/cli/grid_commands.py, Makefile",
    ),
    Env(
        "CUDA_VISIBLE_DEVICES",
        "every GPU torch sees",
        "The GPUs the grid spreads its runs over, one run per GPU.",
        "lab4/grid/cluster.py",
    ),
    Env(
        "OMP_NUM_THREADS",
        "the CPU cores / the runs at once; 2 in gpu_session.sh",
        "Threads per grid worker.",
        "lab4/grid/cluster.py, scripts/gpu_session.sh",
    ),
    Env(
        "JUPYTER_PATH",
        "unset",
        "Where Jupyter looks for kernels: lab4 puts its venv's share/jupyter first, "
        "so the lab4 kernel is this checkout's.",
        "lab4/util/notebooks.py, Makefile",
    ),
    Env(
        "TORCHINDUCTOR_COMPILE_THREADS",
        "2 in gpucheck's grid",
        "torch.compile's worker processes per kernel.",
        "lab4/perf/gpucheck_steps.py",
    ),
    Env("PROFILE", "quick", "The profile of `make experiments`.", "Makefile"),
    Env("DATA", "unset", "`make`'s dataset: exported as LAB4_DATA, made absolute.", "Makefile"),
    Env(
        "RUNS", "runs/$(PROFILE)", "The runs folder of `make experiments`, `figures` and `html`.", "Makefile"
    ),
    Env("GRID", "experiments.yaml", "The grid file of `make experiments`.", "Makefile"),
    Env(
        "JOBS",
        "unset: one run per GPU, else 3",
        "Runs at once in `make experiments` and `make study`.",
        "Makefile",
    ),
    Env(
        "PY", "python3", "The Python the GPU scripts run.", "scripts/gpu_session.sh, scripts/build_wheels.sh"
    ),
    Env("BUDGET_S", "480", "Seconds the GPU session has, all steps together.", "scripts/gpu_session.sh"),
    Env("OUT", "./gpu-out", "Where the GPU session packs what comes back.", "scripts/gpu_session.sh"),
    Env("WORK", "/tmp/lab4-gpucheck", "The GPU session's working folder.", "scripts/gpu_session.sh"),
    Env(
        "WHEELS",
        ".whl",
        "The wheels the GPU session installs; none: the installed packages.",
        "scripts/gpu_session.sh",
    ),
    Env(
        "LIMIT_MIB", "40", "The most MiB of wheels `make gpu-wheels` may download.", "scripts/build_wheels.sh"
    ),
)


def _cell(text: str) -> str:
    """Text as a table cell shows it: no column breaks, no emphasis from N*H*W, no tag from <name>."""
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("<", "\\<").replace("\n", " ")


def _value(v) -> str:
    return f'`"{v}"`' if isinstance(v, str) else f"`{v!r}`"


def _table(header: tuple[str, ...], rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def config_markdown() -> str:
    """The text of docs/config.md."""
    fields = [
        (f"`{f.name}`", _value(f.default), ", ".join(f"`{c}`" for c in choices(f.name)), field_help(f.name))
        for f in dataclasses.fields(Config)
    ]
    profiles = [
        (
            f"`{name}`",
            PROFILE_HELP[name],
            ", ".join(f"{k}={_value(v)}" for k, v in overrides.items()) or "none",
        )
        for name, overrides in PROFILES.items()
    ]
    env = [(f"`{e.name}`", e.default, e.what, e.read_by) for e in ENVIRONMENT]
    parts = [
        "# Configuration",
        "",
        "Every setting of a run, every profile and every environment variable lab4 reads, in one place "
        "(generated from `lab4/config/` by `python -m lab4 config-doc`; do not edit by hand).",
        "",
        "## Config fields",
        "",
        "A run's settings: `lab4 train --field-name VALUE`, a notebook's parameters cell or a grid entry. "
        "A profile's overrides replace the default; what you give replaces both.",
        "",
        *_table(("field", "default", "choices", "what it does"), fields),
        "",
        "## Profiles",
        "",
        "A profile is a named set of overrides on top of the defaults above (`--profile`, `profile = ...`).",
        "",
        *_table(("profile", "what it is for", "overrides"), profiles),
        "",
        "## Environment variables",
        "",
        "Read by lab4, its scripts, the Makefile (whose variables can also come from the environment) and "
        "the tests.",
        "",
        *_table(("variable", "default", "what it does", "read by"), env),
    ]
    return "\n".join(parts) + "\n"
