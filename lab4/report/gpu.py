"""The report's GPU section: the runs of a GPU session (``results/gpu/``), compared with the CPU grid.

lab4/perf/gpucheck.py writes its grid (the KL annealing strategies x 3 seeds of the ``gpu`` profile) as
``results/gpu/<run>/`` (metrics.csv, summary.json, psnr_per_frame.csv, config.json, ...; no
checkpoints) and its throughput as ``results/bench/<gpu>.json``. When those runs are there, the same
figure and table functions as the CPU section draw them into ``figures/gpu/`` and
``generated/gpu_results_table.tex``, and ``generated/gpu.tex`` holds their numbers as macros prefixed
``Gpu`` plus the case macros that pick the comparison's sentences in report/main.tex. Without them
gpu.tex says ``\\GpuCase{absent}`` and the report says in one sentence that no GPU results are included.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lab4.report import experimental_setup, figures as report_figures, numbers as report_numbers
from lab4.report.comparisons.questions import QUESTION_CASES, question_macros
from lab4.report.format import thousands
from lab4.run.folder import RunDir, load_runs
from lab4.run.questions import LAB_QUESTIONS
from lab4.schedules import KL_STRATEGIES

GPU_FIGURES = ("psnr_per_frame", "val_psnr_per_epoch", "loss_curves", "collapse")
CASES = {
    "GpuCase": ("present", "absent"),  # are there GPU runs
    "GpuKLCase": QUESTION_CASES,  # the KL question on the GPU grid
    "GpuBenchCase": ("measured", "none"),  # is there a bench record beside the runs
}


def load_gpu(gpu_dir) -> tuple[list[RunDir], dict | None]:
    """The GPU runs under ``gpu_dir`` (none if it is missing) and the bench record beside it, if any."""
    gpu_dir = Path(gpu_dir)
    if not gpu_dir.is_dir():
        return [], None
    bench = None
    for f in sorted((gpu_dir.parent / "bench").glob("*.json")):
        try:
            rec = json.loads(f.read_text())
        except ValueError:
            continue
        if isinstance(rec, dict) and "ratio_vs_lab" in rec:
            bench = rec
            break
    return load_runs(gpu_dir), bench


def gpu_macros(gpu_runs, cpu_runs, bench: dict | None = None) -> dict[str, str]:
    """Every ``Gpu*`` macro of main.tex's GPU section; only GpuCase when there are no GPU runs."""
    if not gpu_runs:
        return {"GpuCase": "absent"}
    setup = experimental_setup.setup_macros(gpu_runs)
    strat = report_numbers.strategy_macros(gpu_runs)
    m = {
        "GpuCase": "present",
        **{f"Gpu{k}": setup[k] for k in ("NumRuns", "Device", "NumEpochs", "ProfileName")},
        **{f"Gpu{k}": strat[k] for k in ("NumStrategies", "SeedsPerStrategy")},
        "GpuBaselinePSNR": report_numbers.best_run_macros(gpu_runs)["BaselinePSNR"],
    }
    m.update(question_macros([r for r in gpu_runs if r.strategy in KL_STRATEGIES], LAB_QUESTIONS[:1], "Gpu"))
    ok = bench is not None and all(
        np.isfinite(float(bench.get(k, np.nan)))
        for k in ("ratio_vs_lab", "train_frames_per_s", "lab_train_frames_per_s")
    )
    m["GpuBenchCase"] = "measured" if ok else "none"
    if ok:
        m.update(
            GpuBenchRatio=f"{float(bench['ratio_vs_lab']):.1f}",
            GpuBenchFPS=thousands(float(bench["train_frames_per_s"])),
            GpuBenchLabFPS=f"{float(bench['lab_train_frames_per_s']):.1f}",
        )
    return m


def draw_figures(gpu_runs, figures_dir) -> dict[str, list[Path]]:
    """``figures/gpu/*``: the CPU section's figures of the GPU runs (nothing without them)."""
    figs = Path(figures_dir) / "gpu"
    return {stem: report_figures.DRAW[stem](gpu_runs, figs) for stem in GPU_FIGURES} if gpu_runs else {}
