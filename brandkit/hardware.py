"""Hardware: what this machine trains on (device, native precisions, Unsloth), and which backend and preset that means.

Detection never imports a GPU library it does not need, and measures bf16 rather than trusting
the CPU's flags.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import subprocess
import sys
from dataclasses import dataclass

from .config import BrandkitError


@dataclass
class Hardware:
    """What this machine can train on, and how fast each precision runs here."""

    device: str                  # cuda | mps | cpu
    name: str
    memory_gb: float
    bf16: bool                   # bf16 runs natively (Ampere+ GPU, or a CPU with bf16 instructions)
    fp16: bool
    unsloth: bool                # unsloth and its GPU dependencies are installed (checked without importing)

    def describe(self) -> str:
        fast = "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"
        return f"{self.device}: {self.name}, {self.memory_gb:.0f} GB, fastest precision {fast}"


BF16_PROBE = """
import time, torch
a, b = torch.randn(384, 384), torch.randn(384, 384)
pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
best = {}
for round in range(20):  # many short interleaved timings, the best of each: a busy machine must not decide the dtype
    for name, (x, y) in pairs.items():
        x @ y
        start = time.perf_counter()
        for _ in range(4):
            x @ y
        best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    if round >= 2 and best["fp32"] / best["bf16"] < 0.5:
        break  # emulated bf16 (avx2: about 0.02x) is not near the threshold, and each round of it takes 0.4 s
print(best["fp32"] / best["bf16"])
"""


# a CPU trains and generates in bf16 when its bf16 matmuls run at least this much faster than fp32
CPU_BF16_WORTH = 1.5


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """How much faster a bf16 matmul runs than fp32 on this CPU (0.0 when it cannot run at all).

    Measured in a child process: some virtual machines advertise bf16 instructions (avx512_bf16,
    AMX) that then kill the process with "illegal instruction"; reading /proc/cpuinfo is not enough.
    """
    try:
        done = subprocess.run([sys.executable, "-c", BF16_PROBE], capture_output=True, text=True, timeout=120)
        return float(done.stdout.strip()) if done.returncode == 0 else 0.0
    except (subprocess.SubprocessError, ValueError, OSError):
        return 0.0


def detect_hardware() -> Hardware:
    import torch

    # usable on a GPU only with its kernels' dependencies (the gpu extra installs them)
    unsloth = all(importlib.util.find_spec(name) is not None for name in ("unsloth", "bitsandbytes", "triton"))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        # native bf16 only: by default torch also counts emulation, which would call a T4 a bf16 GPU
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return Hardware("cuda", props.name, props.total_memory / 2**30, bf16, True, unsloth)
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Hardware("mps", "Apple GPU", 0.0, False, True, unsloth)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = 0.0
    # bf16 on a CPU pays off only with native instructions that really run (see cpu_bf16_speedup)
    bf16 = cpu_bf16_speedup() >= CPU_BF16_WORTH
    return Hardware("cpu", platform.processor() or platform.machine(), memory, bf16, False, unsloth)


def choose_backend(hardware: Hardware, requested: str = "auto") -> str:
    """Unsloth only with a CUDA GPU and unsloth installed; transformers + PEFT everywhere else."""
    if requested == "unsloth":
        if hardware.device != "cuda" or not hardware.unsloth:
            raise BrandkitError("backend 'unsloth' needs a CUDA GPU and `pip install brandkit[gpu]`; "
                                f"this machine has {hardware.describe()}, unsloth installed: {hardware.unsloth}")
        return "unsloth"
    if requested not in ("auto", "peft"):
        raise BrandkitError(f"unknown backend {requested!r} (auto, unsloth or peft)")
    if requested == "auto" and hardware.device == "cuda" and hardware.unsloth and world_size() == 1:
        return "unsloth"  # several processes (accelerate launch) go through transformers + PEFT (DDP, FSDP)
    return "peft"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def preset_name(hardware: Hardware) -> str:
    if hardware.device != "cuda":
        return "cpu"
    return "gpu" if hardware.bf16 else "t4"
