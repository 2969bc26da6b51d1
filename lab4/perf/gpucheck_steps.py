"""The GPU session's steps, each returning its record for gpucheck.json: env, data, correctness, bench,
grid and figures (lab4.perf.gpucheck runs them in order within the budget).

A mixin of :class:`lab4.perf.gpucheck.GpuCheck`, which holds the budget, the device, the data and the
results folder that the steps read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
import traceback
from importlib import metadata
from pathlib import Path

import torch

from lab4.datasets import official as data
from lab4.perf.fastcheck import fast_vs_eager, probe_speed_options, profile_top
from lab4.perf.gpuplan import gpu_schedule, plan_epochs, run_boxed
from lab4.run.folder import RunDir
from lab4.schedules import KL_STRATEGIES
from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_text
from lab4.util.machine import machine

TARGETS = dict(ratio_vs_lab=(">=", 20.0), train_frames_per_s=(">=", 2000.0), rollout_5x630_s=("<=", 1.0))
GRID_SEEDS = (0, 1, 2)
RUN_FILES = (".csv", ".json", ".png")  # per run into results/gpu/: no checkpoints, notebooks or GIFs


class GpuSteps:
    # -- (a) environment ---------------------------------------------------------------------------
    def step_env(self) -> dict:
        # the machine record every summary.json has, plus what only this session asks about
        rec = dict(
            machine(self.device),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cuda_available=torch.cuda.is_available(),
            packages={},
        )
        for pkg in ("triton", "papermill", "nbclient", "ipykernel", "dask", "distributed"):
            try:
                rec["packages"][pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                rec["packages"][pkg] = None
        if not self.cuda:
            self.engaged.update(
                amp="skipped: no CUDA",
                fused_adam="skipped: no CUDA",
                cuda_graphs="skipped: no CUDA",
                compile="skipped: no CUDA (the dry run's steps run eager)",
            )
            return rec
        props = torch.cuda.get_device_properties(self.device)
        rec.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            sms=props.multi_processor_count,
            memory_gib=round(props.total_memory / 2**30, 1),
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
        try:
            rec["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            rec["driver"] = None
        self.engaged.update(probe_speed_options(self.device))
        return rec

    # -- dataset ------------------------------------------------------------------------------------
    def step_data(self) -> dict:
        preset = "tiny" if self.dry else "full"
        self.root = data.resolve_data_root(self.data_root, preset, progress=not self.dry)
        train = data.load_split(self.root, "train", progress=not self.dry)
        val = data.load_split(self.root, "val", progress=not self.dry)
        test = data.load_test(self.root, progress=not self.dry)
        if (self.root / "test_gt").is_dir():
            data.load_test_gt(self.root / "test_gt", progress=not self.dry)
        self.train_frames = len(train)
        return dict(
            root=str(self.root),
            preset=None if self.data_root else preset,
            train_frames=len(train),
            val_frames=len(val),
            test_sequences=len(test),
        )

    # -- (b) correctness ----------------------------------------------------------------------------
    def step_correctness(self) -> dict:
        if self.root is None:
            return dict(status="skipped: no data")
        if not self.cuda:
            rec = dict(status="skipped: no CUDA")
            if self.dry:  # the same code on the CPU (eager steps), so the GPU session runs tested code
                rec["cpu_rehearsal"] = fast_vs_eager(
                    self.root, self.dims, torch.device("cpu"), False, 2, self.engaged
                )
            return rec
        return fast_vs_eager(self.root, self.dims, self.device, True, 16, self.engaged)

    # -- (c) throughput ------------------------------------------------------------------------------
    def step_bench(self) -> dict:
        if self.root is None:
            return dict(status="skipped: no data")
        if not self.cuda and not self.dry:
            return dict(status="skipped: no CUDA")
        box = self._box("grid", "figures")
        # 2.5 timed loops, plus compiles, warm-ups, rollouts and a profile: about 5x the timed seconds
        seconds = 0.3 if self.dry else min(10.0, max(4.0, (box - 120) / 5))
        fast = dict(compile=False) if self.dry else {}  # inductor on 2 CPU cores takes minutes
        from lab4.perf import bench  # torchvision (the lab's PNG loader) only here

        def measure(**fast):
            return bench.measure(
                self.root,
                self.dims,
                self.device,
                seconds=seconds,
                batch=2 if self.dry else 16,
                rollout_frames=16 if self.dry else None,
                workers=0 if self.dry else None,
                log=lambda m: print(m, flush=True),
                free_seconds=0.1 if self.dry else seconds / 2,
                **fast,
            )

        compile_failed = None
        try:
            result, fast_step = measure(**fast)
        except Exception as e:  # a compile or graph-capture failure must not cost the whole comparison
            if fast:
                raise
            traceback.print_exc()
            compile_failed = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            print(f"bench: the compiled fast path failed ({compile_failed}); measuring it eager", flush=True)
            result, fast_step = measure(compile=False, cuda_graphs=False)
        print(bench.table(result), flush=True)
        rec = dict(
            device=result["device"],
            dry_run=self.dry,
            ratio_vs_lab=result["speedup"],
            train_frames_per_s=round(result["fast"]["frames_per_s"], 1),
            train_frames_per_s_no_teacher_forcing=round(result["fast"]["frames_per_s_no_teacher_forcing"], 1),
            lab_train_frames_per_s=round(result["reference"]["frames_per_s"], 2),
            rollout_5x630_s=result["test_rollout_5_batched"]["seconds_630"],
            val_rollout_630_s=result["val_rollout_compiled"]["seconds_630"],
            val_rollout_630_eager_s=result["val_rollout_eager"]["seconds_630"],
            rollouts_extrapolated=result["test_rollout_5_batched"]["extrapolated"],
            peak_gpu_mem_gib=result["peak_gpu_mem_gib"] if self.cuda else "skipped: no CUDA",
            timed_seconds_per_mode=seconds,
            compile_failed=compile_failed,
            targets={},
            bench=result,
        )
        missed = []
        for key, (op, target) in TARGETS.items():
            met = rec[key] >= target if op == ">=" else rec[key] <= target
            rec["targets"][key] = dict(target=f"{op} {target:g}", value=rec[key], met=met)
            missed += [] if met else [key]
        dest = self.out / "results" / "bench"
        dest.mkdir(parents=True, exist_ok=True)
        if missed:  # where the time goes: the top kernels of a few fast-path steps
            rec["profile"] = profile_top(
                fast_step, self.device, dest / f"{self.gpu_name}-profile.txt", steps=1 if self.dry else 3
            )
            rec["profile"]["why"] = f"missed: {', '.join(missed)}"
        atomic_write_text(dest / f"{self.gpu_name}.json", json.dumps(rec, indent=2, default=str) + "\n")
        rec["file"] = str(dest / f"{self.gpu_name}.json")
        self.fast_fps = rec["train_frames_per_s"], rec["train_frames_per_s_no_teacher_forcing"]
        del fast_step
        if self.cuda:
            torch.cuda.empty_cache()
        return {k: v for k, v in rec.items() if k != "bench"}

    # -- (d) a real grid through papermill ------------------------------------------------------------
    def step_grid(self) -> dict:
        if self.root is None:
            return dict(status="skipped: no data")
        if not self.cuda and not self.dry:
            return dict(status="skipped: no CUDA")
        # carried as wheels to the device: say so in one line
        for pkg in ("papermill", "nbclient", "ipykernel"):
            if importlib.util.find_spec(pkg) is None:
                raise Lab4Error(
                    f"{pkg} is not installed (on the device: scripts/gpu_session.sh installs .whl/)"
                )
        box = self._box("figures") - 5
        seeds = GRID_SEEDS[:1] if self.dry else GRID_SEEDS
        n_runs = len(KL_STRATEGIES) * len(seeds)
        if self.dry:
            profile, overrides = "tiny", dict(num_epoch=1, train_vi_len=4, partial=0.5)
        elif self.before.get("grid", {}).get("profile") == "gpu":  # a rerun resumes the same runs
            profile, overrides = "gpu", self.before["grid"]["overrides"]
        else:
            profile = "gpu"
            overrides = gpu_schedule(plan_epochs(box, *self.fast_fps, self.train_frames, n_runs))
        if self.data_root:
            overrides["data_root"] = str(self.root)
        results = self.out / "results" / "gpu"
        results.mkdir(parents=True, exist_ok=True)
        grid = {
            "experiments": [
                dict(name=s, overrides={**overrides, "kl_anneal_type": s}, seeded=True) for s in KL_STRATEGIES
            ],
            "seeds": {profile: list(seeds)},
        }
        import yaml

        atomic_write_text(results / "grid.yaml", yaml.safe_dump(grid, sort_keys=False))
        print(
            f"grid: {n_runs} runs of profile {profile}, {overrides.get('num_epoch')} epoch(s), "
            f"all at once, {box:.0f} s box",
            flush=True,
        )
        # nine kernels each with a compile-worker pool per core would oversubscribe the CPUs; with the
        # caches bench left warm, two workers each are plenty
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "2")
        t0 = time.monotonic()
        boxed = run_boxed(
            "lab4.grid.driver:run_grid",
            (str(results / "grid.yaml"), profile, str(self.runs_dir)),
            dict(jobs=n_runs),
            box,
        )
        rec = dict(
            profile=profile,
            overrides=overrides,
            runs=n_runs,
            jobs=n_runs,
            box_s=round(box),
            wall_s=round(time.monotonic() - t0, 1),
            **boxed,
            per_run=self.collect_runs(results),
        )
        done = sum(r.get("epochs") == overrides["num_epoch"] for r in rec["per_run"].values())
        rec["complete_runs"] = done
        if boxed["timed_out"] or done < n_runs:
            rec["status"] = f"partial: {done}/{n_runs} runs complete" + (
                f", cut off at the {box:.0f} s box" if boxed["timed_out"] else ""
            )
        return rec

    def collect_runs(self, results: Path) -> dict:
        """Each run's small files (CSV, JSON, PNG; no checkpoints) into results/gpu/<run>/, and its
        numbers."""
        per_run = {}
        for run in sorted(p for p in self.runs_dir.glob("*") if p.is_dir()):
            dest = results / run.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in run.iterdir():
                if f.suffix in RUN_FILES and f.name != RunDir.SUBMISSION and f.is_file():
                    shutil.copy2(f, dest / f.name)
            rd = RunDir(run)
            s = rd.summary()
            epochs = [r for r in rd.metric_rows() if r.get("kind") == "epoch"]
            per_run[run.name] = dict(
                epochs=s.get("epochs", len(epochs)),
                mean_psnr=s.get("mean_psnr"),
                wall_seconds=s.get("wall_seconds"),
                device=s.get("device"),
                epoch_seconds=[float(x) for r in epochs if (x := r.get("seconds")) is not None],
            )
        return per_run

    # -- 03_compare on the grid -----------------------------------------------------------------------
    def step_figures(self) -> dict:
        if not list(self.runs_dir.glob(f"*/{RunDir.METRICS}")):
            return dict(status="skipped: no grid runs with metrics")
        results = self.out / "results" / "gpu"
        # no CPU study section here
        args = (
            str(self.runs_dir),
            str(self.out / "work" / "build"),
            str(results / "figures"),
            str(results / "generated"),
            str(self.out / "work" / "no-study"),
        )
        # nor the CPU's other grids: the quirks, the mechanism, the control
        none = {k: str(self.out / "work" / f"no-{k}") for k in ("extra_dir", "mechanism_dir", "control_dir")}
        boxed = run_boxed("lab4.report.build:run_figures", args, {"folders": none}, self.budget.left() - 2)
        files = sorted(
            str(p.relative_to(results))
            for p in results.glob("*/*")
            if p.parent.name in ("figures", "generated")
        )
        rec = dict(**boxed, files=files)
        if boxed["exit_code"] != 0:
            rec["status"] = "failed: 03_compare " + (
                "timed out" if boxed["timed_out"] else f"exited {boxed['exit_code']} (see the log)"
            )
        return rec
