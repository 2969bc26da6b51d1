"""The experiment grid file (``experiments.yaml``): entries of config overrides, seeds expanded, checked
in full before any run starts, so a bad value fails in one line here rather than minutes later in a
notebook."""

from __future__ import annotations

import re
from pathlib import Path

from lab4.config import FIELDS, PROFILES, make_config, run_name, seeded_name
from lab4.run.folder import strategy_of
from lab4.run.questions import Question, parse_questions
from lab4.util.errors import Lab4Error

DRIVER_SET = {"name", "profile", "run_dir"}  # the driver sets these; a grid may not override them
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def load_questions(path) -> tuple[Question, ...]:
    """The grid file's questions (lab4.run.questions), () when it names none; load_grid has checked them."""
    import yaml

    raw = (yaml.safe_load(Path(path).read_text()) or {}).get("questions")
    return parse_questions(raw, str(path)) if raw is not None else ()


def load_grid(path, profile: str) -> list[tuple[str, dict]]:
    """(name, overrides) per run of the grid for ``profile``, seeds expanded; Lab4Error on any fault."""
    import yaml

    path = Path(path)
    if profile not in PROFILES:
        raise Lab4Error(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if not path.is_file():
        raise Lab4Error(f"{path}: no such grid file")
    try:
        grid = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise Lab4Error(
            f"{path}: bad YAML{line} ({getattr(e, 'problem', None) or type(e).__name__})"
        ) from None
    if not isinstance(grid, dict) or not isinstance(grid.get("experiments"), list):
        raise Lab4Error(f"{path}: expected a mapping with an 'experiments' list")
    unknown_top = set(grid) - {"experiments", "seeds", "questions"}
    if unknown_top:
        raise Lab4Error(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown_top))}")
    seeds = grid.get("seeds") or {}
    if not isinstance(seeds, dict) or not all(isinstance(v, list) for v in seeds.values()):
        raise Lab4Error(f"{path}: 'seeds' must map a profile to a list of seeds")
    runs = []
    for i, entry in enumerate(grid["experiments"]):
        if not isinstance(entry, dict):
            raise Lab4Error(f"{path}: experiment #{i + 1} must be a mapping (name, overrides, seeded)")
        overrides = entry.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise Lab4Error(f"{path}: experiment #{i + 1}: overrides must be a mapping")
        unknown = set(overrides) - FIELDS
        if unknown:
            raise Lab4Error(
                f"{path}: experiment #{i + 1}: unknown config field(s) {', '.join(sorted(unknown))}"
            )
        # without a name, an entry is named as the CLI and 02_train name a run: after what it trains
        name = str(entry["name"]) if entry.get("name") else run_name(profile, **{**overrides, "seed": 0})
        if not NAME_RE.match(name):
            raise Lab4Error(f"{path}: experiment name {name!r} must be letters, digits, '_', '.', '-'")
        bad = set(entry) - {"name", "overrides", "seeded"}
        if bad:
            raise Lab4Error(
                f"{path}: experiment {name!r}: unknown key(s) {', '.join(sorted(bad))} "
                f"(use name, overrides, seeded)"
            )
        if overrides.get("data_root"):  # relative to the grid file, not to wherever a notebook runs
            overrides = {**overrides, "data_root": str((path.parent / str(overrides["data_root"])).resolve())}
        fixed = set(overrides) & DRIVER_SET
        if fixed:
            raise Lab4Error(f"{path}: experiment {name!r}: {', '.join(sorted(fixed))} is set by the driver")
        for k, seed in enumerate(seeds.get(profile, [0]) if entry.get("seeded") else [None]):
            # the first seed writes the submission; the others skip the test rollout (the report's local test
            # score is the first seed's), which saves a quarter of a quick run
            skip = {} if k == 0 else {"predict": False}
            if seed in (None, 0):
                runs.append((name, {**overrides, **skip}))
            else:
                runs.append((seeded_name(name, seed), {**overrides, "seed": int(seed), **skip}))
    names = [n for n, _ in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise Lab4Error(f"{path}: duplicate run name(s): {', '.join(dup)}")
    strategies = {strategy_of(n) for n, _ in runs}
    for q in parse_questions(grid["questions"], str(path)) if "questions" in grid else ():
        missing = [s for s in (q.reference, *q.compare) if s not in strategies]
        if missing:
            raise Lab4Error(
                f"{path}: question {q.key!r} names {', '.join(missing)}, which the grid does not run"
            )
    for name, overrides in runs:  # bad values fail here, in one line, not minutes later in a notebook
        try:
            make_config(profile, name=name, **overrides)
        except (Lab4Error, TypeError, ValueError) as e:
            raise Lab4Error(f"{path}: experiment {name!r}: {e}") from None
    return runs
