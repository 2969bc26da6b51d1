"""What made a record: package versions, the commit, the CPU and the GPU, as one dict.

Results are bit-identical on one machine and one set of versions, not across processors or releases, so
summary.json, study.json and the speedrun's records carry this description to tell such differences apart.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from lab4.util.device import cpu_has_native_bf16
from lab4.util.paths import checkout

GIT_TIMEOUT_S = 5  # a hung git (a network file system, a lock) must not hold up the end of a run


def version(package: str) -> str | None:
    """The installed distribution's version, None where it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, whether tracked files differ from it) of the checkout lab4 runs from; (None, None) for an
    installed package, without git, outside a repository, or when git does not answer in time."""
    root = checkout()
    if root is None:
        return None, None
    try:
        head = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(status)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=GIT_TIMEOUT_S
    ).stdout.strip()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_fields(cpuinfo: str | None = None) -> dict:
    """The first processor of /proc/cpuinfo (or the ``cpuinfo`` text given): its model name, and family, model
    and stepping (x86) or implementer and part (ARM), which name the generation where the model name alone
    does not ("AMD EPYC" in a VM). ``cpu`` joins them: "AMD EPYC (family 25 model 1 stepping 1)"."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep and fields:  # the blank line after the first processor
            break
        if sep:
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    ids = [
        ("family", "cpu family"),
        ("model", "model"),
        ("stepping", "stepping"),
        ("implementer", "CPU implementer"),
        ("part", "CPU part"),
    ]
    shown = " ".join(f"{word} {fields[key]}" for word, key in ids if fields.get(key))
    return dict(
        cpu=f"{name} ({shown})" if shown else name,
        cpu_model_name=name,
        cpu_family=_int(fields.get("cpu family")),
        cpu_model=_int(fields.get("model")),
        cpu_stepping=_int(fields.get("stepping")),
    )


def machine(device=None) -> dict:
    """This machine and its software: Python, torch, numpy and lab4 versions, the commit (None outside a
    checkout), the CPU (:func:`cpu_fields`), its count and native bf16, and the GPU when ``device`` is
    CUDA."""
    commit, dirty = git_state()
    device = torch.device(device) if device is not None else None
    gpu = capability = None
    if device is not None and device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        capability = "{}.{}".format(*torch.cuda.get_device_capability(device))
    return dict(
        python=platform.python_version(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        numpy=version("numpy"),
        lab4=version("lab4"),
        system=platform.system(),
        commit=commit,
        dirty=dirty,
        **cpu_fields(),
        cpus=os.cpu_count(),
        native_bf16=cpu_has_native_bf16(),
        cpu_bf16_env=os.environ.get("LAB4_CPU_BF16"),
        device=None if device is None else str(device),
        gpu=gpu,
        gpu_capability=capability,
    )
