"""PEFT backend: the answers-only loss equals the plain one, and length-grouped batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from brandkit.chat import prepare_tokenizer, tokenize_examples
from brandkit.config import TrainConfig
from brandkit.hardware import Hardware
from brandkit.presets import resolve_config
from brandkit.models import load_tokenizer

CPU = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer("brandkit-tiny")
    prepare_tokenizer(tok)
    return tok


def lora_tiny_model(tokenizer):
    from peft import get_peft_model

    from brandkit.models import load_base_model
    from brandkit.peft_backend import lora_config

    config, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny"), CPU)
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
    from brandkit.chat import pad_batch
    from brandkit.peft_backend import answer_only_loss, causal_mask_needed

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

    from brandkit.peft_backend import LengthBatches

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


def test_padding_free_batches_give_the_padded_loss_and_gradients(tokenizer, ember_examples):
    """TRL's padding-free collator puts a batch in one row, with position_ids restarting at each example.

    The answers-only loss must hand those position_ids to the model: transformers turns the resets
    into a block mask (SDPA here), so no example attends to another. Without them the row is one long
    causal sequence and the loss changes, which this test also checks so that it means something.
    """
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from brandkit.chat import pad_batch
    from brandkit.peft_backend import answer_only_loss

    model = lora_tiny_model(tokenizer)
    rows = tokenize_examples(ember_examples["train"].select(range(4)), tokenizer, 512).to_list()
    ids, labels, attention = pad_batch(rows, tokenizer.pad_token_id)
    padded = {"input_ids": ids, "labels": labels, "attention_mask": attention}
    examples = [{"input_ids": r["input_ids"], "labels": [t if m else -100 for t, m in
                                                         zip(r["input_ids"], r["assistant_masks"], strict=True)]}
                for r in rows]
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    assert packed["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows)) and "attention_mask" not in packed
    assert int((packed["position_ids"] == 0).sum()) == len(rows)
    reference, reference_grads = loss_and_grads(model, lambda: answer_only_loss(model, dict(padded)))
    ours, our_grads = loss_and_grads(model, lambda: answer_only_loss(model, dict(packed)))
    assert ours == pytest.approx(reference, rel=1e-5)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=1e-6)
    leaky = {key: value for key, value in packed.items() if key != "position_ids"}
    assert answer_only_loss(model, leaky).item() != pytest.approx(reference, rel=1e-3)


def test_the_answers_only_loss_runs_under_the_trainers_bf16_autocast(tokenizer, ember_examples, tmp_path):
    """The loss calls the decoder and the head itself, around the forward that accelerate wraps in its
    autocast: without entering it there, bf16 training on a CPU silently ran in fp32."""
    from brandkit.peft_backend import trainer_class
    from brandkit.presets import sft_config

    rows = tokenize_examples(ember_examples["train"].select(range(4)), tokenizer, 512)
    for hardware, expected in ((CPU, torch.float32), (dataclasses.replace(CPU, bf16=True), torch.bfloat16)):
        config, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny"), hardware)
        model = lora_tiny_model(tokenizer)  # fp32 weights either way: only the autocast differs
        seen = []
        projection = next(m for n, m in model.named_modules() if n.endswith("q_proj.base_layer"))
        projection.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
        trainer = trainer_class()(model=model, args=sft_config(config, tmp_path, has_eval=False),
                                  train_dataset=rows, processing_class=tokenizer)
        batch = next(iter(trainer.get_train_dataloader()))
        with trainer.compute_loss_context_manager():
            loss = trainer.compute_loss(model, batch)
        assert seen and set(seen) == {expected} and torch.isfinite(loss)


def test_validation_runs_the_head_on_the_answers_only_and_reports_the_plain_loss(tokenizer, ember_examples, tmp_path,
                                                                                 monkeypatch):
    """Evaluation asks compute_loss for outputs; with no metric reading logits, it takes the answers-only
    path too (the output layer over every prompt token was a fifth of a validation pass on SmolLM2),
    and the validation loss is the one the full model gives over the same labels."""
    from brandkit import head_loss
    from brandkit.head_loss import head_cross_entropy_sum
    from brandkit.peft_backend import trainer_class
    from brandkit.presets import sft_config

    rows = tokenize_examples(ember_examples["validation"].select(range(4)), tokenizer, 512)
    config, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny"), CPU)
    model = lora_tiny_model(tokenizer)
    args = sft_config(config, tmp_path, has_eval=True)
    args.per_device_eval_batch_size = 4
    trainer = trainer_class()(model=model, args=args, train_dataset=rows, eval_dataset=rows,
                              processing_class=tokenizer)
    head_rows, sliced_rows = [], []
    model.get_base_model().get_output_embeddings().register_forward_hook(
        lambda module, args, output: head_rows.append(args[0].shape[:-1].numel()))

    def counting(hidden, head, targets):
        sliced_rows.append(hidden.shape[0])
        return head_cross_entropy_sum(hidden, head, targets)

    monkeypatch.setattr(head_loss, "head_cross_entropy_sum", counting)
    reported = trainer.evaluate()["eval_loss"]
    [batch] = list(trainer.get_eval_dataloader())
    answer_tokens = int((batch["labels"][:, 1:] != -100).sum())
    # the frozen head goes the sliced way, over the answers only (not every position)
    assert head_rows == [] and sliced_rows == [answer_tokens] and answer_tokens < batch["input_ids"].numel()
    model.eval()
    with torch.no_grad():
        plain = model(**{k: v for k, v in batch.items() if k in ("input_ids", "labels", "attention_mask")}).loss
    assert reported == pytest.approx(plain.item(), rel=1e-5)


def test_the_trainer_fuses_its_lora_layers_and_keeps_the_loss_and_gradients(ember_examples, tmp_path):
    from peft.tuners.lora import Linear as LoraLinear

    from brandkit.chat import pad_batch
    from brandkit.fused_lora import FusedLoraLinear
    from brandkit.peft_backend import answer_only_loss, build_peft_trainer

    config, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny", dtype="float32"), CPU)
    trainer, model, tokenizer = build_peft_trainer(ember_examples, config, tmp_path, callbacks=[])
    lora_layers = [m for m in model.modules() if isinstance(m, LoraLinear)]
    assert lora_layers and all(type(m) is FusedLoraLinear for m in lora_layers)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    rows = tokenize_examples(ember_examples["train"].select(range(4)), tokenizer, 512).to_list()
    ids, labels, attention = pad_batch(rows, tokenizer.pad_token_id)
    inputs = {"input_ids": ids, "labels": labels, "attention_mask": attention}
    fused, fused_grads = loss_and_grads(model, lambda: answer_only_loss(model, dict(inputs)))
    for layer in lora_layers:
        layer.__class__ = LoraLinear  # PEFT's own forward, the same weights
    plain, plain_grads = loss_and_grads(model, lambda: answer_only_loss(model, dict(inputs)))
    assert fused == pytest.approx(plain, rel=1e-5)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6)
