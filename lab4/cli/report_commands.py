"""``lab4 report {figures,html,table}``: the report's steps from finished run folders (lab4.report.build).

Its help is lab4.report.build's docstring; the report's modules are imported when the command is chosen.
"""

from __future__ import annotations

from lab4.cli.flags import KebabRawHelpFormatter, add_flag


def report_flags(p) -> None:
    from lab4.report import build

    p.formatter_class = KebabRawHelpFormatter
    p.description = build.__doc__
    sub = p.add_subparsers(dest="step", required=True)
    for name, text in (
        ("figures", "execute notebooks/03_compare.ipynb over the runs"),
        ("html", "export the executed notebooks to HTML pages"),
        ("table", "print the README's results table"),
    ):
        s = sub.add_parser(name, help=text, description=text, formatter_class=KebabRawHelpFormatter)
        add_flag(s, "runs", required=True, help="runs folder, e.g. runs/quick")
        if name == "table":
            continue
        add_flag(s, "build", default=None, help="where the build goes (default report/build)")
        if name == "figures":
            add_flag(
                s, "figures_dir", default=None, help="03_compare's figures_dir (default: the notebook's)"
            )
            add_flag(
                s, "generated_dir", default=None, help="03_compare's generated_dir (default: the notebook's)"
            )


def cmd_report(args) -> int:
    from lab4.report.build import print_table, run_figures
    from lab4.report.html import run_html
    from lab4.util.paths import project_root

    if args.step == "table":
        return print_table(args.runs)
    build = args.build or str(project_root() / "report" / "build")
    if args.step == "figures":
        return run_figures(args.runs, build, args.figures_dir, args.generated_dir)
    return run_html(args.runs, build)


# command -> (add its flags, run it)
COMMANDS = {"report": (report_flags, cmd_report)}
