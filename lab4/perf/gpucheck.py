"""One command for a whole GPU device session: environment, correctness, throughput, a real grid.

    python -m lab4 gpucheck --out DIR [--budget-s 540] [--dry-run] [--steps env,data,...] [--data-root DIR]

Steps, in order: env (GPU, versions, the speed options that engage), data (SynthDance `full`, decoded),
correctness (fast path against eager on the same weights and batch, CUDA), bench (the lab's execution
against the fast path -> DIR/results/bench/<gpu>.json), grid (3 KL strategies x 3 seeds of the `gpu`
profile through papermill, sized to the minutes left -> DIR/results/gpu/), figures (03_compare on it).
A step starts only while the budget holds its minimum; bench sizes its timing to its share, and the grid
and figures run in a child process killed at their time box. DIR/gpucheck.json is rewritten after every
step, so a kill loses only the step in flight. ``--dry-run`` rehearses every step on the CPU with tiny
dims and data (a few minutes, most of it the grid's kernels); what needs CUDA says "skipped: no CUDA".
scripts/gpu_session.sh wraps this for the device machine (carried wheels, kernel, packing $OUT).
"""

from __future__ import annotations

import json
import re
import time
import traceback
from pathlib import Path

import torch

from lab4.perf.gpucheck_steps import GpuSteps
from lab4.util.files import atomic_write_text

STEPS = ("env", "data", "correctness", "bench", "grid", "figures")
# seconds a step needs left to be worth starting: on the GPU (compiles, 9 kernels) / in a CPU dry run
NEEDS = {
    "gpu": dict(env=1, data=20, correctness=45, bench=75, grid=120, figures=40),
    "dry": dict(env=0, data=0.5, correctness=1, bench=2, grid=15, figures=8),
}
LAB_DIMS, TINY_DIMS = (128, 32, 12, 192), (16, 8, 4, 16)


class Budget:
    """Seconds left until the session's deadline."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.clock, self.end = clock, clock() + seconds

    def left(self) -> float:
        return max(0.0, self.end - self.clock())


def slug(name: str) -> str:
    """'NVIDIA H200' -> 'nvidia-h200' (the bench file's name)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


class GpuCheck(GpuSteps):
    """The session: its budget, the steps in order, and DIR/gpucheck.json after each."""

    def __init__(self, out, budget_s: float = 540, dry_run: bool = False, steps=STEPS, data_root: str = ""):
        self.out, self.dry = Path(out).resolve(), dry_run
        self.budget, self.budget_s, self.steps = Budget(budget_s), budget_s, tuple(steps)
        self.cuda = torch.cuda.is_available() and not dry_run
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.dims = TINY_DIMS if dry_run else LAB_DIMS
        self.data_root, self.root, self.fast_fps, self.before = data_root, None, (None, None), {}
        self.mode = "dry" if dry_run else "gpu"
        self.record = dict(dry_run=dry_run, budget_s=budget_s, device=str(self.device), steps={})
        self.engaged: dict[str, str] = {}
        self.gpu_name = (
            slug(torch.cuda.get_device_name(0)) if self.cuda else "cpu-dry-run" if dry_run else "cpu"
        )
        self.runs_dir = self.out / "work" / "runs"

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        try:  # a rerun of some steps into the same folder keeps the other steps' records
            earlier = json.loads((self.out / "gpucheck.json").read_text())
            before = earlier["steps"]
        except (OSError, ValueError, KeyError):
            earlier, before = {}, {}
        self.before = before
        b = before.get("bench", {})  # sizes the grid when bench is not rerun
        self.fast_fps = b.get("train_frames_per_s"), b.get("train_frames_per_s_no_teacher_forcing")
        for name in STEPS:
            t0, left, need = time.monotonic(), self.budget.left(), NEEDS[self.mode][name]
            if name not in self.steps and name in before:
                self.record["steps"][name] = {**before[name], "from_earlier_call": True}
                continue
            if name not in self.steps:
                rec = dict(status="skipped: not in --steps")
            elif left < need:
                rec = dict(status=f"skipped: out of budget ({left:.0f} s left, the step needs {need:.0f} s)")
            else:
                print(f"== gpucheck {name} ({left:.0f} s left)", flush=True)
                try:
                    rec = getattr(self, f"step_{name}")()
                except Exception as e:  # one step's failure is recorded; the next steps still run
                    traceback.print_exc()
                    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    rec = dict(status=f"failed: {type(e).__name__}: {first}")
            rec.setdefault("status", "ok")
            rec["seconds"] = round(time.monotonic() - t0, 2)
            self.record["steps"][name] = rec
            self.write()
        self.record["speed_options"] = {**earlier.get("speed_options", {}), **self.engaged}
        self.write()
        print(self.summary(), flush=True)
        return self.record

    def write(self) -> None:
        atomic_write_text(self.out / "gpucheck.json", json.dumps(self.record, indent=2, default=str) + "\n")

    def summary(self) -> str:
        lines = [
            f"gpucheck ({'dry run, ' if self.dry else ''}{self.gpu_name}) -> {self.out / 'gpucheck.json'}"
        ]
        for name, rec in self.record["steps"].items():
            lines.append(f"  {name:<12} {rec['seconds']:>7.1f} s  {rec['status']}")
        b = self.record["steps"].get("bench", {})
        if "ratio_vs_lab" in b:
            lines.append(
                f"  bench: {b['train_frames_per_s']:.0f} vs {b['lab_train_frames_per_s']:.1f} frames/s "
                f"({b['ratio_vs_lab']:.1f}x), 5x630 rollout {b['rollout_5x630_s']:.2f} s"
            )
        return "\n".join(lines)

    def _box(self, *later: str) -> float:
        """Seconds this step may take: what is left, less the minimum of the asked-for steps after it."""
        return self.budget.left() - sum(NEEDS[self.mode][s] for s in later if s in self.steps)
