"""Compare: deterministic generation, the measures on crafted texts, votes and win rates (the widget: test_widgets)."""

from __future__ import annotations

import json
import math

import pytest

from brandkit.compare import (StyleScorer, VoteStore, blind_sides, bradley_terry, cohen_kappa, eval_items,
                             generate, generic_texts, heldout_perplexity, load_generations, load_tuned,
                             rater_agreement, stylometrics, votes_by_prompt, wilson_interval, win_rate)
from brandkit.config import BrandKit, CompareConfig, EvalPrompt

BRAND = BrandKit(name="Ember", slug="ember", preferred_terms=["small-batch", "cuppa"],
                 banned_terms=["cheap", "synergy"], sign_off="Stay warm, the Ember crew")


@pytest.fixture(scope="module")
def tuned(small_run):
    return load_tuned(small_run.path("train", "adapter"))


@pytest.fixture(scope="module")
def items(small_run):
    from brandkit.examples import load_examples

    examples = load_examples(small_run.path("examples"))
    return eval_items(small_run.brand, examples["heldout"], max_heldout=3)[:6]


def test_eval_items_use_the_kit_prompts_then_heldout(small_run, items):
    kit = [i for i in items if i.source == "brand_kit"]
    assert kit and kit[0].prompt == small_run.brand.eval_prompts[0].prompt
    assert all(i.messages[-1]["role"] == "user" for i in items)


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


def test_several_samples_per_prompt(tuned, items):
    model, tok = tuned
    out = generate(model, tok, items[:2], CompareConfig(max_new_tokens=12, samples_per_prompt=3),
                   adapter=True, progress=False)
    assert [len(o) for o in out] == [3, 3]


def test_heldout_perplexity_is_finite(tuned, small_run):
    from brandkit.examples import load_examples

    model, tok = tuned
    heldout = load_examples(small_run.path("examples"))["heldout"]
    base = heldout_perplexity(model, tok, heldout, adapter=False)
    tuned_ppl = heldout_perplexity(model, tok, heldout, adapter=True)
    assert math.isfinite(base) and math.isfinite(tuned_ppl) and base != tuned_ppl


def test_stylometrics_on_crafted_texts():
    warm = "Hi friend! Our small-batch cuppa is back! ☕🔥 You will love it. Stay warm, the Ember crew"
    flat = "The product is available. It is cheap. Synergy is achieved. The product is available."
    w, f = stylometrics(warm, BRAND), stylometrics(flat, BRAND)
    assert w["exclamations_per_sentence"] > 0 and f["exclamations_per_sentence"] == 0
    assert w["emoji_per_100"] > 0 and f["emoji_per_100"] == 0
    assert w["you_per_100"] > 0 and w["we_per_100"] > 0 and f["you_per_100"] == 0
    assert w["preferred_terms_per_100"] > 0 and w["banned_terms"] == 0 and f["banned_terms"] == 2
    assert w["sign_off"] == 1 and f["sign_off"] == 0
    assert f["words_per_sentence"] == pytest.approx(14 / 4)


def test_style_scorer_prefers_the_brand():
    brand = [f"Hi friend! Our small-batch cuppa number {i} is fresh off the roaster ☕ Stay warm!" for i in range(20)]
    scorer = StyleScorer(brand, generic_texts(200))
    on, off = scorer.score(["Hi friend! Our new small-batch cuppa is fresh off the roaster ☕ Stay warm!",
                            "Please note that our office will be closed on Monday for maintenance."])
    assert on > 0.5 > off


def test_style_score_does_not_reward_the_brands_words_in_nonsense_order(ember_examples):
    """Held-out brand texts score high; the same texts with their words shuffled score well below."""
    from statistics import median

    from brandkit.compare import shuffle_words

    train = [ex["messages"][-1]["content"] for ex in ember_examples["train"]]
    held = [ex["messages"][-1]["content"] for split in ("validation", "heldout") for ex in ember_examples[split]]
    scorer = StyleScorer(train, generic_texts())
    real, shuffled = scorer.score(held), scorer.score([shuffle_words(t, 99) for t in held])
    assert median(real) > 0.8 and median(shuffled) < 0.3 and median(shuffled) < median(real) / 3
    assert sum(r > s for r, s in zip(real, shuffled, strict=True)) >= 0.9 * len(held)


def test_wilson_interval_matches_the_hand_computed_values():
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def vote(winner, a="base", b="tuned", rater="ann", item="i1", sample=0):
    choice = "A" if winner == a else "B" if winner == b else winner
    return {"A": a, "B": b, "winner": winner, "choice": choice, "rater": rater, "item_id": item, "sample": sample}


def test_win_rate_counts_ties_half():
    votes = [vote("tuned", item=f"t{i}") for i in range(6)] + [vote("base", item=f"b{i}") for i in range(2)] + \
            [vote("tie", item="x1"), vote("both_bad", item="x2")]
    rate = win_rate(votes)
    assert rate.rate == pytest.approx(0.7) and (rate.wins, rate.losses, rate.ties, rate.both_bad) == (6, 2, 1, 1)
    assert (round(rate.low, 4), round(rate.high, 4)) == (0.3968, 0.8922)
    table = votes_by_prompt(votes)
    assert table["votes"].sum() == 10


def test_rater_agreement_and_kappa():
    votes = [vote("tuned", rater="ann", item="1"), vote("tuned", rater="bob", item="1"),
             vote("base", rater="ann", item="2"), vote("tuned", rater="bob", item="2"),
             vote("tuned", rater="ann", item="3"), vote("tuned", rater="bob", item="3"),
             vote("base", rater="ann", item="4"), vote("base", rater="bob", item="4")]
    result = rater_agreement(votes)
    assert result["pairs"][0]["agreement"] == pytest.approx(0.75)
    # ann: tuned 2/4, bob: tuned 3/4 -> expected agreement 0.5*0.75 + 0.5*0.25 = 0.5, kappa = (0.75-0.5)/0.5
    assert result["pairs"][0]["kappa"] == pytest.approx(0.5)
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)


def test_bradley_terry_ranks_three_models():
    votes = ([vote("tuned", "base", "tuned")] * 8 + [vote("base", "base", "tuned")] * 2 +
             [vote("v2", "tuned", "v2")] * 7 + [vote("tuned", "tuned", "v2")] * 3 +
             [vote("v2", "base", "v2")] * 9 + [vote("base", "base", "v2")] * 1)
    ranking = bradley_terry(votes)
    assert [m for m, _ in ranking] == ["v2", "tuned", "base"]
    assert sum(score for _, score in ranking) == pytest.approx(3000)


def test_blind_sides_are_random_but_stable():
    sides = {blind_sides(f"item{i}", 0, "ann") for i in range(20)}
    assert sides == {("base", "tuned"), ("tuned", "base")}
    assert blind_sides("item1", 0, "ann") == blind_sides("item1", 0, "ann")


def test_votes_are_appended_and_survive_a_torn_line(tmp_path):
    store = VoteStore(tmp_path / "votes.jsonl")
    store.add("ann", "i1", 0, "A", ("tuned", "base"), "warmer")
    with open(tmp_path / "votes.jsonl", "a") as handle:
        handle.write('{"rater": "ann", "item_')  # a crash in the middle of a write
    store.add("ann", "i2", 0, "tie", ("base", "tuned"))
    votes = store.votes()
    assert [v["winner"] for v in votes] == ["tuned", "tie"] and votes[0]["reason"] == "warmer"
    assert store.voted("ann") == {("i1", 0), ("i2", 0)}


def test_generations_cached_in_the_run_folder(small_run):
    rows = load_generations(small_run.path("compare", "generations.jsonl"))
    assert {g.model for g in rows} == {"base", "tuned"}
    metrics = json.loads(small_run.path("compare", "metrics.json").read_text())
    assert set(metrics["perplexity"]) == {"base", "tuned"}
    assert 0 <= metrics["style_score"]["tuned"] <= 1
    assert {row["measure"] for row in metrics["style"]} >= {"style_score", "emoji_per_100", "sign_off"}
    assert metrics["cached"] is False
    assert small_run.compare()["metrics"]["cached"] is True


def test_eval_prompt_reference_kept():
    brand = BrandKit(name="X", slug="x", eval_prompts=[EvalPrompt("email", "Write it.", "Our answer.")])
    [item] = eval_items(brand)
    assert item.reference == "Our answer." and item.messages == [{"role": "user", "content": "Write it."}]
