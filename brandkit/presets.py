"""Presets: a training config with every "auto" filled in, from the hardware's preset and the base model's own defaults.

Only fields left at "auto" are filled, so a value the user set always wins. Also the keywords
brandkit passes to TRL's SFTConfig, built from such a resolved config.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from .config import BrandkitError, TrainConfig
from .hardware import Hardware, choose_backend, preset_name
from .models import base_model_info

PRESETS: dict[str, dict[str, Any]] = {
    # Precision and memory settings per hardware class: they fill the config's fields left at "auto";
    # any value set in the config wins.
    # fused AdamW has CPU kernels (torch >= 2.4): one kernel over LoRA's many small tensors; a CPU whose
    # bf16 matmuls are measured fast trains in bfloat16 instead of float32 (resolve_config)
    "cpu": {"dtype": "float32", "gradient_checkpointing": "false", "load_in_4bit": False,
            "optim": "adamw_torch_fused", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
    "t4": {"dtype": "float16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
           "optim": "adamw_8bit", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},
    "gpu": {"dtype": "bfloat16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
            "optim": "adamw_8bit", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2},
}

# Settings that depend on the model more than on the machine, for a model the registry has no
# defaults for (a Hub id or a folder): the values Unsloth's notebooks use for 1-8B models.
MODEL_DEFAULTS: dict[str, Any] = {"learning_rate": 2e-4, "num_train_epochs": 3.0, "max_seq_length": 1024}

# every field a resolved config must have filled in
AUTO_FIELDS = tuple(dict.fromkeys([*PRESETS["cpu"], *MODEL_DEFAULTS]))


def resolve_config(config: TrainConfig, hardware: Hardware,
                   train_examples: int | None = None) -> tuple[TrainConfig, str, list[str]]:
    """Fill every "auto" from the hardware preset; returns the config, the preset and why.

    Given the number of training examples, a base model's default epochs give a small training set
    at least the model's `min_steps` optimizer steps (a set of 50 examples in batches of 4 is 13 steps an epoch).
    """
    name = config.preset if config.preset != "auto" else preset_name(hardware)
    if name not in PRESETS:
        raise BrandkitError(f"unknown preset {name!r} (auto, {', '.join(PRESETS)})")
    preset, why = PRESETS[name], [f"preset {name!r} for {hardware.describe()}"]
    values = {key: value for key, value in preset.items() if getattr(config, key) == "auto"}
    if name == "cpu" and hardware.bf16 and config.dtype == "auto":
        values["dtype"] = "bfloat16"
        why.append("bf16 matmuls run natively and fast on this CPU (measured): training in bfloat16")
    info = base_model_info(config.base_model)
    own = {key: value for key, value in (info.train_defaults if info else {}).items() if getattr(config, key) == "auto"}
    fp32_cpu = name == "cpu" and not (values.get("dtype", config.dtype) == "bfloat16" and hardware.bf16)
    slower = {key: value for key, value in (info.fp32_cpu_defaults if info and fp32_cpu else {}).items()
              if getattr(config, key) == "auto"}
    if slower:
        why.append("training in fp32 on this CPU, each step about 1.5x as long: "
                   + ", ".join(f"{k} {v}" for k, v in slower.items()) + " (the model's fp32 setting)")
        own.update(slower)
    if own:
        why.append(f"{info.name}'s own defaults: " + ", ".join(f"{k} {v}" for k, v in own.items()))
    values.update(own)
    values.update({key: value for key, value in MODEL_DEFAULTS.items()
                   if getattr(config, key) == "auto" and key not in values})
    resolved = dataclasses.replace(config, preset=name, **values)
    if train_examples and info and info.min_steps and "num_train_epochs" in own and resolved.max_steps <= 0:
        per_epoch = math.ceil(train_examples / (resolved.per_device_train_batch_size
                                                * resolved.gradient_accumulation_steps))
        if per_epoch * resolved.num_train_epochs < info.min_steps:
            why.append(f"{train_examples} examples make {per_epoch} steps an epoch: training for "
                       f"{info.min_steps} steps instead of {resolved.num_train_epochs:g} epochs")
            resolved = dataclasses.replace(resolved, max_steps=info.min_steps)
    if resolved.dtype == "bfloat16" and not hardware.bf16:
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
    unresolved = [key for key in AUTO_FIELDS if getattr(config, key) == "auto"]
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
        use_cpu=config.dtype in ("float32", "bfloat16") and not _cuda(),  # bfloat16 without CUDA: a bf16 CPU
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
    args.update(overrides)
    return args


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
