"""Train: masks and EOS, hardware presets and backend choice, a real (short) training run and resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from brandkit.config import BrandkitError, TrainConfig
from brandkit.train import (Hardware, choose_backend, end_of_turn_ids, load_tokenizer,
                            prepare_tokenizer, resolve_config, tokenize_example, tokenize_examples, train)

CPU = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)
T4 = Hardware("cuda", "Tesla T4", 15.0, bf16=False, fp16=True, unsloth=True)
A100 = Hardware("cuda", "A100", 80.0, bf16=True, fp16=True, unsloth=True)

CONVERSATION = [{"role": "system", "content": "You write for Ember."},
                {"role": "user", "content": "Write a note about the new blend."},
                {"role": "assistant", "content": "Copper Leaf is here! Warm, nutty, cosy."},
                {"role": "user", "content": "And a shorter one?"},
                {"role": "assistant", "content": "Copper Leaf. Get it while it's warm."}]


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer("brandkit-tiny")
    prepare_tokenizer(tok)
    return tok


def masked_text(tok, example):
    return tok.decode([t for t, m in zip(example["input_ids"], example["assistant_masks"], strict=True) if m])


def test_loss_only_on_assistant_tokens_with_eos(tokenizer):
    example = tokenize_example(tokenizer, CONVERSATION, 512)
    trained = masked_text(tokenizer, example)
    assert trained == ("Copper Leaf is here! Warm, nutty, cosy.<|im_end|>"
                       "Copper Leaf. Get it while it's warm.<|im_end|>")
    assert "Write a note" not in trained and "You write for" not in trained
    # every assistant turn ends on the end-of-turn token, inside the mask, so generation learns to stop
    ids, mask = example["input_ids"], example["assistant_masks"]
    ends = [i for i in range(len(ids) - 1) if mask[i] and not mask[i + 1]] + ([len(ids) - 1] if mask[-1] else [])
    assert len(ends) == 2 and all(ids[i] in end_of_turn_ids(tokenizer) for i in ends)


def test_masking_works_with_other_chat_templates(tokenizer):
    # a Llama-3-style template that injects a default system prompt and headers around each role
    llama_like = ("{{ '<|begin_of_text|>' }}{% if messages[0]['role'] != 'system' %}"
                  "{{ '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: 2023<|eot_id|>' }}"
                  "{% endif %}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
                  " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
                  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
    tok = load_tokenizer("brandkit-tiny")
    tok.chat_template = llama_like
    prepare_tokenizer(tok)
    trained = masked_text(tok, tokenize_example(tok, CONVERSATION[1:], 512))
    assert trained == "Copper Leaf is here! Warm, nutty, cosy.<|eot_id|>Copper Leaf. Get it while it's warm.<|eot_id|>"


def test_chatml_fallback_and_distinct_pad_for_a_base_model():
    tok = load_tokenizer("brandkit-tiny")
    tok.chat_template = None
    tok.pad_token = tok.eos_token
    added = prepare_tokenizer(tok)
    assert "<|im_start|>" in tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert tok.pad_token_id != tok.eos_token_id
    assert added == [] or set(added) <= {"<|im_start|>", "<|im_end|>", "<|pad|>"}


def test_no_example_is_all_masked(tokenizer, ember_examples):
    for split in ("train", "validation", "heldout"):
        tokenized = tokenize_examples(ember_examples[split], tokenizer, 512)
        assert all(1 in mask for mask in tokenized["assistant_masks"])
        labels = [[t if m else -100 for t, m in zip(ids, mask, strict=True)]
                  for ids, mask in zip(tokenized["input_ids"], tokenized["assistant_masks"], strict=True)]
        assert all(any(l != -100 for l in row) for row in labels)


def test_clear_error_when_truncation_leaves_nothing_to_learn(tokenizer, ember_examples):
    with pytest.raises(BrandkitError, match="no trainable token .* max_seq_length=8"):
        tokenize_examples(ember_examples["train"], tokenizer, 8)


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
    from brandkit.train import sft_config

    with pytest.raises(BrandkitError, match="resolve_config"):
        sft_config(TrainConfig(), Path("unused"), has_eval=False)
    # bf16 falls back where it is not native
    assert resolve_config(TrainConfig(dtype="bfloat16"), T4)[0].dtype == "float16"


def test_a_t4_is_detected_as_a_t4_not_a_bf16_gpu(monkeypatch):
    """torch counts emulated bf16 by default, which would send a T4 to the bf16 preset and fail."""
    from types import SimpleNamespace

    from brandkit.train import detect_hardware, preset_name

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
    from brandkit.train import sft_config

    config, _, _ = resolve_config(TrainConfig(), CPU)
    args = sft_config(config, tmp_path, has_eval=True)
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing
    assert args.train_sampling_strategy == "group_by_length"
    shuffled = sft_config(dataclasses.replace(config, group_by_length=False), tmp_path, has_eval=True)
    assert shuffled.train_sampling_strategy == "random"


def lora_tiny_model(tokenizer):
    from peft import get_peft_model

    from brandkit.train import load_base_model, lora_config

    config, _, _ = resolve_config(TrainConfig(), CPU)
    torch.manual_seed(0)
    model = load_base_model(config.base_model, config, tokenizer)
    model = get_peft_model(model, lora_config(config, model))
    for name, param in model.named_parameters():  # LoRA's B starts at zero: give it weights so it matters
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    return model


def loss_and_grads(model, loss_fn):
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_answer_only_loss_equals_the_full_loss_with_and_without_the_padding_mask(tokenizer, ember_examples):
    from brandkit.train import answer_only_loss, causal_mask_needed, pad_batch

    model = lora_tiny_model(tokenizer)
    rows = tokenize_examples(ember_examples["train"].select(range(4)), tokenizer, 512).to_list()
    ids, labels, attention = pad_batch(rows, tokenizer.pad_token_id)
    assert int((attention == 0).sum()) > 0, "the batch should need padding for this test to mean anything"
    inputs = {"input_ids": ids, "labels": labels, "attention_mask": attention}
    # right padding: the padding mask is dropped, and the loss and every gradient are unchanged
    assert causal_mask_needed(inputs) is None
    full, full_grads = loss_and_grads(model, lambda: model(**inputs).loss)
    ours, our_grads = loss_and_grads(model, lambda: answer_only_loss(model, dict(inputs)))
    assert ours == pytest.approx(full, rel=1e-5)
    for name, grad in full_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=1e-6)
    # left padding: a real token would see the pads before it, so the mask is kept
    left = torch.flip(attention, dims=[1])
    assert causal_mask_needed({"input_ids": ids, "attention_mask": left}) is left
    assert causal_mask_needed({"input_ids": ids, "attention_mask": attention,
                               "position_ids": torch.arange(ids.shape[1]).expand_as(ids)}) is attention


def test_length_batches_cover_every_example_once_with_little_padding():
    import random

    from brandkit.train import LengthBatches

    lengths = [random.Random(i).randint(20, 600) for i in range(101)]
    sampler = LengthBatches(lengths, batch_size=8, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(101))

    def useful_share(order):  # the data loader cuts the order into batches of 8
        batches = [order[i:i + 8] for i in range(0, len(order), 8)]
        return sum(lengths) / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    shuffled = random.Random(0).sample(range(101), 101)
    assert useful_share(first) > 0.9 > 0.75 > useful_share(shuffled)
    assert list(LengthBatches(lengths, 8, seed=3)) == first  # deterministic for a seed and epoch
    sampler.set_epoch(1)
    assert list(sampler) != first  # and the batch order changes between epochs


def small_config(**overrides) -> TrainConfig:
    base = dict(max_steps=6, per_device_train_batch_size=4, save_steps=2, eval_steps=3, logging_steps=1,
                learning_rate=1e-3)
    return TrainConfig(**{**base, **overrides})


def test_training_writes_an_adapter_that_loads_back(tmp_path, ember_examples):
    from peft import PeftModel

    from brandkit.compare import load_tuned

    result = train(ember_examples, small_config(), tmp_path, hardware=CPU)
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert (result.adapter_dir / "tokenizer.json").exists()
    assert (result.adapter_dir / "brandkit_train.yaml").exists()
    assert result.backend == "peft" and result.preset == "cpu"
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) == 6 and all(l == l for l in losses)
    model, tok = load_tuned(result.adapter_dir)
    assert isinstance(model, PeftModel)
    ids = tok("Hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    assert not torch.allclose(tuned, base)  # the adapter changed something, and it can be switched off


class StopAt:
    """A callback that interrupts training, as a kernel restart or a Colab disconnect would."""

    def __init__(self, step: int):
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == outer.step:
                    raise KeyboardInterrupt

        self.step, self.callback = step, Callback()


def test_interrupted_run_resumes_from_the_last_checkpoint(tmp_path, ember_examples):
    with pytest.raises(KeyboardInterrupt):
        train(ember_examples, small_config(), tmp_path, callbacks=[StopAt(5).callback], hardware=CPU)
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    resumed = train(ember_examples, small_config(), tmp_path, hardware=CPU)
    assert "resumed from checkpoint-4" in resumed.notes
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    steps = [h["step"] for h in resumed.log_history if "loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_advice_in_plain_language():
    from brandkit.train import TrainingAdvice

    said = []
    advice = TrainingAdvice(said.append)
    advice.check_training([2.0, 1.0, 0.15], step=3, max_steps=30)
    advice.check_validation([(10, 1.2), (20, 1.3), (30, 1.5)])
    advice.check_training([3.0, 3.0, 3.01, 3.0, 3.02, 3.0], step=20, max_steps=30)
    keys = [w.split(":")[0] for w in advice.warnings]
    assert keys == ["memorising", "overfitting", "not learning"]
    assert "lowest (1.20) at step 10" in advice.warnings[1] and len(said) == 3
    advice.check_training([0.1], step=25, max_steps=30)
    assert len(advice.warnings) == 3  # each warning is said once


def test_adapter_folder_has_card_and_statistics(small_run):
    adapter = small_run.path("train", "adapter")
    card = (adapter / "README.md").read_text()
    assert card.startswith("---\nbase_model: brandkit-tiny\nlibrary_name: peft")
    assert "rehearsal of the pipeline" in card
    stats = json.loads((adapter / "data_stats.json").read_text())
    assert stats["train"]["examples"] > 50 and stats["heldout"]["examples"] > 0


def test_ollama_modelfile_uses_the_template_and_stop_tokens(small_run, tmp_path):
    from brandkit.export import write_modelfile

    path = write_modelfile(small_run.path("train", "adapter"), tmp_path / "Modelfile", brand=small_run.brand)
    text = path.read_text()
    assert text.startswith("FROM ./model.gguf\nTEMPLATE \"\"\"")
    assert "<|im_start|>{{ .Role }}" in text and "<|im_start|>assistant" in text
    assert 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You write for Ember Street' in text


def test_merged_export_runs_without_peft(small_run, tmp_path):
    from transformers import AutoModelForCausalLM

    from brandkit.compare import load_tuned
    from brandkit.export import merge_adapter

    out = merge_adapter(small_run.path("train", "adapter"), tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert merged.dtype == torch.float32 and (out / "tokenizer.json").exists()
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    tuned, tok = load_tuned(small_run.path("train", "adapter"))
    ids = tok("Hello there", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=5e-2)


def test_gguf_export_says_clearly_why_not_on_a_cpu(small_run, tmp_path):
    from brandkit.export import export_gguf

    with pytest.raises(BrandkitError, match="CUDA GPU.*merge_adapter"):
        export_gguf(small_run.path("train", "adapter"), tmp_path / "gguf")
