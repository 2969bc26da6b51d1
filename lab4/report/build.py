"""``lab4 report``: the report's steps after the grid, each from finished run folders (it never trains).

python -m lab4 report figures --runs runs/quick   # notebooks/03_compare.ipynb -> report/build/
python -m lab4 report html --runs runs/quick      # executed notebooks -> report/build/html/
python -m lab4 report table --runs runs/quick     # the README's results table, printed
python -m lab4 report noise --runs runs/quick     # more z draws and start points -> results/noise/noise.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lab4.report import sections
from lab4.report.numbers import readme_table
from lab4.run.folder import load_runs
from lab4.util import notebooks
from lab4.util.errors import Lab4Error
from lab4.util.paths import project_root, require_checkout, shown

NOTEBOOKS = project_root() / "notebooks"
COMPARE_NB = NOTEBOOKS / "03_compare.ipynb"


def run_figures(
    runs_dir, build_dir, figures_dir=None, generated_dir=None, study_dir=None, folders=None
) -> int:
    """03_compare executed over ``runs_dir``: the figures, the results table and the LaTeX numbers (and the
    longer-budget section from ``study_dir``, default results/study/); it fails where the notebook left a
    section of lab4.report.sections unwritten."""
    require_checkout("the report's figures (make figures)")
    if not COMPARE_NB.is_file():
        raise Lab4Error(f"{shown(COMPARE_NB)}: the comparison notebook is missing")
    runs_dir = Path(runs_dir).resolve()
    if not runs_dir.is_dir():
        raise Lab4Error(f"{shown(runs_dir)}: no such runs folder (run the experiments first)")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    generated_dir = Path(generated_dir).resolve() if generated_dir else project_root() / sections.GENERATED
    params = dict(runs_dir=str(runs_dir), generated_dir=str(generated_dir))
    if figures_dir:
        params["figures_dir"] = str(Path(figures_dir).resolve())
    if study_dir:
        params["study_dir"] = str(Path(study_dir).resolve())
    # other results folders by 03_compare's parameter name (extra_dir, mechanism_dir, control_dir, ...)
    params.update({k: str(Path(v).resolve()) for k, v in (folders or {}).items()})
    out = build_dir / COMPARE_NB.name
    import papermill as pm

    t0, started = time.perf_counter(), time.time()
    try:
        notebooks.execute(COMPARE_NB, out, params, cwd=NOTEBOOKS)
    except pm.PapermillExecutionError as e:
        print(f"figures: FAILED ({e.ename}: {e.evalue}) -> {shown(out)}", file=sys.stderr)
        return 1
    except notebooks.NotebookStopped as e:
        print(f"figures: FAILED ({e})", file=sys.stderr)
        return 1
    # whole seconds, as some disks keep them
    if missing := sections.unwritten(generated_dir, since=int(started)):
        print(
            f"figures: FAILED (03_compare did not write {', '.join(missing)} in {shown(generated_dir)})",
            file=sys.stderr,
        )
        return 1
    print(f"figures: done in {time.perf_counter() - t0:.1f}s -> {shown(out)}")
    return 0


def print_table(runs_dir) -> int:
    runs = load_runs(runs_dir) if Path(runs_dir).is_dir() else []
    if not runs:
        raise Lab4Error(f"{runs_dir}: no runs with metrics.csv")
    print(readme_table(runs), end="")
    return 0
