"""Chat: the answers-only mask and EOS, other chat templates, the ChatML fallback, clear errors."""

from __future__ import annotations

import pytest

from brandkit.chat import (
    end_of_turn_ids,
    prepare_tokenizer,
    tokenize_example,
    tokenize_examples,
)
from brandkit.config import BrandkitError
from brandkit.models import load_tokenizer

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
