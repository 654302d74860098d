"""Models: where a named base model comes from, and loading it and its tokenizer in the configured precision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import TINY_MODEL_DIR, TINY_MODEL_ID, BrandkitError, TrainConfig
from .hardware import detect_hardware, world_size


def resolve_model(name_or_path: str) -> str:
    """The offline tiny model's folder for "brandkit-tiny"; anything else is passed through."""
    if name_or_path == TINY_MODEL_ID:
        if not (TINY_MODEL_DIR / "config.json").exists():
            raise BrandkitError(
                f"the offline tiny model is missing from {TINY_MODEL_DIR}; "
                "rebuild it with: python scripts/pretrain_tiny_model.py")
        return str(TINY_MODEL_DIR)
    return name_or_path


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    except OSError as exc:
        raise BrandkitError(f"cannot load tokenizer {name_or_path!r}: {str(exc).splitlines()[0]} "
                            "(a hub model needs a network, or a local folder)") from None


def load_base_model(name_or_path: str, config: TrainConfig, tokenizer=None):
    """The base model in the configured precision, its embeddings grown to fit added tokens."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(config.dtype if config.dtype != "auto" else "float32")}
    if config.load_in_4bit is True:  # "auto" (unresolved) loads in full precision
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"])
        if world_size() > 1:  # each process's 4-bit weights on its own GPU, not all on GPU 0
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    try:
        model = AutoModelForCausalLM.from_pretrained(resolve_model(name_or_path), **kwargs)
    except OSError as exc:
        raise BrandkitError(f"cannot load model {name_or_path!r}: {str(exc).splitlines()[0]} "
                            "(a hub model needs a network, or a local folder)") from None
    if tokenizer is not None and len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if tokenizer is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load_tuned(adapter_dir: str | Path, base_model: str | None = None, dtype: str | None = None):
    """The base model with the adapter attached (PeftModel), and the adapter's tokenizer."""
    import yaml
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    saved = yaml.safe_load((adapter_dir / "brandkit_train.yaml").read_text()) if (
        adapter_dir / "brandkit_train.yaml").exists() else {"config": {}}
    config = TrainConfig(**{**saved.get("config", {}), "load_in_4bit": False})
    if base_model:
        config.base_model = base_model
    hardware = detect_hardware()
    config.dtype = dtype or ("bfloat16" if hardware.bf16 and hardware.device == "cuda"
                             else "float16" if hardware.device == "cuda" else "float32")
    tokenizer = load_tokenizer(str(adapter_dir))
    model = load_base_model(config.base_model, config, tokenizer)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    if hardware.device == "cuda":
        model = model.to("cuda")
    model.eval()
    return model, tokenizer
