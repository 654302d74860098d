"""Hardware: what this machine trains on, the preset that turns it into training settings, and SFTConfig's keywords.

Detection never imports a GPU library it does not need; presets fill only the settings left at
"auto", so a value the user set always wins.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TINY_MODEL_ID, BrandkitError, TrainConfig


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
def speed(x, y):
    x @ y
    start = time.perf_counter()
    for _ in range(8):
        x @ y
    return time.perf_counter() - start
fp32 = speed(a, b)
bf16 = speed(a.bfloat16(), b.bfloat16())
print(fp32 / bf16)
"""


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
    # bf16 on a CPU pays off only with native instructions that really run (see cpu_bf16_speedup).
    return Hardware("cpu", platform.processor() or platform.machine(), memory, False, False, unsloth)


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


PRESETS: dict[str, dict[str, Any]] = {
    # Precision and memory settings per hardware class: they fill the config's fields left at "auto";
    # any value set in the config wins.
    # fused AdamW has CPU kernels (torch >= 2.4): one kernel over LoRA's many small tensors
    "cpu": {"dtype": "float32", "gradient_checkpointing": "false", "load_in_4bit": False,
            "optim": "adamw_torch_fused", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
    "t4": {"dtype": "float16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
           "optim": "adamw_8bit", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},
    "gpu": {"dtype": "bfloat16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
            "optim": "adamw_8bit", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2},
}


# The offline tiny model is a few million parameters: it needs a bigger step than the 2e-4 that
# suits billion-parameter models, and a few more passes over the data.
TINY_MODEL_DEFAULTS: dict[str, Any] = {"learning_rate": 3e-3, "num_train_epochs": 10.0}


def preset_name(hardware: Hardware) -> str:
    if hardware.device != "cuda":
        return "cpu"
    return "gpu" if hardware.bf16 else "t4"


def resolve_config(config: TrainConfig, hardware: Hardware) -> tuple[TrainConfig, str, list[str]]:
    """Fill every "auto" from the hardware preset; returns the config, the preset and why."""
    name = config.preset if config.preset != "auto" else preset_name(hardware)
    if name not in PRESETS:
        raise BrandkitError(f"unknown preset {name!r} (auto, {', '.join(PRESETS)})")
    preset, defaults, why = PRESETS[name], TrainConfig(), [f"preset {name!r} for {hardware.describe()}"]
    values = {}
    for key, value in preset.items():
        if getattr(config, key) == "auto":
            values[key] = value
    if config.base_model == TINY_MODEL_ID:
        tiny = {k: v for k, v in TINY_MODEL_DEFAULTS.items() if getattr(config, k) == getattr(defaults, k)}
        values.update(tiny)
        if tiny:
            why.append("the offline tiny model's own defaults: " + ", ".join(f"{k} {v}" for k, v in tiny.items()))
    resolved = dataclasses.replace(config, preset=name, **values)
    if resolved.dtype == "bfloat16" and hardware.device == "cpu" and cpu_bf16_speedup() > 1.2:
        why.append(f"bf16 runs {cpu_bf16_speedup():.1f}x faster than fp32 on this CPU: keeping bfloat16")
    elif resolved.dtype == "bfloat16" and not hardware.bf16:
        why.append("bf16 is not native here: training in " + ("float16" if hardware.fp16 else "float32"))
        resolved = dataclasses.replace(resolved, dtype="float16" if hardware.fp16 else "float32")
    if hardware.device != "cuda" and (resolved.load_in_4bit or resolved.dtype == "float16"):
        why.append("no CUDA GPU: 4-bit loading and fp16 switched off, training in float32")
        resolved = dataclasses.replace(resolved, load_in_4bit=False, dtype="float32")
    if resolved.gradient_checkpointing == "unsloth" and hardware.device != "cuda":
        resolved = dataclasses.replace(resolved, gradient_checkpointing="false")
    elif resolved.gradient_checkpointing == "unsloth" and choose_backend(hardware, resolved.backend) == "peft":
        # Unsloth's offloaded checkpointing needs Unsloth; without it, keep the memory saving the standard way
        why.append("gradient checkpointing 'unsloth' needs the unsloth backend: using standard checkpointing")
        resolved = dataclasses.replace(resolved, gradient_checkpointing="true")
    return resolved, name, why


def sft_config(config: TrainConfig, output_dir: Path, has_eval: bool, **overrides: Any):
    """TRL's SFTConfig with precision and checkpointing taken from our (resolved) config."""
    from trl import SFTConfig

    return SFTConfig(**sft_kwargs(config, output_dir, has_eval, **overrides))


def sft_kwargs(config: TrainConfig, output_dir: Path, has_eval: bool, **overrides: Any) -> dict[str, Any]:
    """The keywords brandkit passes to SFTConfig (tests check them against the installed trl)."""
    unresolved = [key for key in PRESETS["cpu"] if getattr(config, key) == "auto"]
    if unresolved:
        raise BrandkitError(f"train config still has 'auto' for {', '.join(unresolved)}: pass it through "
                            "resolve_config(config, detect_hardware()) first")
    checkpointing = config.gradient_checkpointing in ("true", "unsloth", True)
    args = dict(
        output_dir=str(output_dir), per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs, max_steps=config.max_steps, warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay, lr_scheduler_type=config.lr_scheduler_type, optim=config.optim,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None, seed=config.seed, data_seed=config.seed,
        bf16=config.dtype == "bfloat16", fp16=config.dtype == "float16",
        gradient_checkpointing=checkpointing and config.gradient_checkpointing != "unsloth",
        max_length=config.max_seq_length, report_to="none", dataset_num_proc=None, loss_type="nll",
        use_cpu=config.dtype == "float32" and not _cuda(),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
    args.update(overrides)
    return args


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
