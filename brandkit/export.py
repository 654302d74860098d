"""Export a trained adapter: a merged 16-bit model, GGUF (through Unsloth on a GPU), an Ollama Modelfile.

The adapter folder that `brandkit.train` writes is already the main product (small, loads on top of
the base model). These turn it into what other tools run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import BrandKit, BrandkitError


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float16") -> Path:
    """The base model with the adapter folded in, saved in 16 bits with its tokenizer (no PEFT needed to run it)."""
    import torch

    from .models import load_tuned

    out = Path(out_dir)
    model, tokenizer = load_tuned(adapter_dir, dtype="float32")
    merged = model.merge_and_unload()
    merged = merged.to({"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype])
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out


def gguf_kwargs(quantization: str) -> dict[str, Any]:
    """Keywords for Unsloth's save_pretrained_gguf (checked against the installed signature in tests)."""
    return {"quantization_method": quantization}


def export_gguf(adapter_dir: str | Path, out_dir: str | Path, quantization: str = "q4_k_m") -> Path:
    """A GGUF file for llama.cpp and Ollama, through Unsloth (needs a CUDA GPU and a network to build llama.cpp)."""
    from .hardware import detect_hardware

    hardware = detect_hardware()
    if hardware.device != "cuda" or not hardware.unsloth:
        raise BrandkitError(
            "GGUF export runs through Unsloth on a CUDA GPU (it builds llama.cpp, which also needs a network). "
            f"This machine has {hardware.describe()}. Use merge_adapter() here and convert the merged folder "
            "with llama.cpp's convert_hf_to_gguf.py, or run the 05_export notebook on Colab.")
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(str(adapter_dir), load_in_4bit=False)
    out = Path(out_dir)
    model.save_pretrained_gguf(str(out), tokenizer, **gguf_kwargs(quantization))
    return out


# Go templates for Ollama, keyed by the chat format a tokenizer's template produces.
OLLAMA_TEMPLATES = {
    "chatml": ('{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
               '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
               '<|im_start|>assistant\n'),
    "llama3": ('{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}'
               '{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
               '{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n'),
    "gemma": ('{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
              '{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n'),
}
FORMAT_MARKERS = {"chatml": "<|im_start|>", "llama3": "<|start_header_id|>", "gemma": "<start_of_turn>"}


def chat_format(tokenizer) -> str:
    probe = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                          add_generation_prompt=True)
    for name, marker in FORMAT_MARKERS.items():
        if marker in probe:
            return name
    raise BrandkitError("this model's chat template is not one the Modelfile writer knows (ChatML, Llama 3, "
                        "Gemma); write the TEMPLATE by hand from tokenizer.chat_template")


def ollama_modelfile(model_dir: str | Path, gguf_name: str, brand: BrandKit | None = None,
                     temperature: float = 0.7) -> str:
    """An Ollama Modelfile with the model's own chat template and every end-of-turn token as a stop."""
    from .chat import end_of_turn_ids
    from .models import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    form = chat_format(tokenizer)
    stops = sorted({tokenizer.convert_ids_to_tokens(i) for i in end_of_turn_ids(tokenizer)}
                   | {FORMAT_MARKERS[form]})
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{OLLAMA_TEMPLATES[form]}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines.append(f"PARAMETER temperature {temperature}")
    if brand and brand.system_prompt:
        lines.append('SYSTEM """' + brand.system_prompt.replace('"""', "'''") + '"""')
    return "\n".join(lines) + "\n"


def write_modelfile(model_dir: str | Path, out_path: str | Path, gguf_name: str = "model.gguf",
                    brand: BrandKit | None = None) -> Path:
    path = Path(out_path)
    path.write_text(ollama_modelfile(model_dir, gguf_name, brand), encoding="utf-8")
    return path
