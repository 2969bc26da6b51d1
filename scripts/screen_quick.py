r"""Screen a quick-profile candidate as `make report` would train it (epochs, not a CPU budget): one thread,
no validation until the end, then the 630-frame validation rollout (and the z = 0 one, the active units,
the per-epoch MSE/KL/gradient norms and per-module gradient norms) -> <OUT>/<tag>-<strategy>-s<seed>.json,
a record as lab4/report/loss/screen_record.py describes it (the report's loss balance reads
results/labloss-screen/).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/screen_quick.py \
        R4 cyclical '{"num_epoch": 3, "milestones": [2]}'
    OMP_NUM_THREADS=1 .venv/bin/python scripts/screen_quick.py \
        L3 none '{"kl_weight": 1.0, "clip_grad": 100.0, "seed": 1}' results/labloss-screen
    .venv/bin/python scripts/screen_quick.py --table results/labloss-screen    # the table in docs/speedrun.md

The overrides are on top of the quick profile *as it was when the screen ran* (see docs/speedrun.md, "The
quick profile, screened"); the strategy adds the grid entry's overrides (experiments.yaml).
"""

import json
import sys
import tempfile
import time

import torch

from lab4.config import make_config
from lab4.evaluate import active_units, validate
from lab4.grid.spec import load_grid
from lab4.report.loss import screen_record
from lab4.train import Trainer
from lab4.util.paths import project_root

# the grid's entries (first seed), so that a screened strategy is the one `make report` trains
STRATEGIES = {
    name: over for name, over in load_grid(project_root() / "experiments.yaml", "quick") if "seed" not in over
}


def main(tag: str, strategy: str, overrides: str, out: str = "results/speedrun-screen") -> dict:
    torch.set_num_threads(1)
    over = json.loads(overrides)
    seed = int(over.pop("seed", 0))
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(
            "quick",
            **{**STRATEGIES[strategy], **over},
            name=strategy,
            seed=seed,
            run_dir=tmp,
            progress=False,
            device="cpu",
            val_every=0,
        )
        trainer, err = Trainer(cfg), None
        # per-module gradient norms after each step (after clipping, if a clip is on), averaged per epoch
        mod_sums: dict = {}

        def module_grads(tr, info):
            acc = mod_sums.setdefault(info["epoch"], {"n": 0})
            acc["n"] += 1
            for name, mod in tr.model.named_children():
                g = [p.grad.float().pow(2).sum() for p in mod.parameters() if p.grad is not None]
                if g:
                    acc[name] = acc.get(name, 0.0) + float(torch.stack(g).sum().sqrt())

        trainer.add_callback("on_iter_end", module_grads)
        try:
            trainer.fit()
        except Exception as e:  # a diverged candidate is a result too
            err = str(e)[:200]
        c1 = time.process_time()
        res = validate(trainer.model, trainer.val_data, seed=seed) if err is None else None
        res0 = validate(trainer.model, trainer.val_data, seed=seed, zero_z=True) if err is None else None
        au = active_units(trainer.model, trainer.val_data) if err is None else None
    rec = dict(
        tag=tag,
        strategy=strategy,
        seed=seed,
        over=over,
        amp=trainer.amp,
        train_cpu=round(c1 - c0, 1),
        val_cpu=round(time.process_time() - c1, 1),
        err=err,
    )
    if res:
        rec.update(
            psnr=round(res["mean_psnr"], 2),
            first10=round(float(res["psnr"][:10].mean()), 2),
            f1=round(float(res["psnr"][0]), 2),
        )
    # training diagnostics (rows of the epochs that completed; a diverged epoch's iterations are not in rows)
    iters = [r for r in trainer.rows if r["kind"] == "iter"]
    epochs = [r for r in trainer.rows if r["kind"] == "epoch"]
    if epochs:
        rec.update(final_kl=round(epochs[-1]["kl"], 4))
    if iters:
        rec.update(
            max_grad=float(f"{max(r['grad_norm'] for r in iters):.4g}"),
            max_mse=float(f"{max(r['mse'] for r in iters):.4g}"),
        )
    rec.update(
        epochs=[
            dict(
                epoch=r["epoch"],
                mse=float(f"{r['mse']:.4g}"),
                kl=float(f"{r['kl']:.4g}"),
                grad=float(f"{r['grad_norm']:.4g}"),
                beta=round(r["beta"], 3),
            )
            for r in epochs
        ]
    )
    rec.update(
        mod_grad={
            e: {k: float(f"{v / a['n']:.3g}") for k, v in a.items() if k != "n"} for e, a in mod_sums.items()
        }
    )
    if res0:
        rec.update(psnr_z0=round(res0["mean_psnr"], 2))
    if au:
        rec.update(active_units=au["active_units"], latent_units=au["latent_units"])
    screen_record.write(project_root() / out, rec)
    print(json.dumps(rec))
    return rec


def table(folder: str) -> str:
    """The screen's JSONs as a markdown table: one row per (setting, strategy), mean over its seeds."""
    import numpy as np

    recs = screen_record.load(project_root() / folder)
    rows = {}
    for r in recs:
        rows.setdefault((r["tag"], json.dumps(r["over"], sort_keys=True), r["strategy"]), []).append(r)
    out = [
        "| tag | changes against the quick profile | strategy | seeds | val PSNR (dB) | z = 0 (dB) "
        "| first 10 (dB) | final KL (nats/clip) | active units | max grad norm | train CPU-s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(rs, key, fmt="{:.2f}"):
        v = [r[key] for r in rs if r.get(key) is not None]
        if not v:
            return "–"
        if len(v) == 1:
            return fmt.format(v[0])
        return f"{fmt.format(np.mean(v))} ± {fmt.format(np.std(v, ddof=1))}"

    for (tag, over, strategy), rs in sorted(rows.items()):
        seeds = ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
        failed = sum(r.get("err") is not None for r in rs)
        out.append(
            f"| {tag} | `{over}` | {strategy} | {seeds}{f' ({failed} failed)' if failed else ''} "
            f"| {cell(rs, 'psnr')} | {cell(rs, 'psnr_z0')} | {cell(rs, 'first10')} "
            f"| {cell(rs, 'final_kl', '{:.3g}')} | {cell(rs, 'active_units', '{:.0f}')} "
            f"| {cell(rs, 'max_grad', '{:.3g}')} | {cell(rs, 'train_cpu', '{:.0f}')} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(table(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in STRATEGIES:
        sys.exit(
            f"usage: {sys.argv[0]} TAG {{{'|'.join(STRATEGIES)}}} OVERRIDES_JSON [OUT]\n"
            f"       {sys.argv[0]} --table FOLDER"
        )
    main(*sys.argv[1:])
