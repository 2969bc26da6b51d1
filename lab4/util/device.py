"""The device a run uses, the precision it trains in there (bf16, fp16 with a GradScaler, or fp32), whether
torch.compile can run on it, and the CPU's name for the records."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import NamedTuple

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


class Precision(NamedTuple):
    """How a run trains on its device: autocast ``dtype`` ("bf16", "fp16" or "fp32" = none), whether a
    GradScaler guards fp16's narrow range (``scaler``), whether torch.compile and CUDA graphs can run there
    (``compile_ok``: Triton needs compute capability 7.0), and ``reason``, one sentence for summary.json."""

    dtype: str
    scaler: bool
    compile_ok: bool
    reason: str

    def autocast(self, device: torch.device):
        """The autocast context of this precision (disabled for fp32); losses and KL stay fp32 inside it."""
        dtype = torch.float16 if self.dtype == "fp16" else torch.bfloat16
        return torch.autocast(device.type, dtype=dtype, enabled=self.dtype != "fp32")

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A GradScaler for fp16; a disabled one otherwise (its scale, unscale_ and step are then
        pass-throughs)."""
        return torch.amp.GradScaler(device.type, enabled=self.scaler)

    def fast_path(self, cfg):
        """(the Config that builds the compiled steps, why they are off): ``cfg`` itself, or with compile and
        CUDA graphs off where Triton cannot run, so the first epoch does not fail on a GPU it does not
        support."""
        if self.compile_ok or not (cfg.compile or cfg.cuda_graphs):
            return cfg, None
        return cfg.replace(compile=False, cuda_graphs=False), f"torch.compile: {self.reason}"


def choose_precision(amp: bool, device: torch.device, cpuinfo: str | None = None) -> Precision:
    """The precision for the config's ``amp`` on ``device``: autocast only in a dtype the hardware multiplies
    natively, since an emulated one runs slower than fp32. CUDA: bf16 from compute capability 8.0 (Ampere),
    fp16 with a GradScaler on 7.x (V100, T4: fp16 tensor cores only), fp32 below, where Triton cannot compile
    either (P100). CPU: bf16 where :func:`cpu_has_native_bf16` (``cpuinfo`` as there), else fp32."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        gpu = f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"
        compile_ok = major >= 7
        triton = (
            "" if compile_ok else "; torch.compile and CUDA graphs off: Triton needs compute capability 7.0"
        )
        if not amp:
            return Precision("fp32", False, compile_ok, f"fp32: amp is off{triton}")
        if major >= 8:
            return Precision("bf16", False, True, f"bf16: {gpu} has bf16 tensor cores")
        if major == 7:
            return Precision(
                "fp16", True, True, f"fp16 with a GradScaler: {gpu} has fp16 but no bf16 tensor cores"
            )
        return Precision("fp32", False, False, f"fp32: {gpu} has no tensor cores{triton}")
    if not amp:
        return Precision("fp32", False, True, "fp32: amp is off")
    if device.type != "cpu":
        return Precision(
            "fp32", False, True, f"fp32: autocast is used on CUDA and CPUs only, not {device.type}"
        )
    if cpu_has_native_bf16(cpuinfo=cpuinfo):
        return Precision(
            "bf16", False, True, "bf16: the CPU multiplies bf16 natively (AVX512-BF16, AMX or ARM BF16)"
        )
    why = (
        "LAB4_CPU_BF16=0 answers as a CPU without native bf16"
        if cpuinfo is None and os.environ.get("LAB4_CPU_BF16") == "0"
        else "the CPU has no native bf16, and emulated bf16 is slower"
    )
    return Precision("fp32", False, True, f"fp32: {why}")


def cpu_model_name() -> str:
    """The CPU's model name as lscpu shows it (``platform.processor()`` where /proc/cpuinfo is missing)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
