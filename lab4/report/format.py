"""How the report prints a number or a name: one place for "n/a", signs, big numbers and LaTeX escapes,
so that every generated macro reads the same way."""

from __future__ import annotations

import numpy as np

from lab4.schedules import KL_STRATEGIES

NA = "n/a"  # a number that these runs cannot give

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s) -> str:
    return "".join(_LATEX_SPECIALS.get(c, c) for c in str(s))


def fmt(x, digits: int = 2) -> str:
    return NA if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def range_text(values) -> str:
    """1 -> "1", [1, 2] -> "1--2" (an en dash in the PDF)."""
    v = sorted(set(values))
    return NA if not v else str(v[0]) if len(v) == 1 else f"{v[0]}--{v[-1]}"


def signed(x, digits: int = 2, plus: str = "") -> str:
    """A difference: a minus sign (not a hyphen) in the PDF, and ``plus`` before a positive one ("" =
    none)."""
    if x is None or not np.isfinite(x):
        return NA
    return f"{x:+.{digits}f}".replace("-", "$-$").replace("+", plus)


def thousands(x) -> str:
    """1234567 -> "1{,}234{,}567": a whole number with thin commas in the PDF."""
    return f"{x:,.0f}".replace(",", "{,}")


def big(x) -> str:
    """1234.5 -> "1{,}235" (a thin comma in the PDF), 12.345 -> "12.35", 0.0123 -> "0.012"."""
    if x is None or not np.isfinite(x):
        return NA
    if abs(x) >= 100:
        return thousands(x)
    if abs(x) >= 1 or x == 0:
        return f"{x:.2f}"
    return f"{x:.2g}" if abs(x) >= 1e-3 else "$<$0.001"


def macro_file(written_by: str, macros: dict) -> str:
    """A generated .tex file of ``\\newcommand``s, one per macro, headed by what wrote it."""
    lines = "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in macros.items())
    return f"% written by {written_by}; do not edit\n" + lines


# the grid's other strategies as prose names them (the study's runs: lab4.report.study.roles)
DISPLAY_NAMES = {"tf-off": "TF off", "tf-half": "TF 0.5", "free-bits": "Free bits"}


def display_name(strategy: str) -> str:
    """A strategy as the report names it: the lab's KL strategies capitalised (Cyclical), the grid's others by
    what they are (TF off), any other as named."""
    return strategy.capitalize() if strategy in KL_STRATEGIES else DISPLAY_NAMES.get(strategy, strategy)


def order_text(order) -> str:
    """Strategies best first, as 'Monotonic $>$ None $>$ Cyclical'."""
    return " $>$ ".join(tex_escape(display_name(s)) for s in order) or NA


def check_cases(macros: dict, cases: dict) -> None:
    """A case macro outside its values is a bug in the code that chose it, not a sentence the report lacks.
    Raised, not asserted: ``python -O`` keeps the check."""
    for name, values in cases.items():
        if macros[name] not in values:
            raise ValueError(f"{name}={macros[name]!r} is not one of {values}")
