"""Shared fixtures: a tiny SynthDance dataset and a tiny trained run, made once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Decoded-data cache in a temp folder, so tests never read or write the user's data/cache."""
    os.environ["LAB4_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("LAB4_DATA", None)
    # kernels and subprocesses inherit this: tiny models gain nothing from threads, and busy cores lose a lot
    os.environ["OMP_NUM_THREADS"] = "1"
    from lab4.util.notebooks import use_venv_kernel

    use_venv_kernel()  # papermill in the tests runs this venv's `lab4` kernel
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """When pytest-timeout stops a test, end the processes it started (kernels, servers, Dask workers) and
    say which: a hung kernel must not outlive its test and keep a core busy for the rest of the suite."""
    import psutil

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    try:
        return (yield)
    except BaseException as e:
        if "pytest-timeout" in str(e):
            left = [p for p in me.children(recursive=True) if p.pid not in before]
            for p in left:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            names = ", ".join(sorted({_name(p) for p in left})) or "none"
            print(
                f"\n{item.nodeid}: timed out; ended the {len(left)} process(es) it started ({names})",
                file=sys.stderr,
            )
        raise


def _name(p) -> str:
    try:
        return p.name()
    except Exception:  # noqa: BLE001 - a process that is already gone
        return "?"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    from lab4.datasets.synth import make_synthdance

    return make_synthdance(tmp_path_factory.mktemp("data") / "synthdance-tiny", preset="tiny", progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_root, tmp_path_factory) -> Path:
    """A 2-epoch tiny training run (config.json, metrics.csv, last.pt); treat it as read-only."""
    from lab4.config import make_config
    from lab4.train import Trainer

    run = tmp_path_factory.mktemp("runs") / "tiny"
    Trainer(make_config("tiny", data_root=str(tiny_root), run_dir=str(run))).fit()
    return run


def write_study_folder(
    base: Path,
    scores: dict,
    active: dict | None = None,
    flat: bool = True,
    real: tuple | str | None = (12.0, 22.0, 27.0),
    real_mean: tuple | None = None,
) -> Path:
    """A results/study/ and results/study-extra/ as lab4/grid/study.py exports them (returns the first;
    each run goes where its grid, study.yaml or study-extra.yaml, has it), from numbers: ``scores`` maps a
    run name (seeds as the grid names them, ``monotonic-s1``) to its validation PSNR; ``active`` a strategy
    to its active units from epoch 3 on; ``flat`` curves that settle after epoch 2 (else they rise 1 dB an
    epoch to the end); ``real`` (model PSNR, copy PSNR, copy PSNR over the first 10 frames) for the
    real-footage run on the lab's loss, "diverged" (non-finite in epoch 31 of 90, as lab4.train records it),
    or None; ``real_mean`` the same for the run with the KL averaged."""
    import json
    import re
    import shutil

    import numpy as np
    import pandas as pd

    from lab4.config import make_config
    from lab4.run.folder import RunDir

    root = Path(base) / "results"
    main, extra = (dict(g) for g in study_grids(separate=True))
    grid = {**extra, **main}
    reals = {"real-monotonic": real, "real-monotonic-klmean": real_mean}
    names = list(scores) + [n for n, r in reals.items() if r]
    written = {"study": [], "study-extra": []}
    for k, name in enumerate(names):
        cfg = make_config("study", name=name, **grid[name])
        # a run of both grids (the quirks' Monotonic reference) is in both folders, as each grid trains it
        folders = [f for f, g in (("study", main), ("study-extra", extra)) if name in g]
        for f in folders:
            written[f].append(name)
        out = root / folders[0]
        real_run = reals.get(name)
        if real_run == "diverged":
            run = RunDir(out / name)
            run.path.mkdir(parents=True)
            run.write_config(cfg)
            pd.DataFrame(
                [
                    dict(
                        kind="epoch",
                        epoch=e,
                        iter=10,
                        progress=e + 1,
                        loss=0.1,
                        kl=1.0,
                        val_psnr=8.24 if e == 29 else None,
                    )
                    for e in range(30)
                ]
            ).to_csv(run.path / RunDir.METRICS, index=False)
            run.write_diverged(dict(epoch=31, iteration=1, num_epoch=cfg.num_epoch, message="non-finite"))
            continue
        v = scores.get(name, real_run[0] if real_run else 0.0)
        strategy = re.sub(r"-s\d+$", "", name)
        gains = [3.0, 1.0, 0.2, 0.1, 0.05, 0.0] if flat else [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
        rows = []
        for e in range(cfg.num_epoch):
            shown = e % max(1, cfg.val_every) == cfg.val_every - 1 or e == cfg.num_epoch - 1
            au = (active or {}).get(strategy, 0) if e >= 2 else 0
            rows.append(
                dict(
                    kind="epoch",
                    epoch=e,
                    iter=150,
                    progress=e + 1,
                    loss=0.1,
                    mse=0.05,
                    kl=3.0 / (e + 1),
                    beta=1.0,
                    lr=cfg.lr,
                    val_psnr=v - gains[max(0, min(5, 6 - cfg.num_epoch + e))] if shown else None,
                    baseline_psnr=18.0 if shown else None,
                    active_units=au if shown else None,
                )
            )
        run = RunDir(out / name)
        run.path.mkdir(parents=True)
        run.write_config(cfg)
        pd.DataFrame(rows).to_csv(run.path / RunDir.METRICS, index=False)
        frames = np.arange(1, 631)
        if real_run:
            # as given
            base_curve = np.where(frames <= 10, real_run[2], (630 * real_run[1] - 10 * real_run[2]) / 620)
            psnr = np.full(len(frames), v)
        else:
            base_curve, psnr = np.full(len(frames), 18.0), np.full(len(frames), v)
        pd.DataFrame(
            dict(frame=frames, psnr=psnr, ssim=0.8, baseline_psnr=base_curve, baseline_ssim=0.7)
        ).to_csv(run.path / RunDir.PSNR, index=False)
        run.write_summary(
            dict(
                name=name,
                seed=cfg.seed,
                mean_psnr=v,
                baseline_mean_psnr=float(base_curve.mean()),
                cpu_seconds=300.0 + k,
                started_at=1000.0 + 100 * k,
                finished_at=1400.0 + 100 * k,
                epochs=cfg.num_epoch,
                speed=dict(amp=False),
                profile="study",
                device="cpu",
            )
        )
    for name in set(written["study"]) & set(written["study-extra"]):
        shutil.copytree(root / "study" / name, root / "study-extra" / name)
    for f, ns in written.items():
        if not ns:
            continue
        (root / f / "study.json").write_text(
            json.dumps(
                dict(
                    command=f"make {f}",
                    commit="0123456789abcdef0123456789abcdef01234567",
                    runs=ns,
                    exit_status=0,
                    span_seconds=1400.0 + 100 * (len(ns) - 1) - 1000.0,
                    machine=dict(processor="Test CPU", cpu_id="family 1 model 2", cores=2, torch="2.0"),
                )
            )
        )
    return root / "study"


def study_grids(separate: bool = False):
    """study.yaml's and study-extra.yaml's runs as lab4.grid.spec.load_grid expands them: one list (what
    03_compare hands the report's roles) or the two."""
    from lab4.grid.spec import load_grid

    root = Path(__file__).resolve().parents[1]
    grids = [load_grid(root / f, "study") for f in ("study.yaml", "study-extra.yaml")]
    return grids if separate else grids[0] + grids[1]


# The mechanism grid's and the control's runs, from numbers (tests/test_mechanism.py, test_control_report.py,
# and the report's PDF sets in test_report.py)
MECH_FIELDS = ["kind", "epoch", "iter", "progress", "loss", "mse", "kl", "grad_norm", "beta", "tfr", "lr"]
MECH_FRAMES = 3  # train_vi_len 4: metrics.csv's mse and kl are sums over 3 predicted frames


# each schedule's beta in one epoch, as mechanism.yaml sets it
MECH_BETA = {
    "none": dict(kl_anneal_type="none", num_epoch=1),
    "monotonic": dict(kl_anneal_type="monotonic-held", kl_anneal_cycle=6, kl_anneal_ratio=0.5, num_epoch=1),
    "cyclical": dict(kl_anneal_type="cyclical", kl_anneal_cycle=1, kl_anneal_ratio=0.75, num_epoch=1),
}


def mech_run(root, name, seed, rows, clip=100.0, diverged=None):
    from lab4.run.folder import RunDir, strategy_of

    run = RunDir(Path(root) / name)
    run.path.mkdir(parents=True)
    run.write_config(
        {
            "name": name,
            "seed": seed,
            "train_vi_len": MECH_FRAMES + 1,
            "clip_grad": clip,
            **MECH_BETA[strategy_of(name)],
        }
    )
    if rows is not None:
        run.write_metrics(rows, MECH_FIELDS)
    if diverged:
        run.write_diverged(diverged)
    return run


def mech_rows(kl, grad, mse, n_epoch=10) -> list[dict]:
    """kind=iter rows of per-frame kl and mse (written as the Trainer sums them), n_epoch to an epoch."""
    out = []
    for i, (k, g, m) in enumerate(zip(kl, grad, mse)):
        e, it = divmod(i, n_epoch)
        f = MECH_FRAMES
        out.append(
            dict(
                kind="iter", epoch=e, iter=it, progress=e + it / n_epoch, kl=k * f, grad_norm=g,
                mse=m * f, loss=(k + m) * f, beta=i / 100, tfr=1.0, lr=1e-3,
            )
        )  # fmt: skip
    return out


def mechanism_schedules(root, seeds=range(4), cyclical_peak=1e4) -> list:
    """None with peaks near 1e4 and every step of epoch 1 clipped at 200, Monotonic near 1e2 and none
    clipped, Cyclical with None's numbers exactly (or its peaks at ``cyclical_peak`` on Monotonic's noise);
    the same KL and MSE everywhere: known verdicts."""
    import numpy as np

    rng = np.random.default_rng(0)
    runs = []
    for s in seeds:
        noise = {"none": 1 + 0.1 * rng.random(10), "monotonic": 1 + 0.1 * rng.random(10)}
        noise["cyclical"] = noise["none"] if cyclical_peak == 1e4 else noise["monotonic"]
        kl = [100.0] * (20 + s) + [0.5] * 10
        for name, peak in (("none", 1e4), ("monotonic", 1e2), ("cyclical", cyclical_peak)):
            grad = list(peak * noise[name]) + [1.0] * (20 + s)
            mse = [0.02 + 0.001 * s] * (30 + s)
            runs.append(
                mech_run(root, name if s == 0 else f"{name}-s{s}", s, mech_rows(kl, grad, mse), clip=200.0)
            )
    return runs


def write_control_runs(root, active: dict, seeds=range(3), epochs: int = 3) -> list:
    """A results/control/ from numbers: per schedule its active units at the end (one per seed), a KL per
    frame of active / 10 + 0.01 nats, a short score of 30 + active / 100 dB, its best draw 0.5 dB above,
    z = 0 0.2 dB below, and a diversity of 1e-4 * (1 + active)."""
    import pandas as pd

    from lab4.run.folder import RunDir

    runs = []
    for name, units in active.items():
        for s in seeds:
            a = float(units[s])
            run = RunDir(Path(root) / (name if s == 0 else f"{name}-s{s}"))
            run.path.mkdir(parents=True)
            run.write_config(
                dict(
                    name=run.name, seed=s, train_vi_len=4, kl_weight=1 / 16384, clip_grad=1.0,
                    num_epoch=epochs, N_dim=8, frame_H=32, frame_W=64, synth_preset="control",
                )
            )  # fmt: skip
            rows = [
                dict(kind="epoch", epoch=e, iter=150, progress=e + 1, loss=0.1, mse=0.01,
                     kl=3 * (a / 10 + 0.01) * (epochs - e), val_psnr=25.0, active_units=a * (e + 1) / epochs)
                for e in range(epochs)
            ]  # fmt: skip
            pd.DataFrame(rows).to_csv(run.path / RunDir.METRICS, index=False)
            short = 30 + a / 100
            run.write_summary(
                dict(
                    name=run.name, seed=s, short_psnr=short, short_psnr_best=short + 0.5,
                    short_psnr_z0=short - 0.2, short_diversity=1e-4 * (1 + a), short_baseline_psnr=30.5,
                )
            )  # fmt: skip
            runs.append(run)
    return runs
