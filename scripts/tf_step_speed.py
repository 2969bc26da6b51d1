"""CPU time per Trainer.step with the teacher-forced frames batched (``batched_tf``) or one at a time, on one
thread, the two interleaved in 6 rounds of 20 steps so a busy neighbour slows both alike.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tf_step_speed.py [PROFILE] [--fp32]
"""

import sys
import time

import torch

from lab4.config import make_config
from lab4.train import Trainer


def main(profile: str = "quick", amp: bool = True) -> dict:
    torch.set_num_threads(1)
    trainers = {
        b: Trainer(
            make_config(
                profile,
                run_dir="/tmp/tf-step-speed",
                device="cpu",
                progress=False,
                batched_tf=b,
                amp=amp,
                tfr=1.0,
                tfr_sde=10**6,
            )
        )
        for b in (True, False)
    }
    batches = trainers[True].sampler.batches(1.0)
    seconds = {True: 0.0, False: 0.0}
    for rnd in range(6):
        for b, tr in trainers.items():
            t0 = time.process_time()
            for starts in batches[rnd * 20 : (rnd + 1) * 20]:
                tr.step(starts, 0.0)
            seconds[b] += time.process_time() - t0
    ms = {("batched" if b else "per-frame"): round(s / 120 * 1000, 1) for b, s in seconds.items()}
    print(f"{profile}, {'bf16' if trainers[True].amp else 'fp32'}: {ms} ms of CPU per step")
    return ms


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(args[0] if args else "quick", amp="--fp32" not in sys.argv)
