"""Hardware: backend choice, presets that fill only what is left at auto, T4 detection, CPU precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from brandkit.config import BrandkitError, TrainConfig
from brandkit.hardware import Hardware, choose_backend, resolve_config

CPU = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)
T4 = Hardware("cuda", "Tesla T4", 15.0, bf16=False, fp16=True, unsloth=True)
A100 = Hardware("cuda", "A100", 80.0, bf16=True, fp16=True, unsloth=True)


def test_backend_is_unsloth_only_with_cuda_and_unsloth():
    assert choose_backend(T4) == "unsloth"
    assert choose_backend(dataclasses.replace(T4, unsloth=False)) == "peft"
    assert choose_backend(dataclasses.replace(CPU, unsloth=True)) == "peft"
    assert choose_backend(T4, "peft") == "peft"
    with pytest.raises(BrandkitError, match="needs a CUDA GPU"):
        choose_backend(dataclasses.replace(CPU, unsloth=True), "unsloth")


def test_presets_follow_the_hardware():
    cpu, name, _ = resolve_config(TrainConfig(), CPU)
    assert name == "cpu" and cpu.dtype == "float32" and cpu.gradient_checkpointing == "false"
    assert not cpu.load_in_4bit
    t4, name, _ = resolve_config(TrainConfig(), T4)
    assert name == "t4" and t4.dtype == "float16" and t4.load_in_4bit and t4.gradient_checkpointing == "unsloth"
    big, name, _ = resolve_config(TrainConfig(), A100)
    assert name == "gpu" and big.dtype == "bfloat16"
    # a GPU without unsloth trains through PEFT: standard checkpointing instead of Unsloth's
    plain, name, why = resolve_config(TrainConfig(), dataclasses.replace(T4, unsloth=False))
    assert name == "t4" and plain.gradient_checkpointing == "true" and any("standard checkpointing" in w for w in why)
    # an explicit choice wins over the preset, even one equal to another preset's value
    assert resolve_config(TrainConfig(per_device_train_batch_size=3), T4)[0].per_device_train_batch_size == 3
    kept, _, _ = resolve_config(TrainConfig(per_device_train_batch_size=8, gradient_accumulation_steps=1,
                                            load_in_4bit=False, optim="adamw_torch"), T4)
    assert (kept.per_device_train_batch_size, kept.gradient_accumulation_steps, kept.load_in_4bit,
            kept.optim) == (8, 1, False, "adamw_torch")
    from brandkit.hardware import sft_config

    with pytest.raises(BrandkitError, match="resolve_config"):
        sft_config(TrainConfig(), Path("unused"), has_eval=False)
    # bf16 falls back where it is not native
    assert resolve_config(TrainConfig(dtype="bfloat16"), T4)[0].dtype == "float16"


def test_a_t4_is_detected_as_a_t4_not_a_bf16_gpu(monkeypatch):
    """torch counts emulated bf16 by default, which would send a T4 to the bf16 preset and fail."""
    from types import SimpleNamespace

    from brandkit.hardware import detect_hardware, preset_name

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return including_emulation  # a T4 (compute capability 7.5): bf16 only emulated

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(name="Tesla T4", total_memory=15 * 2**30, major=7, minor=5))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    hardware = detect_hardware()
    assert hardware.device == "cuda" and not hardware.bf16 and hardware.fp16
    assert preset_name(hardware) == "t4"


def test_cpu_training_uses_fp32_without_checkpointing(tmp_path, ember_examples):
    from brandkit.hardware import sft_config

    config, _, _ = resolve_config(TrainConfig(), CPU)
    args = sft_config(config, tmp_path, has_eval=True)
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing
    assert args.train_sampling_strategy == "group_by_length"
    shuffled = sft_config(dataclasses.replace(config, group_by_length=False), tmp_path, has_eval=True)
    assert shuffled.train_sampling_strategy == "random"
