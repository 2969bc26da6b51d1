"""A run is what its folder says: training resumes only the same run, and replaces one only when asked.

The CLI's ``--resume``/``--overwrite``, 02_train's ``resume``/``overwrite`` and the grid all end in
:func:`claim`, called by ``Trainer.fit`` before it writes anything. What "the same run" means is the config
with the fields of lab4.config.RESUME_MAY_CHANGE left out (extending a run, moving its folder, another
device).
"""

from __future__ import annotations

from lab4.config import FIELDS, RESUME_MAY_CHANGE, Config, make_config
from lab4.run.folder import RunDir
from lab4.util.errors import Lab4Error
from lab4.util.paths import dataset_path, shown


class RunConflict(Lab4Error):
    """Training would resume or replace another run: a refusal, in one line, with the ways on."""


WAYS_ON = (
    "train into another folder (another name or run folder), or replace it (--overwrite; overwrite = True "
    "in 02_train; lab4 grid --overwrite)"
)


def differences(run: RunDir, cfg: Config) -> list[str]:
    """What ``cfg`` would change about the run in ``run``, one ``field: there -> asked`` each, leaving out the
    fields a resume may change; [] without a config.json."""
    old = {k: v for k, v in run.config().items() if k in FIELDS}
    if not old:
        return []
    try:
        old = make_config(old.pop("profile", "lab"), **old).to_dict()
    except (Lab4Error, TypeError, ValueError):
        pass  # an older or hand-edited config.json: compared as written
    new = cfg.to_dict()
    diffs = []
    for key in sorted(FIELDS - set(RESUME_MAY_CHANGE)):
        there, asked = old.get(key), new[key]
        if key == "data_root":  # "" and the path it stands for are one dataset
            there = str(dataset_path(there or "", old.get("synth_preset") or "small").resolve())
            asked = str(dataset_path(asked, cfg.synth_preset).resolve())
        if there != asked:
            diffs.append(f"{key} {_value(there)} -> {_value(asked)}")
    return diffs


def describe(run: RunDir) -> str:
    """'cyclical, 2 of 3 epochs trained' (', finished' once summary.json is written)."""
    cfg = run.config()
    name, epochs = cfg.get("name") or run.path.name, cfg.get("num_epoch", "?")
    text = f"{name}, {run.epochs_done()} of {epochs} epochs trained"
    return text + (", finished" if run.summary() else "")


def conflict(run: RunDir, cfg: Config, resume: bool) -> str | None:
    """Why ``cfg`` may not train in ``run`` without an overwrite, as one line; None when it may."""
    if not run.holds_run():
        return None
    diffs = differences(run, cfg)
    if resume and not diffs:
        return None
    where, what = shown(run.path), describe(run)
    if diffs:
        return f"{where} holds another run ({what}); asked: {'; '.join(diffs)}. To keep it, {WAYS_ON}"
    return (
        f"{where} already holds this run ({what}); "
        f"continue it (--resume; resume = True in 02_train), or {WAYS_ON}"
    )


def claim(run: RunDir, cfg: Config, resume: bool, overwrite: bool) -> str | None:
    """Make ``run`` ready for ``cfg``: nothing to do for an empty folder or the same run resumed; a
    RunConflict for anything else, unless ``overwrite``, which removes the run's files. Returns the line
    saying what an overwrite replaced (None when nothing was)."""
    why = conflict(run, cfg, resume)
    if why is None:
        return None
    if not overwrite:
        raise RunConflict(why)
    what, diffs = describe(run), differences(run, cfg)
    removed = run.clear()
    changed = f"; now {'; '.join(diffs)}" if diffs else ""
    return f"replaced the run in {shown(run.path)} ({what}{changed}): removed {', '.join(removed)}"


def _value(v) -> str:
    return "(unset)" if v in (None, "") else str(v)


def check_epochs(run: RunDir, cfg: Config, trained: int) -> None:
    """A resumed run that has trained more epochs than asked would never count as finished: refuse."""
    if trained > cfg.num_epoch:
        raise RunConflict(
            f"{shown(run.path)} has trained {trained} epochs, more than the {cfg.num_epoch} asked; "
            f"ask for at least {trained} (--num-epoch), or {WAYS_ON}"
        )


def stretch_note(run: RunDir, cfg: Config) -> str | None:
    """The line saying that extending a run stretches a schedule that spans it (None when nothing
    stretches)."""
    before = run.config().get("num_epoch")
    if before in (None, cfg.num_epoch) or cfg.kl_anneal_type not in ("monotonic", "cyclical"):
        return None
    return (
        f"{cfg.name}: num_epoch {before} -> {cfg.num_epoch}: the {cfg.kl_anneal_type} KL schedule spans the "
        "run, so the epochs still to come follow the new length"
    )
