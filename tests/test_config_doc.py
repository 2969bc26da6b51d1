"""Help on every option from one source: each Config field's metadata holds its help (and an enumeration's
choices), which match what the code accepts; docs/config.md is what that metadata makes, and lists every
environment variable the code reads."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from lab4.config import (
    DEVICES,
    FIELDS,
    PROFILE_HELP,
    PROFILES,
    SYNTH_PRESETS,
    Config,
    choices,
    field_help,
    make_config,
    summary,
)
from lab4.config.doc import ENVIRONMENT, config_markdown
from lab4.util.errors import Lab4Error

ROOT = Path(__file__).resolve().parents[1]
ENUMERATIONS = {"profile", "synth_preset", "device", "kl_anneal_type"}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_field_has_help_whose_first_sentence_is_short(name):
    """Plain sentences; the first one (the notebooks' comment) says what the value is in a few words."""
    text = field_help(name)
    assert text.endswith("."), text
    assert len(summary(name)) <= 100 and summary(name).endswith("."), summary(name)
    assert "e.g." not in summary(name) and "  " not in text


def test_enumerations_list_the_values_the_code_accepts():
    from lab4.datasets.synth import PRESETS
    from lab4.schedules import KL_TYPES

    assert {f.name for f in dataclasses.fields(Config) if choices(f.name)} == ENUMERATIONS
    assert choices("profile") == tuple(PROFILES) and set(PROFILE_HELP) == set(PROFILES)
    assert choices("kl_anneal_type") == KL_TYPES
    assert set(SYNTH_PRESETS) == set(PRESETS) and choices("synth_preset") == SYNTH_PRESETS
    assert choices("device") == DEVICES
    for name in ENUMERATIONS:  # each default is one of its choices
        assert getattr(Config(), name) in choices(name)


@pytest.mark.parametrize(
    "field, good, bad",
    [
        ("kl_anneal_type", "monotonic-held", "linear"),
        ("device", "cuda:1", "gpu"),
        ("synth_preset", "full", "huge"),
    ],
)
def test_make_config_takes_a_choice_and_refuses_anything_else(field, good, bad):
    assert getattr(make_config("tiny", **{field: good}), field) == good
    with pytest.raises(Lab4Error, match=field):
        make_config("tiny", **{field: bad})


def test_make_config_still_validates():
    assert make_config("tiny", kl_anneal_type="Cyclical").kl_anneal_type == "Cyclical"  # as before: any case
    for bad in (dict(lr=0), dict(tfr=1.5), dict(frame_H=30), dict(nope=1)):
        with pytest.raises(Lab4Error):
            make_config("tiny", **bad)
    with pytest.raises(Lab4Error, match="unknown profile"):
        make_config("nope")


def test_docs_config_md_is_what_the_metadata_makes():
    """Regenerated and compared, so the page cannot drift from the code: `python -m lab4 config-doc`."""
    text = (ROOT / "docs" / "config.md").read_text()
    assert text == config_markdown(), "docs/config.md is out of date: run `python -m lab4 config-doc`"
    assert text.startswith("# Configuration\n\nEvery setting of a run")
    for name in FIELDS | set(PROFILES) | {e.name for e in ENVIRONMENT}:
        assert f"| `{name}` |" in text, name


def _python_reads(text: str) -> set[str]:
    """Names read through os.environ.get/setdefault/[...] or os.getenv with a literal name (not writes)."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and (
                (node.func.attr in ("get", "setdefault") and ast.unparse(node.func.value).endswith("environ"))
                or node.func.attr == "getenv"
            )
        ):
            arg = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            arg = node.slice if ast.unparse(node.value).endswith("environ") else None
        else:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.add(arg.value)
    return found


def _environment_read() -> set[str]:
    """Every environment variable the code reads: any LAB4_* name in lab4/, scripts/, the Makefile and the
    tests; literal os.environ reads in Python; ${NAME:-default} in shell scripts; the Makefile's NAME ?=."""
    lab4_name = re.compile(r"\bLAB4_[A-Z][A-Z0-9_]*\b")
    found = set()
    python = [*(ROOT / "lab4").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    for path in python:
        found |= _python_reads(path.read_text()) | set(lab4_name.findall(path.read_text()))
    for path in (ROOT / "scripts").glob("*.sh"):
        text = path.read_text()
        found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", text)) | set(lab4_name.findall(text))
    makefile = (ROOT / "Makefile").read_text()
    found |= set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*\?=", makefile, re.M)) | set(lab4_name.findall(makefile))
    for path in (ROOT / "tests").glob("*.py"):
        found |= set(lab4_name.findall(path.read_text()))
    return found


def test_every_environment_variable_the_code_reads_is_documented_once():
    documented = [e.name for e in ENVIRONMENT]
    assert len(documented) == len(set(documented))
    read = _environment_read()
    assert {
        "LAB4_DATA",
        "LAB4_HOME",
        "LAB4_CACHE",
        "LAB4_HEARTBEAT",
        "LAB4_CPU_BF16",
        "LAB4_CHROMIUM",
    } <= read
    assert read - set(documented) == set(), "add these to lab4/config/doc.py ENVIRONMENT"
    assert set(documented) - read == set(), "no longer read anywhere: remove them from ENVIRONMENT"
    assert all(e.default and e.what.endswith(".") and e.read_by for e in ENVIRONMENT)


def test_the_environment_scan_sees_reads_not_writes():
    src = (
        "import os\nos.environ.get('A')\nos.environ['B']\nos.getenv('C')\nos.environ.setdefault('D', '1')\n"
        "os.environ['E'] = '1'\nenv = {**os.environ, 'F': '1'}\n"
    )
    assert _python_reads(src) == {"A", "B", "C", "D"}
