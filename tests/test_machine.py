"""lab4.util.machine: the one description of the machine and software that records carry."""

from __future__ import annotations

import subprocess

import pytest
import torch

import lab4.util.machine as M

EPYC = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n"
    "stepping\t: 1\nflags\t\t: fpu sse2 avx2\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 99\n"
)
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\n"
TYPES = dict(
    python=str,
    torch=str,
    numpy=str,
    lab4=(str, type(None)),
    system=str,
    commit=(str, type(None)),
    dirty=(bool, type(None)),
    cpu=str,
    cpu_model_name=str,
    cpu_family=(int, type(None)),
    cpu_model=(int, type(None)),
    cpu_stepping=(int, type(None)),
    cpus=int,
    native_bf16=bool,
    cpu_bf16_env=(str, type(None)),
    device=(str, type(None)),
    gpu=(str, type(None)),
    gpu_capability=(str, type(None)),
    torch_cuda=(str, type(None)),
)


@pytest.mark.timeout(30)
def test_record_keys_and_types():
    rec = M.machine(torch.device("cpu"))
    assert set(rec) == set(TYPES)
    for key, kind in TYPES.items():
        assert isinstance(rec[key], kind), (key, rec[key])
    assert rec["torch"] == torch.__version__ and rec["device"] == "cpu" and rec["gpu"] is None
    assert rec["cpu"].startswith(rec["cpu_model_name"]) and rec["cpus"] >= 1
    assert M.machine()["device"] is None


@pytest.mark.timeout(30)
def test_cpu_fields_from_a_cpuinfo_text():
    got = M.cpu_fields(EPYC)
    # the first processor's, not the second's
    assert got == dict(
        cpu="AMD EPYC 7B13 (family 25 model 1 stepping 1)",
        cpu_model_name="AMD EPYC 7B13",
        cpu_family=25,
        cpu_model=1,
        cpu_stepping=1,
    )
    arm = M.cpu_fields(ARM)
    assert arm["cpu"].endswith("(implementer 0x41 part 0xd0c)") and arm["cpu_family"] is None
    bare = M.cpu_fields("")
    assert bare["cpu"] == bare["cpu_model_name"] and bare["cpu_family"] is bare["cpu_stepping"] is None


@pytest.mark.timeout(30)
def test_git_fields_none_outside_a_checkout_without_git_or_a_repository(monkeypatch, tmp_path):
    monkeypatch.setattr(M, "checkout", lambda: None)  # an installed package
    rec = M.machine()
    assert rec["commit"] is None and rec["dirty"] is None
    monkeypatch.setattr(M, "checkout", lambda: tmp_path)  # a folder that is no repository
    assert M.git_state() == (None, None)

    def no_git(*a, **kw):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert M.git_state() == (None, None)

    def hangs(*a, **kw):
        raise subprocess.TimeoutExpired(a[0], kw.get("timeout"))

    monkeypatch.setattr(subprocess, "run", hangs)
    assert M.git_state() == (None, None)


@pytest.mark.timeout(30)
def test_git_fields_in_a_checkout(monkeypatch):
    calls = []

    def fake_git(args, **kw):
        calls.append(args)
        out = "0123456789abcdef0123456789abcdef01234567\n" if "rev-parse" in args else " M lab4/train.py\n"
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(subprocess, "run", fake_git)
    if M.checkout() is None:
        pytest.skip("lab4 does not run from a checkout here")
    assert M.git_state() == ("0123456789abcdef0123456789abcdef01234567", True)
    assert all(c[0] == "git" for c in calls)


@pytest.mark.timeout(30)
def test_gpu_fields_for_a_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    rec = M.machine(torch.device("cuda"))
    assert rec["gpu"] == "Tesla T4" and rec["gpu_capability"] == "7.5" and rec["device"] == "cuda"


@pytest.mark.timeout(30)
def test_study_and_speedrun_records_keep_their_keys():
    from lab4.grid import study
    from lab4.perf import speedrun

    rec = study.machine()
    assert {"processor", "cpu_id", "cores", "native_bf16", "torch", "python"} <= set(rec)
    assert rec["processor"] == rec["cpu_model_name"] and rec["cores"] == rec["cpus"]
    if rec["cpu_family"] is not None:
        assert rec["cpu_id"] == f"family {rec['cpu_family']} model {rec['cpu_model']}"
    assert {"cpu", "cores", "native_bf16"} <= set(speedrun.machine())
    assert study.commit() == "unknown" or len(study.commit().removesuffix("-dirty")) == 40
