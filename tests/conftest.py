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
            print(f"\n{item.nodeid}: timed out; ended the {len(left)} process(es) it started ({names})",
                  file=sys.stderr)
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
