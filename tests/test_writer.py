"""brandkit.write: one call to write with a run's tuned model, as the tuned contender writes in compare."""

from __future__ import annotations

import pytest

import brandkit
from brandkit import writer
from brandkit.config import BrandkitError, CompareConfig


def test_write_is_the_tuned_contender_with_the_trained_system_prompt(small_run, monkeypatch):
    from brandkit.compare import EvalItem, generate
    from brandkit.models import load_tuned

    loads = []
    monkeypatch.setattr(writer, "_LOADED", {})
    monkeypatch.setattr("brandkit.models.load_tuned", lambda path: loads.append(path) or load_tuned(path))
    request = "Write a short email announcing our new autumn blend."
    text = brandkit.write(request, run_dir=small_run.dir, max_new_tokens=12, temperature=0)
    assert isinstance(text, str) and text.strip()
    assert brandkit.write(request, run_dir=small_run.dir, max_new_tokens=12, temperature=0) == text
    assert len(loads) == 1  # loaded once, then reused
    system = writer.trained_system_prompt(small_run.path("train", "adapter"))
    assert system == "You write for Ember Street Coffee Roasters."
    model, tokenizer = writer.tuned_model(small_run.dir)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": request}]
    [[expected]] = generate(model, tokenizer, [EvalItem("x", "email", "me", messages)],
                            CompareConfig(max_new_tokens=12, do_sample=False), adapter=True, progress=False)
    assert text == expected.text


def test_sampling_is_seeded_and_the_adapter_folder_works_too(small_run):
    adapter = small_run.path("train", "adapter")
    first = writer.write("Write a product description for a mug.", run_dir=adapter, max_new_tokens=10, seed=1)
    assert writer.write("Write a product description for a mug.", run_dir=adapter, max_new_tokens=10, seed=1) == first


def test_write_says_what_is_missing(tmp_path):
    with pytest.raises(BrandkitError, match="no trained adapter"):
        writer.write("Write an email.", run_dir=tmp_path)
    with pytest.raises(BrandkitError, match="needs a request"):
        writer.write("  ", run_dir=tmp_path)
