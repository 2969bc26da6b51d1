"""What a quick run's evaluation costs, piece by piece, before and after issue 23's cheaper evaluation.

    OMP_NUM_THREADS=1 LAB4_CPU_BF16=0 .venv/bin/python scripts/eval_cost.py [--profile quick]

One thread, an untrained model of the profile's dims (a rollout costs the same whatever the weights), on the
profile's validation video. Before: a validation rollout after epoch 2 and after epoch 3, then the z = 0
rollout alone, the other two z draws as one batch, and the one-step score on every frame. After: the rollout
after the last epoch, the other draws and z = 0 as one batch, and the one-step score on every third frame.
"""

from __future__ import annotations

import argparse
import time

import torch

from lab4.config import make_config
from lab4.evaluate import active_units, one_step_psnr, rollout_draws, validate
from lab4.train import Trainer
from lab4.util.device import cpu_model_name


def timed(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tr = Trainer(make_config(args.profile, run_dir="/tmp/lab4-eval-cost", progress=False))
    m, val = tr.model, tr.val_data
    one = timed(lambda: validate(m, val, seed=0))
    z0 = timed(lambda: validate(m, val, seed=0, zero_z=True))
    two = timed(lambda: rollout_draws(m, val, [1000, 2000]))
    three = timed(lambda: rollout_draws(m, val, [1000, 2000, None]))
    step1 = timed(lambda: one_step_psnr(m, val, 0))
    step3 = timed(lambda: one_step_psnr(m, val, 0, stride=3))
    au = timed(lambda: active_units(m, val))
    before = 2 * one + z0 + two + step1 + au
    after = one + three + step3 + au
    print(f"{cpu_model_name()}, one thread, {len(val)} validation frames, CPU-seconds:")
    for name, v in (
        ("one rollout (a validation)", one),
        ("z = 0 rollout alone", z0),
        ("two draws as a batch", two),
        ("two draws and z = 0 as a batch", three),
        ("one-step, every frame", step1),
        ("one-step, every third frame", step3),
        ("active units", au),
    ):
        print(f"  {name:<32} {v:6.1f}")
    print(f"  {'evaluation before':<32} {before:6.1f}\n  {'evaluation after':<32} {after:6.1f}")


if __name__ == "__main__":
    main()
