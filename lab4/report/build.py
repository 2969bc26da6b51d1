"""``lab4 report``: the report's steps after the grid, each from finished run folders (it never trains).

    python -m lab4 report figures --runs runs/quick   # notebooks/03_compare.ipynb -> report/build/
    python -m lab4 report html --runs runs/quick      # executed notebooks -> report/build/html/
    python -m lab4 report table --runs runs/quick     # the README's results table, printed
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from lab4.report.html import run_html
from lab4.report.numbers import readme_table
from lab4.rundir import load_runs
from lab4.util import notebooks
from lab4.util.cliargs import KebabRawHelpFormatter, add_flag
from lab4.util.errors import Lab4Error
from lab4.util.paths import project_root, require_checkout, shown

NOTEBOOKS = project_root() / "notebooks"
COMPARE_NB = NOTEBOOKS / "03_compare.ipynb"
HELP = "the report from finished runs: figures and numbers, HTML pages, the README's table"


def run_figures(runs_dir, build_dir, figures_dir=None, generated_dir=None, study_dir=None) -> int:
    """03_compare executed over ``runs_dir``: the figures, the results table and the LaTeX numbers (and the
    longer-budget section from ``study_dir``, default results/study/)."""
    require_checkout("the report's figures (make figures)")
    if not COMPARE_NB.is_file():
        raise Lab4Error(f"{shown(COMPARE_NB)}: the comparison notebook is missing")
    runs_dir = Path(runs_dir).resolve()
    if not runs_dir.is_dir():
        raise Lab4Error(f"{shown(runs_dir)}: no such runs folder (run the experiments first)")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    params = dict(runs_dir=str(runs_dir))
    if figures_dir:
        params["figures_dir"] = str(Path(figures_dir).resolve())
    if generated_dir:
        params["generated_dir"] = str(Path(generated_dir).resolve())
    if study_dir:
        params["study_dir"] = str(Path(study_dir).resolve())
    out = build_dir / COMPARE_NB.name
    import papermill as pm
    t0 = time.perf_counter()
    try:
        notebooks.execute(COMPARE_NB, out, params, cwd=NOTEBOOKS)
    except pm.PapermillExecutionError as e:
        print(f"figures: FAILED ({e.ename}: {e.evalue}) -> {shown(out)}", file=sys.stderr)
        return 1
    except notebooks.NotebookStopped as e:
        print(f"figures: FAILED ({e})", file=sys.stderr)
        return 1
    print(f"figures: done in {time.perf_counter() - t0:.1f}s -> {shown(out)}")
    return 0


def print_table(runs_dir) -> int:
    runs = load_runs(runs_dir) if Path(runs_dir).is_dir() else []
    if not runs:
        raise Lab4Error(f"{runs_dir}: no runs with metrics.csv")
    print(readme_table(runs), end="")
    return 0


def add_arguments(p) -> None:
    p.formatter_class = KebabRawHelpFormatter
    p.description = __doc__
    sub = p.add_subparsers(dest="step", required=True)
    for name, text in (("figures", "execute notebooks/03_compare.ipynb over the runs"),
                       ("html", "export the executed notebooks to HTML pages"),
                       ("table", "print the README's results table")):
        s = sub.add_parser(name, help=text, description=text, formatter_class=KebabRawHelpFormatter)
        add_flag(s, "runs", required=True, help="runs folder, e.g. runs/quick")
        if name == "table":
            continue
        add_flag(s, "build", default=None, help="where the build goes (default report/build)")
        if name == "figures":
            add_flag(s, "figures_dir", default=None, help="03_compare's figures_dir (default: the notebook's)")
            add_flag(s, "generated_dir", default=None, help="03_compare's generated_dir (default: the notebook's)")


def run(args) -> int:
    if args.step == "table":
        return print_table(args.runs)
    build = args.build or str(project_root() / "report" / "build")
    if args.step == "figures":
        return run_figures(args.runs, build, args.figures_dir, args.generated_dir)
    return run_html(args.runs, build)


if __name__ == "__main__":
    from lab4.cli import main
    sys.exit(main(["report", *sys.argv[1:]]))
