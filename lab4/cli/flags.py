"""One spelling on every command line: lower-case ``--kebab-case`` in ``--help``; the config fields' own
spellings (``--num_epoch``, ``--F_dim``, ``--F-dim``) are accepted too (one argparse action with all the
names, only the first shown). A config field's flag takes its type, help and choices from the field's
metadata (:func:`config_flag`), so the CLI says what docs/config.md and the notebooks say."""

from __future__ import annotations

import argparse
import copy

from lab4.config import FIELD, choices, field_help, valid_choice


def flag_names(name: str) -> list[str]:
    """'num_epoch' -> ['--num-epoch', '--num_epoch']; 'F_dim' -> ['--f-dim', '--F-dim', '--F_dim', '--f_dim']:
    the lower-case kebab name first (the one help shows), then the other spellings, without repeats."""
    bare = name.lstrip("-")
    kebab, snake = bare.replace("_", "-"), bare.replace("-", "_")
    return ["--" + n for n in dict.fromkeys([kebab.lower(), kebab, snake, snake.lower()])]


def add_flag(parser, name: str, **kw) -> argparse.Action:
    """``parser.add_argument`` under every spelling; ``dest`` is the snake_case name (the config field's)."""
    kw.setdefault("dest", name.lstrip("-").replace("-", "_"))
    return parser.add_argument(*flag_names(name), **kw)


def parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _one_of(name: str):
    """The type of an enumeration's flag: the value if it is one of the field's choices, else one line."""

    def check(value: str) -> str:
        if not valid_choice(name, value):
            raise argparse.ArgumentTypeError(
                f"invalid choice {value!r} (choose from {', '.join(choices(name))})"
            )
        return value

    return check


def config_flag(parser, name: str, **kw) -> argparse.Action:
    """The flag of Config field ``name``: its help and, for an enumeration, its choices from the field's
    metadata; default None, so that the profile's value stands unless the flag is given (``kw`` overrides)."""
    f = FIELD[name]
    spec = dict(default=None, help=field_help(name).replace("%", "%%"))
    if isinstance(f.default, bool):
        spec.update(type=parse_bool, metavar="{true,false}")
    elif isinstance(f.default, tuple):
        spec.update(type=int, nargs="+", metavar="EPOCH")
    elif choices(name):
        spec.update(type=_one_of(name), metavar="{" + ",".join(choices(name)) + "}")
    else:
        spec.update(type=type(f.default))
    return add_flag(parser, name, **{**spec, **kw})


def _shown(option: str) -> bool:
    return option == option.lower() and "_" not in option


class _HideAliases:
    """Show only the lower-case kebab name of a flag that has other spellings."""

    def _format_action_invocation(self, action):
        shown = [s for s in action.option_strings if _shown(s)]
        if shown and len(shown) < len(action.option_strings):
            action = copy.copy(action)
            action.option_strings = shown
        return super()._format_action_invocation(action)


class KebabHelpFormatter(_HideAliases, argparse.HelpFormatter):
    pass


class KebabRawHelpFormatter(_HideAliases, argparse.RawDescriptionHelpFormatter):
    pass
