"""Which of the study's runs plays which part in its section, from the study's grid (study.yaml as
lab4.grid.spec.load_grid expands it, passed in by 03_compare), so that the report names none of its runs.

A *quirk* is Monotonic with one setting changed: an entry other than the lab's KL schedules whose overrides
are those of a Monotonic entry with one field set or changed. That field says which of main.tex's quirk
paragraphs the entry is (QUIRK_KEYS); a quirk of another field has no paragraph and is left out. The
real-footage runs are the entries with a data_root: one on the lab's loss (KL weight 1), one with the KL
averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab4.config import make_config
from lab4.report.format import display_name
from lab4.run.folder import strategy_of
from lab4.schedules import KL_STRATEGIES
from lab4.util.errors import Lab4Error

PROFILE = "study"
# the setting a quirk changes -> its macro key (\Study<key>Case, ...) and how the study's table names the run
QUIRK_KEYS = {"milestones": "LrLate", "leaky_true_slope": "Leaky", "kl_anneal_type": "Held"}
QUIRK_LABELS = {"LrLate": "Late lr drop", "Leaky": "LeakyReLU {leaky_true_slope:g}", "Held": "Monotonic held"}
NOT_SETTINGS = {"name", "seed", "predict", "run_dir"}  # what differs between two runs of one entry


@dataclass(frozen=True)
class Roles:
    """``quirks``: macro key -> (quirk run, its Monotonic reference), both None where the grid has no such
    quirk; ``real`` and ``real_mean``: the real-footage runs; ``labels``: how tables and figures name a
    run."""

    quirks: dict = field(default_factory=lambda: {key: (None, None) for key in QUIRK_KEYS.values()})
    real: str | None = None
    real_mean: str | None = None
    labels: dict = field(default_factory=dict)

    def label(self, strategy: str) -> str:
        return self.labels.get(strategy) or display_name(strategy)


def _first_seeds(grid) -> dict[str, dict]:
    """{strategy: overrides} of each entry, from its first seed."""
    out: dict[str, dict] = {}
    for name, over in grid:
        out.setdefault(strategy_of(name), {k: v for k, v in over.items() if k not in NOT_SETTINGS})
    return out


def _settings(over: dict) -> dict:
    return {k: v for k, v in make_config(PROFILE, **over).to_dict().items() if k not in NOT_SETTINGS}


def roles(grid) -> Roles:
    """The roles in ``grid`` (``[(run name, overrides)]``; [] gives a study without quirks or real
    footage)."""
    entries = _first_seeds(grid)
    cfg = {s: _settings(over) for s, over in entries.items()}
    reals = [s for s, over in entries.items() if over.get("data_root")]
    sim = [s for s in entries if s not in reals]
    quirks = Roles().quirks
    for q in (s for s in sim if s not in KL_STRATEGIES):
        for ref in sim:
            if (
                ref == q
                or cfg[ref]["kl_anneal_type"] != "monotonic"
                or not set(entries[ref]) <= set(entries[q])
            ):
                continue
            changed = [k for k in cfg[q] if cfg[q][k] != cfg[ref][k]]
            if len(changed) != 1 or changed[0] not in QUIRK_KEYS:
                continue
            key = QUIRK_KEYS[changed[0]]
            if quirks[key][0] not in (None, q):
                raise Lab4Error(
                    f"the study grid has two runs that change {changed[0]} on Monotonic: "
                    f"{quirks[key][0]} and {q}; the report has one paragraph for it"
                )
            quirks[key] = (q, ref)
    quick = make_config(PROFILE).num_epoch

    def epochs(s):
        return f", {cfg[s]['num_epoch']} epochs" if cfg[s]["num_epoch"] != quick else ""

    labels = {}
    for key, (q, ref) in quirks.items():
        if q is not None:
            labels[q] = QUIRK_LABELS[key].format(**cfg[q]) + epochs(q)
            if ref not in KL_STRATEGIES:
                labels[ref] = display_name(cfg[ref]["kl_anneal_type"]) + epochs(ref)
    real = next((s for s in reals if cfg[s]["kl_weight"] == 1.0), None)
    real_mean = next((s for s in reals if s != real), None)
    if real:
        labels[real] = f"{display_name(cfg[real]['kl_anneal_type'])}, real footage"
    if real_mean:
        labels[real_mean] = "KL averaged"
    return Roles(quirks, real, real_mean, labels)
