"""Compare metrics: stylometrics on crafted texts, the style classifier and how far it is trusted."""

from __future__ import annotations

import pytest

from brandkit.compare import Generation, StyleScorer, generic_texts, measure, split_generic, stylometrics
from brandkit.config import BrandKit

BRAND = BrandKit(name="Ember", slug="ember", preferred_terms=["small-batch", "cuppa"],
                 banned_terms=["cheap", "synergy"], sign_off="Stay warm, the Ember crew")


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


def test_a_sign_off_counts_however_its_lines_are_broken():
    """Spoke & Sprocket's sign-off is one line in its brand kit and two in its emails (and its model's)."""
    spoke = BrandKit.load("spoke-sprocket")
    assert spoke.sign_off == "Keep the rubber side down! Dev & the Spoke & Sprocket crew"
    email = "The wheel is trued and ready.\n\nKeep the rubber side down!\nDev & the Spoke & Sprocket crew"
    assert stylometrics(email, spoke)["sign_off"] == 1
    assert stylometrics("Keep the\nrubber side down, friends", spoke)["sign_off"] == 1
    assert stylometrics("Keep the rubber on the road.", spoke)["sign_off"] == 0
    ledger = BrandKit.load("ledgerline")
    assert stylometrics("Thank you.\n\nKind regards,\nThe Ledgerline team", ledger)["sign_off"] == 1


def test_style_scorer_prefers_the_brand():
    brand = [f"Hi friend! Our small-batch cuppa number {i} is fresh off the roaster ☕ Stay warm!" for i in range(20)]
    scorer = StyleScorer(brand, generic_texts(200))
    on, off = scorer.score(["Hi friend! Our new small-batch cuppa is fresh off the roaster ☕ Stay warm!",
                            "Please note that our office will be closed on Monday for maintenance."])
    assert on > 0.5 > off


def test_generic_pool_split_is_stable_and_disjoint():
    pool = generic_texts()
    train, held = split_generic(pool)
    assert train and held and not set(train) & set(held) and len(train) + len(held) == len(pool)
    assert split_generic(pool) == (train, held)


def test_the_reference_comes_from_heldout_texts_and_accuracy_from_unseen_ones():
    """The brand's reference is scored on held-out texts, never on the classifier's own training texts."""
    train = [f"Hi friend! Our small-batch cuppa number {i} is fresh off the roaster ☕ Stay warm!" for i in range(30)]
    heldout = ["Hi friend! Our new small-batch cuppa is fresh off the roaster ☕ Stay warm!",
               "Hi friend! Our autumn small-batch cuppa is fresh off the roaster ☕ Stay warm, friends!",
               "Please find attached the quarterly invoice for your records."]  # one held-out text off-voice
    generations = [Generation("i1", "email", "kit", "p", "", "tuned", 0, "Hi friend! A cuppa ☕")]
    per_generation, reference, classifier = measure(generations, BRAND, train, heldout_brand_texts=heldout)
    assert len(reference) == len(heldout)  # three held-out rows, not thirty training rows
    scorer = StyleScorer(train, split_generic(generic_texts())[0])
    assert reference["style_score"].tolist() == pytest.approx(scorer.score(heldout))
    assert classifier["heldout_brand_texts"] == 3 and classifier["heldout_other_texts"] > 20
    assert classifier["brand_recall"] == pytest.approx(2 / 3)  # the invoice is missed, and it shows
    assert classifier["reference_from"] == "heldout"
    assert 0 < classifier["heldout_accuracy"] < 1


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
