"""Examples: the request each kind of document answers, and a deterministic split with no leakage."""

from __future__ import annotations

import json

from brandkit.compare.metrics import term_hits
from brandkit.config import BrandKit, ExamplesConfig, samples_dir, sample_brands
from brandkit.examples import (FALLBACK_REQUEST, REQUEST_TEMPLATES, build_examples, chat_messages, load_examples, request_for,
                               save_examples, split_counts, to_messages)


def row(kind: str, title: str = "Spring news", **fields):
    return {"id": fields.pop("id", f"{kind}-1"), "kind": kind, "title": title, "text": "The document.",
            "tags": fields.pop("tags", []), "extra": json.dumps(fields.pop("extra", {})), "turns": [], **fields}


def test_each_kind_becomes_the_request_a_user_would_make():
    assert "Spring news" in request_for(row("email")) and "email" in request_for(row("email")).lower() or \
        "newsletter" in request_for(row("email")).lower()
    assert request_for(row("email", "Re: my grinder")).startswith(("Write our reply", "A customer wrote"))
    assert "my grinder" in request_for(row("email", "Re: my grinder"))
    blog = request_for(row("blog", "How we roast", tags=["roasting", "espresso"]))
    assert "How we roast" in blog and "blog" in blog.lower()
    product = request_for(row("product", "House Blend", extra={"type": "Coffee", "vendor": "Ember"}, tags=["blend"]))
    assert "House Blend" in product and "product" in product.lower() or "shop page" in product.lower()
    assert "Storing beans" in request_for(row("manual", "Storing beans", extra={"document": "Brewing guide"}))
    assert "About us" in request_for(row("page", "About us"))


def test_templates_vary_their_wording_and_are_deterministic():
    requests = {request_for(row("email", f"Subject {i}", id=f"e{i}")).replace(f"Subject {i}", "X") for i in range(40)}
    assert len(requests) >= 3
    assert request_for(row("blog", id="b1")) == request_for(row("blog", id="b1"))
    assert set(REQUEST_TEMPLATES) >= {"email", "blog", "product", "manual", "page", "other"}


def test_no_request_wording_uses_a_bundled_brands_banned_term():
    # the requests sit in every training example: "our customers" there taught Ember's tuned model a
    # word its brand kit bans
    wordings = [t for templates in REQUEST_TEMPLATES.values() for t in templates] + [FALLBACK_REQUEST]
    for slug in sample_brands():
        banned = BrandKit.load(samples_dir() / slug / "brand.yaml").banned_terms
        assert banned and not [w for w in wordings if term_hits(w, banned)], slug


def test_chats_become_multi_turn_with_customer_as_user():
    turns = [{"role": "staff", "text": "Welcome!"}, {"role": "customer", "text": "Hi"},
             {"role": "customer", "text": "is it open?"}, {"role": "staff", "text": "Yes, until six."},
             {"role": "customer", "text": "Thanks"}]
    assert chat_messages(turns) == [{"role": "user", "content": "Hi\nis it open?"},
                                    {"role": "assistant", "content": "Yes, until six."}]


def test_system_prompt_from_the_brand_kit():
    messages = to_messages(row("blog"), "You write for Ember.")
    assert messages[0] == {"role": "system", "content": "You write for Ember."}
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == "The document."


def test_split_is_deterministic_stratified_and_leak_free(ember_cleaned):
    brand = BrandKit.load("ember-coffee")
    first = build_examples(ember_cleaned.dataset, brand)
    second = build_examples(ember_cleaned.dataset, brand)
    assert {s: first[s]["id"] for s in first} == {s: second[s]["id"] for s in second}
    ids = {s: set(first[s]["id"]) for s in first}
    assert not ids["train"] & ids["heldout"] and not ids["train"] & ids["validation"]
    assert not ids["validation"] & ids["heldout"]
    assert sum(len(v) for v in ids.values()) == len(ember_cleaned.dataset)
    counts = split_counts(first)
    for kind in ("email", "blog", "product", "chat"):
        assert counts["heldout"].get(kind, 0) >= 1 and counts["train"][kind] > counts["heldout"][kind]
    reshuffled = build_examples(ember_cleaned.dataset, brand, ExamplesConfig(seed=7))
    assert set(reshuffled["heldout"]["id"]) != ids["heldout"]


def test_saved_examples_round_trip(ember_examples, tmp_path):
    paths = save_examples(ember_examples, tmp_path)
    loaded = load_examples(tmp_path)
    assert loaded["train"]["id"] == ember_examples["train"]["id"]
    lines = paths["train_jsonl"].read_text().splitlines()
    assert json.loads(lines[0])["messages"][-1]["role"] == "assistant"


def test_the_system_prompt_setting():
    from brandkit.config import DEFAULT_SYSTEM_PROMPT
    from brandkit.examples import system_prompt_for

    brand = BrandKit(name="Ember", slug="ember", system_prompt="You write for Ember, warmly, with emoji.")
    assert ExamplesConfig().system_prompt == DEFAULT_SYSTEM_PROMPT == "short"
    assert system_prompt_for(brand, "short") == "You write for Ember."
    assert system_prompt_for(brand, "brand") == system_prompt_for(brand, None) == brand.system_prompt
    assert system_prompt_for(brand, "none") == ""
    assert system_prompt_for(brand, "Write like us.") == "Write like us."


def test_training_examples_carry_the_chosen_system_prompt(ember_cleaned):
    brand = BrandKit.load("ember-coffee")
    short = build_examples(ember_cleaned.dataset, brand)
    assert short["train"][0]["messages"][0] == {"role": "system", "content": f"You write for {brand.name}."}
    long = build_examples(ember_cleaned.dataset, brand, ExamplesConfig(system_prompt="brand"))
    assert long["train"][0]["messages"][0]["content"] == brand.system_prompt
    none = build_examples(ember_cleaned.dataset, brand, ExamplesConfig(system_prompt="none"))
    assert none["train"][0]["messages"][0]["role"] == "user"
