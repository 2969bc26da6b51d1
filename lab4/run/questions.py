"""The comparisons a grid is run to make, fixed before its runs: each question names a reference strategy and
the strategies compared with it, and the report tests exactly those, with Holm's correction inside each
question. Choosing what to compare after seeing the scores (the best strategy against the rest) would test
a difference the data picked, and say "differs" more often than the 5% it claims.

The grid file's ``questions`` list sets them; the driver writes them into the runs folder, so the report of
that folder tests what its grid asked. A folder without one is tested on the lab's two questions below.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_text

QUESTIONS_FILE = "questions.json"  # in a runs folder, beside the run folders


@dataclass(frozen=True)
class Question:
    """``compare`` against ``reference``, each difference as (compared - reference)."""

    key: str  # a short name, letters only: the report's macros are named after it
    title: str  # the question as the report asks it
    reference: str
    compare: tuple[str, ...]


LAB_QUESTIONS = (
    Question("KL", "Does annealing the KL weight beat no annealing?", "none", ("monotonic", "cyclical")),
    Question("TF", "Does training without teacher forcing beat the decaying ratio?", "cyclical", ("tf-off",)),
)


def parse_questions(raw, where: str) -> tuple[Question, ...]:
    """The grid file's ``questions`` list -> Questions; Lab4Error naming ``where`` on any fault."""
    if not isinstance(raw, list) or not raw:
        raise Lab4Error(f"{where}: 'questions' must be a non-empty list")
    out = []
    for i, q in enumerate(raw):
        if not isinstance(q, dict) or set(q) != {"key", "title", "reference", "compare"}:
            raise Lab4Error(f"{where}: question #{i + 1} needs exactly key, title, reference and compare")
        compare = q["compare"]
        if not isinstance(compare, list) or not compare or not all(isinstance(c, str) for c in compare):
            raise Lab4Error(f"{where}: question #{i + 1}: compare must be a list of strategy names")
        if not (isinstance(q["key"], str) and q["key"].isalpha()):
            raise Lab4Error(f"{where}: question #{i + 1}: key must be letters only (the report's macros)")
        if q["reference"] in compare:
            raise Lab4Error(f"{where}: question {q['key']!r} compares {q['reference']!r} with itself")
        out.append(Question(q["key"], str(q["title"]), str(q["reference"]), tuple(compare)))
    keys = [q.key for q in out]
    if len(set(keys)) != len(keys):
        raise Lab4Error(f"{where}: question keys must differ")
    return tuple(out)


def write_questions(runs_dir, questions: tuple[Question, ...]) -> None:
    path = Path(runs_dir) / QUESTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([asdict(q) for q in questions], indent=2) + "\n")


def read_questions(runs_dir) -> tuple[Question, ...]:
    """The runs folder's questions, or the lab's two when its grid named none."""
    path = Path(runs_dir) / QUESTIONS_FILE
    if not path.is_file():
        return LAB_QUESTIONS
    return parse_questions(
        [{**q, "compare": list(q["compare"])} for q in json.loads(path.read_text())], str(path)
    )
