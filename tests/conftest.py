"""Shared fixtures: a tiny SynthDance dataset and a tiny trained run, made once per session."""
from __future__ import annotations

import os
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
    from lab4.experiments import use_venv_kernel
    use_venv_kernel()  # papermill in the tests runs this venv's `lab4` kernel
    yield


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    from lab4.synth import generate
    return generate(tmp_path_factory.mktemp("data") / "synthdance-tiny", preset="tiny", progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_root, tmp_path_factory) -> Path:
    """A 2-epoch tiny training run (config.json, metrics.csv, last.pt); treat it as read-only."""
    from lab4.config import make_config
    from lab4.train import Trainer
    run = tmp_path_factory.mktemp("runs") / "tiny"
    Trainer(make_config("tiny", data_root=str(tiny_root), run_dir=str(run))).fit()
    return run
