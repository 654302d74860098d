"""The GPU backend: Unsloth's FastLanguageModel (4-bit loading, fused kernels, its gradient checkpointing).

Kept thin on purpose: it runs only on a CUDA GPU, so everything it passes to Unsloth is built by the
small `*_kwargs` functions below, which tests check against the installed unsloth's signatures on a
CPU. Inputs and outputs are the same as the PEFT backend's: chat examples in, a PEFT adapter out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .chat import prepare_tokenizer
from .config import BrandkitError, TrainConfig
from .presets import sft_config
from .models import resolve_model, torch_dtype


def from_pretrained_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keywords for FastLanguageModel.from_pretrained (dtype None lets Unsloth pick fp16 or bf16)."""
    return {"model_name": resolve_model(config.base_model), "max_seq_length": config.max_seq_length,
            "dtype": None if config.dtype == "auto" else torch_dtype(config.dtype),
            "load_in_4bit": config.load_in_4bit, "random_state": config.seed}


def peft_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keywords for FastLanguageModel.get_peft_model."""
    checkpointing: bool | str = {"unsloth": "unsloth", "true": True}.get(str(config.gradient_checkpointing), False)
    return {"r": config.lora_r, "target_modules": list(config.target_modules), "lora_alpha": config.lora_alpha,
            "lora_dropout": config.lora_dropout, "bias": "none", "use_gradient_checkpointing": checkpointing,
            "random_state": config.seed}


def responses_only_kwargs() -> dict[str, Any]:
    """Keywords for train_on_responses_only: markers are auto-detected from the chat template."""
    return {"instruction_part": None, "response_part": None}


def gpu_memory() -> dict[str, float]:
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "total_gb": round(props.total_memory / 2**30, 2),
            "reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 2)}


def build_trainer(examples, config: TrainConfig, out: Path, callbacks: list):
    """An SFTTrainer around an Unsloth model, with the loss on the assistant's answers only."""
    from unsloth import FastLanguageModel  # noqa: I001  (unsloth patches transformers and trl when imported)
    from unsloth.chat_templates import train_on_responses_only
    from trl import SFTTrainer

    model, tokenizer = FastLanguageModel.from_pretrained(**from_pretrained_kwargs(config))
    if prepare_tokenizer(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model = FastLanguageModel.get_peft_model(model, **peft_kwargs(config))

    def to_text(example: dict[str, Any]) -> dict[str, str]:
        return {"text": tokenizer.apply_chat_template(example["messages"], tokenize=False)}

    train_ds = examples["train"].map(to_text, remove_columns=examples["train"].column_names)
    eval_ds = (examples["validation"].map(to_text, remove_columns=examples["validation"].column_names)
               if len(examples.get("validation", [])) else None)
    args = sft_config(config, out / "checkpoints", has_eval=eval_ds is not None, dataset_text_field="text",
                      use_cpu=False)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=train_ds, eval_dataset=eval_ds,
                         args=args, callbacks=callbacks)
    trainer = train_on_responses_only(trainer, **responses_only_kwargs())
    empty = [i for i, labels in enumerate(trainer.train_dataset["labels"]) if all(l == -100 for l in labels)]
    if empty:
        raise BrandkitError(f"{len(empty)} example(s) have no trainable token after masking (all labels are -100): "
                            "the response markers do not match the chat template, or max_seq_length is too short")
    return trainer, model, tokenizer
