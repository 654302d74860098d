"""Export: Ollama's Modelfile, the merged model, and GGUF's clear refusal on a CPU."""

from __future__ import annotations

import json

import pytest
import torch

from brandkit.config import BrandkitError


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

    from brandkit.export import merge_adapter
    from brandkit.models import load_tuned

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
