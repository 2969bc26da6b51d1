"""The device a run uses, what it can do for the fast path (native bf16), and the CPU's name for the records."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from lab4.util.errors import Lab4Error


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when torch sees a GPU, else the CPU), or the device named; a missing GPU is one line."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Lab4Error(f"device {name!r} asked for, but torch sees no CUDA GPU (use device='auto' or 'cpu')")
    return dev


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX-BF16, ARM BF16), from the
    flags of /proc/cpuinfo (or the ``cpuinfo`` text given). Without it autocast would emulate bf16 and
    run slower than fp32, so the Trainer keeps fp32 there (and on systems without /proc/cpuinfo).
    ``LAB4_CPU_BF16=0`` answers no on any CPU: how `make report` runs on one without native bf16."""
    if cpuinfo is None and os.environ.get("LAB4_CPU_BF16") == "0":  # measure as on a CPU without it
        return False
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def amp_enabled(amp: bool, device: torch.device) -> bool:
    """bf16 autocast when asked for (the config's ``amp``) and the device runs bf16 natively: any CUDA GPU,
    or such a CPU."""
    return amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()))


def cpu_model_name() -> str:
    """The CPU's model name as lscpu shows it (``platform.processor()`` where /proc/cpuinfo is missing)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
