"""Hardware: the backend choice, and a T4 detected as a T4 (no native bf16)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from brandkit.config import BrandkitError
from brandkit.hardware import Hardware, choose_backend

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
