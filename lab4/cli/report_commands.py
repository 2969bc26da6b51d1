"""``lab4 report {figures,html,table,noise}``: the report's steps from finished run folders.

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
        ("noise", "score finished runs again with more z draws and start points -> the noise record"),
    ):
        s = sub.add_parser(name, help=text, description=text, formatter_class=KebabRawHelpFormatter)
        add_flag(s, "runs", required=True, help="runs folder, e.g. runs/quick")
        if name == "table":
            continue
        if name == "noise":
            add_flag(s, "out", default="results/noise", help="where noise.json goes (default results/noise)")
            add_flag(s, "draws", type=int, default=3, help="z draws per rollout (default 3)")
            add_flag(s, "jobs", type=int, default=2, help="runs scored at once, one core each (default 2)")
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
    if args.step == "noise":
        from lab4.run.noise import measure

        command = f"lab4 report noise --runs {args.runs} --out {args.out} --draws {args.draws}"
        print(f"noise: -> {measure(args.runs, args.out, draws=args.draws, jobs=args.jobs, command=command)}")
        return 0
    build = args.build or str(project_root() / "report" / "build")
    if args.step == "figures":
        return run_figures(args.runs, build, args.figures_dir, args.generated_dir)
    return run_html(args.runs, build)


# command -> (add its flags, run it)
COMMANDS = {"report": (report_flags, cmd_report)}
