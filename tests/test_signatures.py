"""API drift: every keyword brandkit passes to trl, transformers, peft and unsloth exists in the installed versions.

GPU-only code is checked on the CPU: its keywords come from small functions, compared here with the
installed unsloth's source (read, not imported); then Unsloth's own CPU mode runs the GPU backend
for two steps in a separate process (importing unsloth patches transformers for the whole process).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brandkit.config import TrainConfig
from brandkit.hardware import Hardware
from brandkit.presets import resolve_config, sft_kwargs

CPU = Hardware("cpu", "cpu", 8.0, bf16=False, fp16=False, unsloth=False)
T4 = Hardware("cuda", "Tesla T4", 15.0, bf16=False, fp16=True, unsloth=True)
A100 = Hardware("cuda", "A100", 80.0, bf16=True, fp16=True, unsloth=True)


@pytest.mark.parametrize("hardware", [CPU, T4, A100], ids=["cpu", "t4", "gpu"])
def test_sft_config_keywords_exist_in_trl(hardware, tmp_path):
    from trl import SFTConfig

    config, _, _ = resolve_config(TrainConfig(), hardware)
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    passed = set(sft_kwargs(config, tmp_path, has_eval=True, dataset_text_field="text"))
    assert passed <= fields, passed - fields


def test_lora_and_generation_keywords_exist():
    from peft import LoraConfig
    from transformers import GenerationConfig

    lora_fields = {f.name for f in dataclasses.fields(LoraConfig)}
    assert {"r", "lora_alpha", "lora_dropout", "target_modules", "bias", "task_type",
            "trainable_token_indices"} <= lora_fields
    generation = GenerationConfig()
    for name in ("max_new_tokens", "do_sample", "temperature", "top_p", "repetition_penalty",
                 "num_return_sequences", "eos_token_id", "pad_token_id"):
        assert hasattr(generation, name), name


def test_model_loading_keywords_exist():
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, PreTrainedModel

    params = inspect.signature(PreTrainedModel.from_pretrained).parameters
    assert "dtype" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    assert {"load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_compute_dtype"} <= set(
        inspect.signature(BitsAndBytesConfig).parameters)
    assert hasattr(AutoModelForCausalLM, "from_pretrained")


def unsloth_file(relative: str) -> Path:
    names = {"unsloth": "unsloth", "unsloth_zoo": "unsloth_zoo"}
    package = relative.split("/")[0]
    spec = importlib.util.find_spec(names[package])  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"{package} is not installed: `make test` installs it (without its GPU dependencies)")
    return Path(list(spec.submodule_search_locations)[0]).parent / relative


def parameters(path: Path, function: str, cls: str | None = None) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls] if cls else [tree]
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.FunctionDef) and node.name == function:
                args = node.args
                return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    raise AssertionError(f"{function} not found in {path}")


def test_unsloth_keywords_exist_in_installed_unsloth():
    from brandkit import export, unsloth_backend

    config, _, _ = resolve_config(TrainConfig(), T4)
    loader = parameters(unsloth_file("unsloth/models/loader.py"), "from_pretrained", "FastLanguageModel")
    assert set(unsloth_backend.from_pretrained_kwargs(config)) <= loader
    peft = parameters(unsloth_file("unsloth/models/llama.py"), "get_peft_model", "FastLlamaModel")
    assert set(unsloth_backend.peft_kwargs(config)) <= peft
    responses = parameters(unsloth_file("unsloth_zoo/dataset_utils.py"), "train_on_responses_only")
    assert {"trainer", *unsloth_backend.responses_only_kwargs()} <= responses
    gguf = parameters(unsloth_file("unsloth/save.py"), "unsloth_save_pretrained_gguf")
    assert set(export.gguf_kwargs("q4_k_m")) <= gguf
    template = parameters(unsloth_file("unsloth/chat_templates.py"), "get_chat_template")
    assert "chat_template" in template


UNSLOTH_CPU_RUN = r"""
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
import unsloth  # Unsloth's CPU fallback mode: no GPU here
from brandkit.collect import collect
from brandkit.clean import clean
from brandkit.config import BrandKit, TrainConfig
from brandkit.examples import build_examples
from brandkit import unsloth_backend
brand = BrandKit.load("ember-coffee")
examples = build_examples(clean(collect(brand.exports_dir, progress=False).to_dataset(), brand=brand).dataset, brand)
config = TrainConfig(base_model="brandkit-tiny", max_steps=2, learning_rate=2e-4, num_train_epochs=1, per_device_train_batch_size=4, gradient_accumulation_steps=1, dtype="float32",
                     load_in_4bit=False, optim="adamw_torch", gradient_checkpointing="false", max_seq_length=512, eval_steps=2, save_steps=2, logging_steps=1)
trainer, model, tokenizer = unsloth_backend.build_trainer(examples, config, __import__("pathlib").Path(sys.argv[1]), [])
labels = trainer.train_dataset[0]["labels"]
assert 0 < sum(l != -100 for l in labels) < len(labels), "responses-only masking"
result = trainer.train()
model.save_pretrained(sys.argv[1] + "/adapter")
print("UNSLOTH-CPU-OK", trainer.state.global_step, round(result.training_loss, 3))
"""


def test_unsloth_backend_runs_in_unsloths_cpu_mode(tmp_path):
    unsloth_file("unsloth/__init__.py")
    env = {**os.environ, "UNSLOTH_DISABLE_STATISTICS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", UNSLOTH_CPU_RUN, str(tmp_path)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert "UNSLOTH-CPU-OK 2" in done.stdout, (done.stdout[-2000:], done.stderr[-3000:])
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
