"""One spelling on every command line: ``--kebab-case`` in ``--help``; the ``--snake_case`` of the config
fields and notebook parameters is accepted too (one argparse action with both names, the second hidden)."""

from __future__ import annotations

import argparse
import copy


def flag_names(name: str) -> list[str]:
    """'num_epoch' or '--num-epoch' -> ['--num-epoch', '--num_epoch'] (one name when they are the same)."""
    bare = name.lstrip("-")
    kebab, snake = "--" + bare.replace("_", "-"), "--" + bare.replace("-", "_")
    return [kebab] if kebab == snake else [kebab, snake]


def add_flag(parser, name: str, **kw) -> argparse.Action:
    """``parser.add_argument`` under both spellings; ``dest`` is the snake_case name (the config field's)."""
    kw.setdefault("dest", name.lstrip("-").replace("-", "_"))
    return parser.add_argument(*flag_names(name), **kw)


class _HideSnake:
    """Show only the kebab-case name of a flag that has both."""

    def _format_action_invocation(self, action):
        if len(action.option_strings) > 1:
            shown = [s for s in action.option_strings if "_" not in s]
            if shown:
                action = copy.copy(action)
                action.option_strings = shown
        return super()._format_action_invocation(action)


class KebabHelpFormatter(_HideSnake, argparse.HelpFormatter):
    pass


class KebabRawHelpFormatter(_HideSnake, argparse.RawDescriptionHelpFormatter):
    pass
