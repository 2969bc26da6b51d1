"""``lab4 config-doc``: docs/config.md from the config's metadata (lab4.config.doc), or a check that it is up
to date."""

from __future__ import annotations

from lab4.cli.flags import add_flag
from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_text
from lab4.util.paths import absolute, require_checkout, shown


def config_doc_flags(p) -> None:
    add_flag(p, "out", default="", help="the file to write (default: docs/config.md in the checkout)")
    add_flag(
        p, "check", action="store_true", help="write nothing; exit 2 if the file is not what it would write"
    )


def cmd_config_doc(args) -> None:
    from lab4.config.doc import config_markdown

    out = absolute(args.out) if args.out else require_checkout("lab4 config-doc") / "docs" / "config.md"
    text = config_markdown()
    if args.check:
        if not out.is_file() or out.read_text() != text:
            raise Lab4Error(f"{shown(out)} is out of date: run `python -m lab4 config-doc`")
        print(f"{shown(out)} is up to date")
        return
    atomic_write_text(out, text)
    print(f"the config's fields, profiles and environment variables -> {shown(out)}")


# command -> (add its flags, run it)
COMMANDS = {"config-doc": (config_doc_flags, cmd_config_doc)}
