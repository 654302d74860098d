"""Compare: deterministic and streamed generation, perplexity, the stage's outputs and verdict (the widget: test_widgets)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from brandkit.compare import (eval_items, generate, heldout_perplexity,  # noqa
                              load_generations, load_tuned, stream, verdict_sentence)
from brandkit.config import BrandKit, CompareConfig, EvalPrompt


@pytest.fixture(scope="module")
def tuned(small_run):
    # fp32 wherever the tests run: batching and a shared prompt start leave every answer the same only
    # where the sums are exact enough; in bf16 (what a CPU with fast bf16 generates in) each batch shape
    # rounds a little differently, and the tiny model's greedy choices can flip
    return load_tuned(small_run.path("train", "adapter"), dtype="float32")


@pytest.fixture(scope="module")
def items(small_run):
    from brandkit.examples import load_examples

    examples = load_examples(small_run.path("examples"))
    return eval_items(small_run.brand, examples["heldout"], max_heldout=3)[:6]


def test_eval_items_use_the_kit_prompts_then_heldout(small_run, items):
    kit = [i for i in items if i.source == "brand_kit"]
    assert kit and kit[0].prompt == small_run.brand.eval_prompts[0].prompt
    assert all(i.messages[-1]["role"] == "user" for i in items)
    assert all(m["role"] != "system" for i in items for m in i.request)


def test_generation_is_deterministic_for_a_seed(tuned, items):
    model, tok = tuned
    config = CompareConfig(max_new_tokens=20, batch_size=4)
    first = generate(model, tok, items, config, adapter=True, progress=False)
    again = generate(model, tok, items, config, adapter=True, progress=False)
    assert first == again
    other_seed = generate(model, tok, items, CompareConfig(max_new_tokens=20, batch_size=4, seed=99),
                          adapter=True, progress=False)
    assert other_seed != first


def test_batched_left_padded_generation_matches_one_by_one(tuned, items):
    model, tok = tuned
    greedy = CompareConfig(max_new_tokens=16, do_sample=False, repetition_penalty=1.0)
    batched = generate(model, tok, items, greedy, adapter=True, batch_size=len(items), progress=False)
    single = generate(model, tok, items, greedy, adapter=True, batch_size=1, progress=False)
    assert batched == single
    base = generate(model, tok, items, greedy, adapter=False, batch_size=len(items), progress=False)
    assert base != batched  # the adapter switched off gives the base model's answers


def test_answers_come_back_in_the_items_order_though_batched_by_prompt_length(tuned, items):
    model, tok = tuned
    greedy = CompareConfig(max_new_tokens=12, do_sample=False, repetition_penalty=1.0)
    # reversed, so that the batches (by prompt length) mix the list's order
    mixed = list(reversed(items))
    assert len({len(i.prompt) for i in mixed}) > 1
    in_pairs = generate(model, tok, mixed, greedy, adapter=True, batch_size=2, progress=False)
    alone = [generate(model, tok, [item], greedy, adapter=True, batch_size=1, progress=False)[0] for item in mixed]
    assert in_pairs == alone


def test_streaming_gives_the_same_answer_as_generate_piece_by_piece(tuned, items):
    """The playground's streamer yields pieces as they come; joined, they are generate's greedy answer."""
    model, tok = tuned
    greedy = CompareConfig(max_new_tokens=24, do_sample=False, repetition_penalty=1.0)
    for adapter in (True, False):
        pieces = list(stream(model, tok, items[0].messages, adapter, greedy))
        assert len(pieces) > 1
        assert "".join(pieces).strip() == generate(model, tok, items[:1], greedy, adapter=adapter, progress=False)[0][0].text
    assert model.active_adapter  # the adapter is back on after a stream with it switched off


def test_fp32_generation_writes_into_the_growing_cache_and_answers_the_same(tuned, items, monkeypatch):
    """In fp32 on a CPU, compare's plain batches decode into brandkit's growing cache, and batches
    with a shared start into its shared-prefix cache (the start kept once); with transformers' own
    DynamicCache and every prompt read whole the answers are the same."""
    from brandkit import models

    model, tok = tuned
    greedy = CompareConfig(max_new_tokens=12, do_sample=False, repetition_penalty=1.0)
    made = []
    for name in ("growing_cache", "shared_prefix_cache"):
        original = getattr(models, name)
        monkeypatch.setattr(models, name, lambda *args, _name=name, _original=original: made.append(
            (_name, args[0])) or _original(*args))
    guide = {"role": "user", "content": "Our guide. " * 40}  # a start the long items share
    asked = items + [dataclasses.replace(item, messages=[guide, *item.messages]) for item in items]

    plain = generate(model, tok, asked, greedy, adapter=True, progress=False, share_prefixes=False)
    assert made == [("growing_cache", 12)]  # room for the answer
    shared = generate(model, tok, asked, greedy, adapter=True, progress=False)
    assert made[1:] == [("shared_prefix_cache", 12)]  # one batch: rows with the start and rows without
    monkeypatch.setattr(models, "growing_cache", lambda room: None)  # generate's own DynamicCache
    assert generate(model, tok, asked, greedy, adapter=True, progress=False, share_prefixes=False) == plain == shared


def test_the_tuned_contender_generates_with_the_adapter_folded_in_and_the_base_weights_come_back(tuned, items,
                                                                                                 monkeypatch):
    """In fp32 on a CPU the tuned answers come from the adapter folded into copies of the weights
    (one matmul a projection): the same greedy answers as the adapter run beside the weights, and
    afterwards the base model's own weight tensors, unchanged, with no layer left merged."""
    import importlib

    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    generate_module = importlib.import_module("brandkit.compare.generate")  # the package exports the function

    model, tok = tuned
    greedy = CompareConfig(max_new_tokens=16, do_sample=False, repetition_penalty=1.0)
    weights = {name: (p, p.detach().clone()) for name, p in model.named_parameters() if "lora_" not in name}
    lora_layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    seen_merged = []
    original_generate = type(model).generate

    def spying_generate(self, *args, **kwargs):
        seen_merged.append(all(m.merged for m in lora_layers))
        return original_generate(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "generate", spying_generate)
    assert generate_module.can_fold(model)
    folded = generate(model, tok, items, greedy, adapter=True, progress=False)
    assert seen_merged and all(seen_merged)
    assert not any(m.merged for m in lora_layers)
    assert all(torch.equal(p, before) for p, before in weights.values())
    monkeypatch.setattr(generate_module, "can_fold", lambda model: False)
    seen_merged.clear()
    beside = generate(model, tok, items, greedy, adapter=True, progress=False)
    assert seen_merged and not any(seen_merged)
    assert folded == beside
    base = generate(model, tok, items, greedy, adapter=False, progress=False)
    assert base != folded


def test_several_samples_per_prompt(tuned, items):
    model, tok = tuned
    out = generate(model, tok, items[:2], CompareConfig(max_new_tokens=12, samples_per_prompt=3),
                   adapter=True, progress=False)
    assert [len(o) for o in out] == [3, 3]


def test_the_sampler_draws_from_the_distribution_transformers_warpers_give():
    """CandidateSampler draws among the top k only: the probabilities must be transformers' own
    temperature -> top-k -> top-p, token for token, peaked rows and flat ones alike."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from brandkit.compare.generate import CandidateSampler

    torch.manual_seed(0)
    scores = torch.randn(6, 5000) * torch.tensor([[0.5], [1.0], [3.0], [6.0], [12.0], [0.01]])
    ids = torch.zeros((6, 1), dtype=torch.long)
    for temperature, top_k, top_p in ((0.7, 50, 0.9), (1.3, 20, 0.5), (0.7, 50, 1.0)):
        warped = scores.clone()
        for warper in (TemperatureLogitsWarper(temperature), TopKLogitsWarper(top_k), TopPLogitsWarper(top_p)):
            warped = warper(ids, warped)
        expected = warped.softmax(dim=-1)
        tokens, probs = CandidateSampler(temperature, top_k, top_p).candidates(scores)
        ours = torch.zeros_like(scores).scatter_(-1, tokens, probs)
        assert torch.allclose(ours, expected, atol=1e-6)
        assert int((expected[0] > 0).sum()) > 1  # a real choice, not only the best token


def test_the_sampler_leaves_one_drawn_token_and_draws_by_the_seed():
    import torch

    from brandkit.compare.generate import CandidateSampler

    sampler = CandidateSampler(0.7, 50, 0.9)
    scores = torch.randn(4, 1000) * 3
    torch.manual_seed(1)
    first = sampler(None, scores)
    assert ((first == 0).sum(dim=-1) == 1).all() and (torch.isinf(first).sum(dim=-1) == 999).all()
    tokens, probs = sampler.candidates(scores)
    drawn = first.argmax(dim=-1, keepdim=True)
    assert (probs.gather(-1, (tokens == drawn).float().argmax(dim=-1, keepdim=True)) > 0).all()
    torch.manual_seed(1)
    assert torch.equal(sampler(None, scores), first)
    draws = {int(sampler(None, scores)[0].argmax()) for _ in range(50)}
    assert len(draws) > 1  # it samples, it does not always take the best token


def test_an_answer_is_finished_only_when_a_stop_token_came():
    import torch

    from brandkit.compare.generate import ended

    pad, stop = 0, 7
    rows = torch.tensor([[5, 6, stop, pad, pad], [5, 6, 8, 9, 4], [stop, pad, pad, pad, pad]])
    assert ended(rows, [stop, 9]) == [True, True, True]
    assert ended(rows, [stop]) == [True, False, True]


def test_a_batch_holds_as_many_requests_as_its_token_budget_allows():
    from brandkit.compare.generate import token_batches

    # five short prompts, then three long ones: what each row's own cache holds
    widths = [40] * 5 + [930, 935, 950]
    order = list(range(8))
    # 100 answer tokens: a short row needs 140 positions, a long one about 1,000
    batches = token_batches(order, widths, room=100, max_tokens=2100, max_rows=4)
    assert batches == [[0, 1, 2, 3], [4, 5], [6, 7]]  # 4 rows at most; the long ones two at a time
    assert sum(batches, []) == order  # every request once, in order
    for batch in batches:
        assert len(batch) == 1 or len(batch) * (max(widths[i] for i in batch) + 100) <= 2100
    # a request wider than the whole budget still gets a batch of its own; samples count as rows
    assert token_batches([0, 1], [5000, 10], room=100, max_tokens=1000, max_rows=8) == [[0], [1]]
    assert token_batches(order[:4], widths, room=100, max_tokens=600, max_rows=8, samples=2) == [[0, 1], [2, 3]]


def test_answers_cut_at_max_new_tokens_are_not_finished(tuned, items):
    model, tok = tuned
    cut = generate(model, tok, items[:4], CompareConfig(max_new_tokens=3, do_sample=False, repetition_penalty=1.0),
                   adapter=True, progress=False)
    long_enough = [a for [a] in cut if len(tok(a.text, add_special_tokens=False)["input_ids"]) >= 3]
    assert long_enough and not any(a.finished for a in long_enough)


def test_heldout_perplexity_is_finite(tuned, small_run):
    from brandkit.examples import load_examples

    model, tok = tuned
    heldout = load_examples(small_run.path("examples"))["heldout"]
    base = heldout_perplexity(model, tok, heldout, adapter=False)
    tuned_ppl = heldout_perplexity(model, tok, heldout, adapter=True)
    assert math.isfinite(base) and math.isfinite(tuned_ppl) and base != tuned_ppl


def test_three_contenders_measured_and_cached_in_the_run_folder(small_run):
    rows = load_generations(small_run.path("compare", "generations.jsonl"))
    assert {g.model for g in rows} == {"generic", "prompted", "tuned"}
    metrics = json.loads(small_run.path("compare", "metrics.json").read_text())
    assert set(metrics["perplexity"]) == {"generic", "tuned"}
    table = {r["contender"]: r for r in metrics["contenders"]}
    assert list(table) == ["generic", "prompted", "tuned"]
    assert table["prompted"]["prompt_tokens"] > table["tuned"]["prompt_tokens"] == table["generic"]["prompt_tokens"]
    assert table["prompted"]["perplexity"] is None and table["tuned"]["perplexity"] == metrics["perplexity"]["tuned"]
    assert all(0 <= r["style_score"] <= 1 for r in table.values())
    assert 0 <= metrics["classifier"]["heldout_accuracy"] <= 1 and metrics["classifier"]["reference_from"] == "heldout"
    assert {row["measure"] for row in metrics["style"]} >= {"style_score", "emoji_per_100", "sign_off"}
    assert metrics["cached"] is False
    again = small_run.compare()
    assert again["metrics"]["cached"] is True and again["metrics"]["verdict"] == metrics["verdict"]


def test_the_verdict_is_one_sentence_with_three_scores_and_prompt_lengths(small_run):
    metrics = json.loads(small_run.path("compare", "metrics.json").read_text())
    verdict = metrics["verdict"]
    assert verdict.count(". ") == 0 and verdict.endswith(").")
    for row in metrics["contenders"]:
        assert f"{row['style_score']:.2f}" in verdict and f"{row['prompt_tokens']:.0f}-token prompt" in verdict
    assert f"{metrics['classifier']['heldout_accuracy']:.0%} accurate" in verdict
    page = small_run.path("report.html").read_text()
    body = page[page.index("<body>"):]
    assert body.index("Verdict:") < body.index("<h2>")  # the report opens with it


def test_verdict_says_which_way_it_went():
    def metrics(tuned, prompted):
        rows = [{"contender": c, "style_score": s, "prompt_tokens": t} for c, s, t in
                (("generic", 0.1, 12), ("prompted", prompted, 700), ("tuned", tuned, 12))]
        return {"contenders": rows, "style_score": {"brand": 0.9}, "classifier": {"heldout_accuracy": 0.95}}

    assert verdict_sentence(metrics(0.8, 0.4)).startswith("The tuned model sounds more like the brand")
    assert verdict_sentence(metrics(0.3, 0.6)).startswith("The generic model given a hand-written brand prompt sounds more")
    assert "about as much" in verdict_sentence(metrics(0.5, 0.52))
    assert "700-token prompt" in verdict_sentence(metrics(0.8, 0.4))


def test_eval_prompt_reference_kept():
    brand = BrandKit(name="X", slug="x", eval_prompts=[EvalPrompt("email", "Write it.", "Our answer.")])
    [item] = eval_items(brand)
    assert item.reference == "Our answer." and item.messages == [{"role": "user", "content": "Write it."}]


def test_a_cut_answer_loses_the_half_emoji_it_ends_on():
    from brandkit.compare.generate import answer_text

    assert answer_text(" Stay warm! \ufffd") == "Stay warm!"
    assert answer_text("Stay warm ☕\n") == "Stay warm ☕"
    assert answer_text("a \ufffd inside stays") == "a \ufffd inside stays"  # only the cut at the end is repaired


def test_a_shared_prompt_start_is_read_once_and_the_answers_do_not_change(small_run, tuned, tiny_context):
    from brandkit.compare import prompt_builder
    from brandkit.chat import end_of_turn_ids
    from brandkit.compare.generate import shared_prefixes
    from brandkit.examples import load_examples

    model, tok = tuned
    examples = load_examples(small_run.path("examples"))
    every = eval_items(small_run.brand, examples["heldout"], max_heldout=2)
    items = [every[0], every[1], every[-1], every[-2]]  # two emails from the kit and two held-out requests
    builder = prompt_builder(model, tok, small_run.brand, examples, tiny_context)
    prompted = builder.items_for("prompted", items)
    rows = [tok(tok.apply_chat_template(i.messages, tokenize=False, add_generation_prompt=True),
                add_special_tokens=False)["input_ids"] for i in prompted]
    cuts = shared_prefixes(rows, set(end_of_turn_ids(tok)))
    assert cuts[0] == cuts[1] > 100 and rows[0][:cuts[0]] == rows[1][:cuts[1]]  # guide and examples, to a turn's end
    assert all(c < len(r) for c, r in zip(cuts, rows))
    assert shared_prefixes([[1, 2, 3], [4, 5, 6]], {3}) == [0, 0]
    greedy = CompareConfig(max_new_tokens=12, do_sample=False, repetition_penalty=1.0)
    shared = generate(model, tok, prompted, greedy, adapter=False, batch_size=4, progress=False)
    whole = generate(model, tok, prompted, greedy, adapter=False, batch_size=4, progress=False, share_prefixes=False)
    one_by_one = generate(model, tok, prompted, greedy, adapter=False, batch_size=1, progress=False,
                          share_prefixes=False)
    assert shared == whole == one_by_one
