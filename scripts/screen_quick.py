"""Screen a quick-profile candidate as `make report` would train it (epochs, not a CPU budget): one thread,
no validation until the end, then the 630-frame validation rollout -> results/speedrun-screen/<tag>-<strategy>-s<seed>.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/screen_quick.py R4 cyclical '{"num_epoch": 3, "milestones": [2]}'

The overrides are on top of the quick profile *as it was when the screen ran* (see docs/speedrun.md, "The
quick profile, screened"); the strategy adds the grid entry's overrides (experiments.yaml).
"""
import json
import sys
import tempfile
import time

import torch

from lab4.config import make_config
from lab4.evaluate import validate
from lab4.grid.spec import load_grid
from lab4.train import Trainer
from lab4.util.paths import project_root

# the grid's entries (first seed), so that a screened strategy is the one `make report` trains
STRATEGIES = {name: over for name, over in load_grid(project_root() / "experiments.yaml", "quick")
              if "seed" not in over}


def main(tag: str, strategy: str, overrides: str, out: str = "results/speedrun-screen") -> dict:
    torch.set_num_threads(1)
    over = json.loads(overrides)
    seed = int(over.pop("seed", 0))
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config("quick", **{**STRATEGIES[strategy], **over}, name=strategy, seed=seed, run_dir=tmp,
                          progress=False, device="cpu", val_every=0)
        trainer, err = Trainer(cfg), None
        try:
            trainer.fit()
        except Exception as e:  # a diverged candidate is a result too
            err = str(e)[:200]
        c1 = time.process_time()
        res = validate(trainer.model, trainer.val_data, seed=seed) if err is None else None
    rec = dict(tag=tag, strategy=strategy, seed=seed, over=over, train_cpu=round(c1 - c0, 1),
               val_cpu=round(time.process_time() - c1, 1), err=err)
    if res:
        rec.update(psnr=round(res["mean_psnr"], 2), first10=round(float(res["psnr"][:10].mean()), 2),
                   f1=round(float(res["psnr"][0]), 2))
    path = project_root() / out / f"{tag}-{strategy}-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec) + "\n")
    print(json.dumps(rec))
    return rec


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in STRATEGIES:
        sys.exit(f"usage: {sys.argv[0]} TAG {{{'|'.join(STRATEGIES)}}} OVERRIDES_JSON [OUT]")
    main(*sys.argv[1:])
