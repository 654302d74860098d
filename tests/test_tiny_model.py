"""The offline tiny base model: small, Llama, its own chat template, loads with no network, rebuilt exactly."""

from __future__ import annotations

import json
import subprocess
import sys

from brandkit.config import REPO_DIR, TINY_MODEL_DIR
from brandkit.models import resolve_model


def test_bundled_model_loads_offline_and_is_small():
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("brandkit-tiny")
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama"
    size_mb = sum(p.stat().st_size for p in TINY_MODEL_DIR.glob("*")) / 1e6
    assert size_mb < 15
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.eos_token == "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) < 6_000_000
    card = (TINY_MODEL_DIR / "README.md").read_text()
    assert "rehearsal of the pipeline, not a quality result" in card
    log = json.loads((TINY_MODEL_DIR / "training_log.json").read_text())
    assert log["minutes"] < 30 and log["documents"] >= 200


def test_untuned_model_writes_generic_english():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Write an email about our holiday opening hours."}],
                                           tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**ids, max_new_tokens=60, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    words = text.split()
    common = {"the", "and", "to", "of", "our", "you", "your", "we", "a", "is", "for", "in", "be", "will"}
    assert len(words) > 10 and sum(w.lower().strip(".,") in common for w in words) / len(words) > 0.15


def test_pretraining_is_deterministic(tmp_path):
    script = REPO_DIR / "scripts" / "pretrain_tiny_model.py"
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, str(script), "--steps", "3", "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()
