"""The ``lab4`` command (also ``python -m lab4``): one parser, one error handler.

The top-level parser knows only each command's name and one line of help (the lists below); a command's
flags and code are imported when it is chosen, so ``lab4 --help`` answers without loading torch or the
modules that do the work.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sys
import textwrap
from typing import NamedTuple

from lab4.cli.flags import KebabHelpFormatter
from lab4.util.errors import Lab4Error


class Command(NamedTuple):
    name: str
    module: str  # the lab4.cli module whose COMMANDS maps the name to (add its flags, run it)
    help: str


STUDENT = (
    Command("train", "lab4.cli.run_commands", "train one experiment into a run folder"),
    Command("evaluate", "lab4.cli.run_commands", "validation rollout: PSNR/SSIM per frame, figure, samples"),
    Command("predict", "lab4.cli.run_commands", "test rollout: submission.csv and pred_seq<k>.gif"),
    Command("score", "lab4.cli.run_commands", "score a submission as the course does (public/private PSNR)"),
    Command("export", "lab4.cli.run_commands", "write a run's checkpoint in the course template's layout"),
    Command("make-data", "lab4.cli.run_commands", "generate SynthDance in the official layout"),
    Command(
        "report",
        "lab4.cli.report_commands",
        "the report from finished runs: figures and numbers, HTML pages, the README's table",
    ),
)
MAINTAINER = (
    Command(
        "grid", "lab4.cli.grid_commands", "run the experiment grid: 02_train.ipynb once per entry, resumable"
    ),
    Command(
        "study", "lab4.cli.grid_commands", "run the study grid (study.yaml) and export it to results/study/"
    ),
    Command(
        "bench",
        "lab4.cli.maintainer_commands",
        "measure the training and rollout speed of the fast path against the lab's reference",
    ),
    Command(
        "speedrun", "lab4.cli.maintainer_commands", "the CPU speedrun: training levers at an equal CPU budget"
    ),
    Command(
        "gpucheck",
        "lab4.cli.maintainer_commands",
        "the prepared GPU session: environment, correctness, benchmark and a grid inside a time budget",
    ),
    Command(
        "real-footage",
        "lab4.cli.maintainer_commands",
        "real footage (OpenCV's vtest.avi) in the official layout",
    ),
    Command(
        "config-doc",
        "lab4.cli.doc_commands",
        "write docs/config.md (every config field, profile and environment variable) from the config",
    ),
)
COMMANDS = {c.name: c for c in STUDENT + MAINTAINER}

DESCRIPTION = (
    "Conditional-VAE video prediction for the lab: train a run, evaluate it, predict the test "
    "sequences, score them and build the report."
)
EPILOG = (
    "'lab4 COMMAND --help' shows a command's flags; docs/config.md explains every config field. Flags are "
    "lower-case kebab (--num-epoch, --f-dim); the config fields' own spelling (--num_epoch, --F_dim) works "
    "too. Exit status 0 on success, 2 with one line on bad input."
)


class CommandParser(argparse.ArgumentParser):
    """A command's parser that imports its module and adds its flags only when it parses or shows help."""

    def __init__(self, *args, command: Command | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending = command

    def load(self) -> None:
        if self._pending is not None:
            command, self._pending = self._pending, None
            add_flags, run = importlib.import_module(command.module).COMMANDS[command.name]
            add_flags(self)
            self.set_defaults(fn=run)

    def parse_known_args(self, args=None, namespace=None):
        self.load()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.load()
        return super().format_usage()

    def format_help(self) -> str:
        self.load()
        return super().format_help()

    def error(self, message: str):
        """Bad input is one line, as a Lab4Error is (a command's usage lists every flag: too long to help),
        naming a flag by its one spelling in help, not all of them (--f-dim, not --f-dim/--F-dim/--F_dim)."""
        message = re.sub(r"(--[\w-]+)(?:/--[\w-]+)+", r"\1", message)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Version(argparse.Action):
    """--version: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        try:
            version = metadata.version("lab4")
        except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
            from lab4 import __version__ as version
        print(f"lab4 {version}")
        parser.exit()


def _width() -> int:
    return max(60, min(shutil.get_terminal_size().columns - 2, 100))


def _listing() -> str:
    """The description: what lab4 is, then the student's commands and the maintainer's, each with its help."""
    width = _width()
    pad = max(len(c.name) for c in COMMANDS.values()) + 4
    parts = [textwrap.fill(DESCRIPTION, width)]
    for title, commands in (("commands", STUDENT), ("maintainer commands", MAINTAINER)):
        lines = [
            textwrap.fill(c.help, width, initial_indent=f"  {c.name:<{pad - 2}}", subsequent_indent=" " * pad)
            for c in commands
        ]
        parts.append(f"{title}:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lab4",
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description=_listing(),
        epilog=textwrap.fill(EPILOG, _width(), break_on_hyphens=False),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=Version, help="show lab4's version and exit")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help=argparse.SUPPRESS,
        prog="lab4",
        parser_class=CommandParser,
    )
    for c in COMMANDS.values():
        sub.add_parser(c.name, command=c, description=c.help, formatter_class=KebabHelpFormatter)
    return p


def main(argv=None) -> int:
    """The one error handler: a Lab4Error is one line and exit 2, Ctrl-C exit 130."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except Lab4Error as e:
        print(f"lab4 {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupted", "")
        print(f"lab4 {args.command}: interrupted" + (f" ({hint})" if hint else ""), file=sys.stderr)
        return 130
