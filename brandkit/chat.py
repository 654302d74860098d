"""Chat: the chat template, tokenising a conversation, and the answers-only mask the loss is computed on.

Used by examples' checks, readiness, both training backends and compare: one definition of which
tokens are "the answer".
"""

from __future__ import annotations

from typing import Any

from .config import BrandkitError

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TOKENS = ["<|im_start|>", "<|im_end|>"]
PAD_TOKEN = "<|pad|>"


def prepare_tokenizer(tokenizer) -> list[str]:
    """Give the tokenizer a chat template and a pad token distinct from EOS; returns added tokens."""
    added = []
    if not getattr(tokenizer, "chat_template", None):
        missing = [t for t in CHATML_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing})
            added += missing
        tokenizer.chat_template = CHATML_TEMPLATE
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        if PAD_TOKEN not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
            added.append(PAD_TOKEN)
        else:
            tokenizer.pad_token = PAD_TOKEN
    return added


def render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of every assistant answer.

    Each span runs from the end of the prompt that precedes the answer to the end of the answer's
    turn, so it includes the end-of-turn token: the model learns to stop. Works with any template
    that renders a conversation's prefix as a prefix of the whole.
    """
    full = render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], add_generation_prompt=True)
        upto = render(tokenizer, messages[: index + 1])
        if not (upto.startswith(prompt) and full.startswith(upto)):
            raise BrandkitError("the chat template does not render a conversation's beginning as a prefix of "
                                "the whole, so the answers cannot be located; use a standard template")
        end = len(upto.rstrip())
        spans.append((len(prompt), end))
    return full, spans


def tokenize_example(tokenizer, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """input_ids and assistant_masks (1 on tokens the loss is computed on) for one conversation."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start < end_span and end > start_span for start_span, end_span in spans))
            for start, end in encoded["offset_mapping"]]
    return {"input_ids": encoded["input_ids"][:max_length], "assistant_masks": mask[:max_length]}


def tokenize_examples(dataset, tokenizer, max_length: int):
    """Tokenize a split; fail with the examples' ids when one has no trainable token left."""
    tokenized = dataset.map(lambda ex: tokenize_example(tokenizer, ex["messages"], max_length),
                            desc="Tokenizing and masking")
    empty = [ex_id for ex_id, mask in zip(tokenized["id"], tokenized["assistant_masks"], strict=True)
             if 1 not in mask]
    if empty:
        raise BrandkitError(
            f"{len(empty)} example(s) have no trainable token after masking to the assistant's answers and "
            f"truncating to max_seq_length={max_length} (e.g. {', '.join(empty[:3])}): the prompt fills the "
            "whole length or the chat template lost the answers; raise max_seq_length or shorten the prompt")
    return tokenized


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn (EOS and the template's end-of-turn marker)."""
    ids = {tokenizer.eos_token_id}
    probe = render(tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
    tail = probe[probe.rindex("y") + 1:].strip()
    for token in tokenizer.all_special_tokens:
        if token and tail.startswith(token):
            ids.add(tokenizer.convert_tokens_to_ids(token))
    return sorted(i for i in ids if i is not None)


def pad_batch(rows: list[dict[str, Any]], pad_id: int):
    """Right-padded input ids, labels (the answer's tokens; -100 elsewhere) and attention mask."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), -100)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        attention[i, :n] = 1
        labels[i, :n] = torch.tensor([t if m else -100 for t, m in zip(r["input_ids"], r["assistant_masks"],
                                                                       strict=True)])
    return ids, labels, attention
