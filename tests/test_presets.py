"""Presets: the hardware preset and the model's own defaults fill only what is left at auto; CPU precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from brandkit.config import BrandkitError, TrainConfig
from brandkit.hardware import Hardware
from brandkit.presets import resolve_config

CPU = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)
T4 = Hardware("cuda", "Tesla T4", 15.0, bf16=False, fp16=True, unsloth=True)
A100 = Hardware("cuda", "A100", 80.0, bf16=True, fp16=True, unsloth=True)


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
    from brandkit.presets import sft_config

    with pytest.raises(BrandkitError, match="resolve_config"):
        sft_config(TrainConfig(), Path("unused"), has_eval=False)
    # bf16 falls back where it is not native
    assert resolve_config(TrainConfig(dtype="bfloat16"), T4)[0].dtype == "float16"


def test_cpu_training_uses_fp32_without_checkpointing(tmp_path, ember_examples):
    from brandkit.presets import sft_config

    config, _, _ = resolve_config(TrainConfig(), CPU)
    args = sft_config(config, tmp_path, has_eval=True)
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing
    assert args.train_sampling_strategy == "group_by_length"
    shuffled = sft_config(dataclasses.replace(config, group_by_length=False), tmp_path, has_eval=True)
    assert shuffled.train_sampling_strategy == "random"


def test_a_cpu_with_fast_bf16_trains_in_bf16_and_one_without_it_in_fp32(tmp_path):
    from brandkit.presets import sft_kwargs

    fast = dataclasses.replace(CPU, bf16=True)  # detect_hardware measures it: see cpu_bf16_speedup
    config, _, why = resolve_config(TrainConfig(), fast)
    assert config.dtype == "bfloat16" and any("bf16" in w for w in why)
    args = sft_kwargs(config, tmp_path, has_eval=False)
    assert args["bf16"] and args["use_cpu"] and not args["gradient_checkpointing"]
    assert resolve_config(TrainConfig(), CPU)[0].dtype == "float32"
    assert resolve_config(TrainConfig(dtype="bfloat16"), CPU)[0].dtype == "float32"  # not native: fp32
    assert resolve_config(TrainConfig(dtype="float32"), fast)[0].dtype == "float32"  # the user's choice wins


def test_the_base_models_own_defaults_fill_what_is_left_at_auto():
    from brandkit.presets import MODEL_DEFAULTS

    tiny, _, why = resolve_config(TrainConfig(base_model="brandkit-tiny"), CPU)
    assert (tiny.learning_rate, tiny.num_train_epochs) == (3e-3, 10.0) and any("brandkit-tiny" in w for w in why)
    hub, _, _ = resolve_config(TrainConfig(base_model="someone/some-model"), CPU)
    assert (hub.learning_rate, hub.num_train_epochs, hub.max_seq_length) == (
        MODEL_DEFAULTS["learning_rate"], MODEL_DEFAULTS["num_train_epochs"], MODEL_DEFAULTS["max_seq_length"])
    # a value set by hand wins, even one equal to the generic default
    mine, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny", learning_rate=2e-4), CPU)
    assert (mine.learning_rate, mine.num_train_epochs) == (2e-4, 10.0)
    from brandkit.presets import AUTO_FIELDS

    resolved = resolve_config(TrainConfig(), CPU)[0]
    assert all(getattr(resolved, key) != "auto" for key in AUTO_FIELDS) and "learning_rate" in AUTO_FIELDS


def test_a_small_training_set_gets_the_models_minimum_steps_not_fewer():
    from brandkit.models import BASE_MODELS

    smollm2 = BASE_MODELS["smollm2-135m"]
    fast = dataclasses.replace(CPU, bf16=True)
    big, _, _ = resolve_config(TrainConfig(), fast, train_examples=106)  # 27 steps an epoch, two epochs
    assert (big.per_device_train_batch_size, big.num_train_epochs, big.max_steps) == (4, 2.0, -1)
    # in fp32 a step takes 1.5x as long: 1.5 epochs (41 steps), which still meets the minimum
    slow, _, why = resolve_config(TrainConfig(), CPU, train_examples=106)
    assert (slow.num_train_epochs, slow.max_steps, slow.dtype) == (1.5, -1, "float32") and any("fp32" in w for w in why)
    assert resolve_config(TrainConfig(dtype="float32"), fast)[0].num_train_epochs == 1.5  # fp32 by choice
    assert resolve_config(TrainConfig(num_train_epochs=2.0), CPU)[0].num_train_epochs == 2.0  # set by hand: kept
    small, _, why = resolve_config(TrainConfig(), CPU, train_examples=50)  # 13 an epoch: 20 would be too few
    assert small.max_steps == smollm2.min_steps == 40 and any("40 steps instead of 1.5 epochs" in w for w in why)
    # epochs or steps set by hand are kept
    assert resolve_config(TrainConfig(num_train_epochs=1.0), CPU, train_examples=50)[0].max_steps == -1
    assert resolve_config(TrainConfig(max_steps=6), CPU, train_examples=50)[0].max_steps == 6
    assert resolve_config(TrainConfig(), CPU)[0].max_steps == -1  # the size unknown: epochs as they are
