"""Compare contenders: the simple prompt is training's, the prompted one fits the context and holds no held-out text."""

from __future__ import annotations

import re

import pytest

from brandkit.compare import (CONTENDERS, PromptBuilder, brand_guide, context_budget, eval_items, load_tuned,
                              prompt_builder, training_system_prompt)
from brandkit.config import CompareConfig


@pytest.fixture(scope="module")
def setting(small_run):
    from brandkit.examples import load_examples

    examples = load_examples(small_run.path("examples"))
    model, tokenizer = load_tuned(small_run.path("train", "adapter"))
    items = eval_items(small_run.brand, examples["heldout"], system_prompt="", max_heldout=50)
    return examples, model, tokenizer, items


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) >= 30]


def test_simple_prompt_is_the_one_training_used(small_run, setting, tiny_context):
    examples, model, tokenizer, items = setting
    builder = prompt_builder(model, tokenizer, small_run.brand, examples, tiny_context)
    assert builder.simple_system == training_system_prompt(examples) == f"You write for {small_run.brand.name}."
    generic, tuned = builder.items_for("generic", items), builder.items_for("tuned", items)
    assert [i.messages for i in generic] == [i.messages for i in tuned]
    assert generic[0].messages[0] == {"role": "system", "content": builder.simple_system}
    assert generic[0].messages[1:] == items[0].request


@pytest.mark.parametrize("budget", [None, 800])
def test_the_prompted_prompt_fits_the_context_and_holds_no_heldout_text(small_run, setting, budget):
    examples, model, tokenizer, items = setting
    config = CompareConfig(max_prompt_tokens=budget)
    builder = prompt_builder(model, tokenizer, small_run.brand, examples, config)
    context = model.config.max_position_embeddings
    assert builder.budget == min(budget or context, context - config.max_new_tokens)
    heldout = [s for ex in examples["heldout"] for m in ex["messages"] if m["role"] != "system"
               for s in sentences(m["content"])]
    train_texts = {m["content"] for ex in examples["train"] for m in ex["messages"]}
    kind_of = {m["content"]: ex["kind"] for ex in examples["train"] for m in ex["messages"] if m["role"] == "assistant"}
    assert heldout and items
    shots_seen = 0
    for original, item in zip(items, builder.items_for("prompted", items), strict=True):
        assert builder.length(item.messages) <= builder.budget  # room left for the answer
        assert builder.length(item.messages) + config.max_new_tokens <= context
        system, *rest = item.messages
        assert system["role"] == "system"
        if budget is None:
            assert small_run.brand.sign_off in system["content"]
        shots = rest[:len(rest) - len(original.request)]
        assert rest[len(shots):] == original.request  # the request itself, as every contender gets it
        shots_seen += bool(shots)
        added = system["content"] + "\n".join(m["content"] for m in shots)
        assert not [s for s in heldout if s in added], item.id  # nothing held out, not one sentence
        assert all(m["content"] in train_texts for m in shots)  # every example is one of the brand's training texts
        assert {kind_of[m["content"]] for m in shots if m["role"] == "assistant"} <= {item.kind}  # same kind
    assert shots_seen, "no prompt had room for a single example"


def test_the_prompted_prompt_uses_the_brand_kit(small_run, setting, tiny_context):
    examples, model, tokenizer, items = setting
    builder = prompt_builder(model, tokenizer, small_run.brand, examples, tiny_context)
    guide = brand_guide(small_run.brand)
    for term in (*small_run.brand.preferred_terms[:3], *small_run.brand.banned_terms[:3], small_run.brand.sign_off):
        assert term in guide
    email = next(i for i in items if i.kind == "email")
    messages = builder.prompted(email.request, email.kind)
    assert messages[0]["content"] == guide and len(messages) > 1 + len(email.request)
    assert builder.length(messages) > builder.length(builder.simple(email.request))


def test_a_tiny_budget_cuts_the_guide_and_still_fits(small_run, setting):
    examples, model, tokenizer, items = setting
    builder = PromptBuilder(small_run.brand, tokenizer, "", list(examples["train"]), budget=10_000)
    short = min(items, key=lambda i: builder.length(i.request))
    budget = builder.length(short.request) + 25  # room for the request and a scrap of the guide
    assert builder.length(builder.prompted(short.request, short.kind)) > budget
    builder.budget = budget
    messages = builder.prompted(short.request, short.kind)
    assert builder.length(messages) <= budget and messages[1:] == short.request
    assert messages[0]["content"] and builder.guide.startswith(messages[0]["content"].strip()[:10])


def test_context_budget_leaves_room_for_the_answer(setting):
    _, model, tokenizer, _ = setting
    assert context_budget(model, tokenizer, 100) == model.config.max_position_embeddings - 100
    assert context_budget(model, tokenizer, 100, cap=50) == 50
    assert CONTENDERS == ("generic", "prompted", "tuned")


def test_a_short_evaluation_still_asks_for_every_kind_of_text():
    from brandkit.config import BrandKit

    brand = BrandKit.load("ember-coffee")
    kinds = {p.kind for p in brand.eval_prompts}
    every = eval_items(brand, max_heldout=0)
    short = eval_items(brand, max_heldout=0, max_kit_prompts=len(kinds))
    assert len(every) == len(brand.eval_prompts) > len(short) == len(kinds)
    assert {i.kind for i in short} == kinds
    assert [i.id for i in short] == sorted(i.id for i in short)  # the kit's own order kept
    assert [i.id for i in eval_items(brand, max_heldout=0, max_kit_prompts=len(kinds) + 1)][:1] == [every[0].id]
    assert eval_items(brand, max_heldout=0, max_kit_prompts=0) == []
