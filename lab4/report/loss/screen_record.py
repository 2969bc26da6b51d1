"""A screened run's record: what scripts/screen_quick.py writes for one run it trains, and what the report
reads back (lab4.report.loss.balance, from results/labloss-screen/). Both go through this module, so the file
and its reader cannot drift apart.

One JSON object per run, ``<tag>-<strategy>-s<seed>.json``. Every record has

    tag        str         the screened setting, e.g. "L3"; the records of one tag share ``over``
    strategy   str         the grid entry (experiments.yaml, profile quick) whose overrides the run adds
    seed       int
    over       dict        its overrides on top of the quick profile as it was when the screen ran,
                           seed left out
    err        str | None  why training stopped (a diverged candidate is a result too); None when it finished

and, where the run measured them (older records lack the later ones),

    train_cpu, val_cpu     CPU-seconds of training and of the validation rollouts
    psnr, first10, f1      validation PSNR (dB) of the first z draw: all frames, the first 10, frame 1; no err
    psnr_z0                the same with z = 0
    final_kl               the last epoch's mean KL of a clip (nats, summed over its T-1 predicted frames)
    max_grad, max_mse      the largest gradient norm and MSE of any iteration
    active_units, latent_units
    epochs                 per epoch: epoch, mse, kl, grad (norm), beta
    mod_grad               per epoch, each module's mean gradient norm
    amp                    whether the run trained under mixed-precision autocast
"""

from __future__ import annotations

import json
from pathlib import Path

from lab4.util.errors import Lab4Error

REQUIRED = ("tag", "strategy", "seed", "over", "err")
WHERE = "lab4/report/loss/screen_record.py"  # where an error sends the reader for the schema


def file_name(rec: dict) -> str:
    return f"{rec['tag']}-{rec['strategy']}-s{rec['seed']}.json"


def write(folder, rec: dict) -> Path:
    """``rec`` as ``folder/<tag>-<strategy>-s<seed>.json`` (replacing an earlier record of that run)."""
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise ValueError(f"a screen record needs {', '.join(missing)}")
    path = Path(folder) / file_name(rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec) + "\n")
    return path


def load(folder) -> list[dict]:
    """Every record under ``folder``, in file-name order ([] without the folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(f.read_text())
        except ValueError:
            raise Lab4Error(f"{f}: not JSON; a screen record is one JSON object ({WHERE})") from None
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED):
            raise Lab4Error(f"{f}: not a screen record (it needs {', '.join(REQUIRED)}; {WHERE})")
        out.append(rec)
    return out
