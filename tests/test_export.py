"""Export: the merge (from a 4-bit base too), GGUF through llama.cpp's own converter and back, Ollama's Modelfile."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from brandkit.config import BrandKit, BrandkitError


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
    tuned, tok = load_tuned(small_run.path("train", "adapter"), dtype="float32")  # as the merge is made
    ids = tok("Hello there", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=5e-2)


def test_unsloths_4bit_names_merge_onto_their_16bit_models():
    from brandkit.export import sixteen_bit_base

    assert sixteen_bit_base("unsloth/Llama-3.2-1B-Instruct-bnb-4bit") == "unsloth/Llama-3.2-1B-Instruct"
    assert sixteen_bit_base("unsloth/Qwen2.5-1.5B-Instruct-unsloth-bnb-4bit") == "unsloth/Qwen2.5-1.5B-Instruct"
    assert sixteen_bit_base("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_an_adapter_trained_on_a_4bit_base_merges_onto_the_16bit_weights(small_run, tmp_path):
    """A base saved in 4 bits (bitsandbytes' quantization_config) beside its 16-bit original, as on the Hub.

    Loading the 4-bit folder needs bitsandbytes and a GPU, and a 4-bit model refuses `.to(float16)`: the
    merge must never load it. It merges onto the 16-bit folder and gives the same model as the adapter on it.
    """
    from transformers import AutoModelForCausalLM

    from brandkit.export import merge_adapter
    from brandkit.models import load_tuned, resolve_model

    sixteen = shutil.copytree(resolve_model("brandkit-tiny"), tmp_path / "tiny-base")
    four = tmp_path / "tiny-base-bnb-4bit"
    four.mkdir()
    config = json.loads((sixteen / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                     "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "float16"}
    (four / "config.json").write_text(json.dumps(config))
    adapter = shutil.copytree(small_run.path("train", "adapter"), tmp_path / "adapter")
    saved = yaml.safe_load((adapter / "brandkit_train.yaml").read_text())
    saved["config"]["base_model"] = str(four)
    (adapter / "brandkit_train.yaml").write_text(yaml.safe_dump(saved))

    out = merge_adapter(adapter, tmp_path / "merged", dtype="float16")
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    tuned, tok = load_tuned(adapter, base_model=str(sixteen), dtype="float32")
    ids = tok("Our autumn blend is back", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=5e-2)

    shutil.rmtree(sixteen)  # no 16-bit original: say so, rather than load 4-bit weights
    with pytest.raises(BrandkitError, match="no 16-bit copy"):
        merge_adapter(adapter, tmp_path / "merged-again")


def test_k_quants_say_clearly_why_not_on_a_cpu(small_run, tmp_path):
    from brandkit.export import export_gguf

    with pytest.raises(BrandkitError, match="compiled quantizer.*q8_0"):
        export_gguf(small_run.path("train", "adapter"), tmp_path / "gguf", quantization="q4_k_m")


@pytest.fixture(scope="module")
def smollm2_export(tmp_path_factory):
    """A LoRA adapter on SmolLM2-135M (small random B matrices, so the merge changes the model), exported."""
    from peft import LoraConfig, get_peft_model

    from brandkit.export import export_all
    from brandkit.models import load_base_model, load_tokenizer
    from brandkit.config import TrainConfig

    folder = tmp_path_factory.mktemp("smollm2-export")
    tokenizer = load_tokenizer("smollm2-135m")
    base = load_base_model("smollm2-135m", TrainConfig(base_model="smollm2-135m", dtype="float32"), tokenizer)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if "lora_B" in parameter_name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    adapter = folder / "adapter"
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    (adapter / "brandkit_train.yaml").write_text(yaml.safe_dump({"config": {"base_model": "smollm2-135m"}}))
    written = export_all(adapter, folder / "export", formats=("merged", "gguf", "modelfile"), quantization="f16",
                         brand=BrandKit.load("ember-coffee"), name="ember", say=lambda _: None)
    return written


def greedy(model, ids, n: int = 12) -> list[int]:
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.slow
def test_gguf_round_trip_generates_what_the_merged_model_does(smollm2_export):
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from brandkit.models import load_base_model, load_tokenizer
    from brandkit.config import TrainConfig

    merged_dir, gguf = smollm2_export["merged"], smollm2_export["gguf"]
    assert gguf.name == "ember-f16.gguf" and gguf.stat().st_size > 200e6

    fields = GGUFReader(str(gguf)).fields
    value = {key: fields[key].contents() for key in ("general.architecture", "tokenizer.ggml.model",
                                                       "tokenizer.ggml.pre", "tokenizer.ggml.eos_token_id",
                                                       "tokenizer.chat_template")}
    # the tokenizer llama.cpp and Ollama will split text with: SmolLM2's own, not a SentencePiece guess
    assert value["general.architecture"] == "llama"
    assert (value["tokenizer.ggml.model"], value["tokenizer.ggml.pre"]) == ("gpt2", "smollm")
    merged_tok = AutoTokenizer.from_pretrained(merged_dir)
    assert value["tokenizer.ggml.eos_token_id"] == merged_tok.convert_tokens_to_ids("<|im_end|>")
    assert "<|im_start|>" in value["tokenizer.chat_template"]

    gguf_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    back = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    sample = "Café au lait, 12 bags for £49.50 🚀 — order by 3 Nov!\n\n  Thanks, Mia"
    assert gguf_tok(sample)["input_ids"] == merged_tok(sample)["input_ids"]
    prompt = merged_tok.apply_chat_template([{"role": "user", "content": "Write one line about our autumn blend."}],
                                            tokenize=False, add_generation_prompt=True)
    ids = merged_tok(prompt, return_tensors="pt")["input_ids"]
    assert gguf_tok(prompt, return_tensors="pt")["input_ids"].tolist() == ids.tolist()

    expected = greedy(merged, ids)
    assert greedy(back, ids) == expected
    base = load_base_model("smollm2-135m", TrainConfig(base_model="smollm2-135m", dtype="float32"),
                           load_tokenizer("smollm2-135m"))
    with torch.no_grad():  # the adapter is in the exported model: its logits are not the base model's
        shift = (back(input_ids=ids).logits - base(input_ids=ids).logits).abs().max().item()
    assert shift > 1e-2, "the exported model is the base model: the adapter was lost"


def test_modelfile_names_the_exported_file_with_smollm2s_chatml(smollm2_export):
    modelfile, gguf = smollm2_export["modelfile"], smollm2_export["gguf"]
    text = modelfile.read_text()
    assert text.splitlines()[0] == f"FROM ./{gguf.name}" and (modelfile.parent / gguf.name).is_file()
    assert "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>" in text
    assert 'PARAMETER stop "<|im_end|>"' in text and 'SYSTEM """You write for Ember Street' in text


def test_export_command_writes_adapter_merged_and_modelfile(small_run, tmp_path, capsys):
    from brandkit.cli import main

    out = tmp_path / "exported"
    assert main(["export", "--out", str(small_run.dir), "--to", str(out), "--formats", "adapter,merged,modelfile",
                 "--quantization", "f16", "--quiet"]) == 0
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "merged" / "config.json").exists()
    assert (out / "Modelfile").read_text().startswith("FROM ./ember-coffee-f16.gguf\n")
    assert main(["export", "--out", str(small_run.dir), "--to", str(out), "--formats", "zip"]) == 2
    assert "unknown export format" in capsys.readouterr().err
