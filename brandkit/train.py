"""Train: a LoRA adapter on the chat examples, with the backend and precision the hardware wants.

Unsloth's ``FastLanguageModel`` (4-bit, fused kernels) runs when a CUDA GPU is present and unsloth
is installed; transformers + PEFT + TRL run everywhere else. Both take the same examples and the
same config and write the same thing: a PEFT adapter folder with its tokenizer.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import TINY_MODEL_ID, BrandkitError, TrainConfig, resolve_model

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TOKENS = ["<|im_start|>", "<|im_end|>"]
PAD_TOKEN = "<|pad|>"


# --------------------------------------------------------------------------- hardware

@dataclass
class Hardware:
    """What this machine can train on, and how fast each precision runs here."""

    device: str                  # cuda | mps | cpu
    name: str
    memory_gb: float
    bf16: bool                   # bf16 runs natively (Ampere+ GPU, or a CPU with bf16 instructions)
    fp16: bool
    unsloth: bool                # unsloth and its GPU dependencies are installed (checked without importing)

    def describe(self) -> str:
        fast = "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"
        return f"{self.device}: {self.name}, {self.memory_gb:.0f} GB, fastest precision {fast}"


BF16_PROBE = """
import time, torch
a, b = torch.randn(384, 384), torch.randn(384, 384)
def speed(x, y):
    x @ y
    start = time.perf_counter()
    for _ in range(8):
        x @ y
    return time.perf_counter() - start
fp32 = speed(a, b)
bf16 = speed(a.bfloat16(), b.bfloat16())
print(fp32 / bf16)
"""


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """How much faster a bf16 matmul runs than fp32 on this CPU (0.0 when it cannot run at all).

    Measured in a child process: some virtual machines advertise bf16 instructions (avx512_bf16,
    AMX) that then kill the process with "illegal instruction"; reading /proc/cpuinfo is not enough.
    """
    try:
        done = subprocess.run([sys.executable, "-c", BF16_PROBE], capture_output=True, text=True, timeout=120)
        return float(done.stdout.strip()) if done.returncode == 0 else 0.0
    except (subprocess.SubprocessError, ValueError, OSError):
        return 0.0


def detect_hardware() -> Hardware:
    import torch

    # usable on a GPU only with its kernels' dependencies (the gpu extra installs them)
    unsloth = all(importlib.util.find_spec(name) is not None for name in ("unsloth", "bitsandbytes", "triton"))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        # native bf16 only: by default torch also counts emulation, which would call a T4 a bf16 GPU
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return Hardware("cuda", props.name, props.total_memory / 2**30, bf16, True, unsloth)
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Hardware("mps", "Apple GPU", 0.0, False, True, unsloth)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = 0.0
    # bf16 on a CPU pays off only with native instructions that really run (see cpu_bf16_speedup).
    return Hardware("cpu", platform.processor() or platform.machine(), memory, False, False, unsloth)


def choose_backend(hardware: Hardware, requested: str = "auto") -> str:
    """Unsloth only with a CUDA GPU and unsloth installed; transformers + PEFT everywhere else."""
    if requested == "unsloth":
        if hardware.device != "cuda" or not hardware.unsloth:
            raise BrandkitError("backend 'unsloth' needs a CUDA GPU and `pip install brandkit[gpu]`; "
                                f"this machine has {hardware.describe()}, unsloth installed: {hardware.unsloth}")
        return "unsloth"
    if requested not in ("auto", "peft"):
        raise BrandkitError(f"unknown backend {requested!r} (auto, unsloth or peft)")
    if requested == "auto" and hardware.device == "cuda" and hardware.unsloth and world_size() == 1:
        return "unsloth"  # several processes (accelerate launch) go through transformers + PEFT (DDP, FSDP)
    return "peft"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


PRESETS: dict[str, dict[str, Any]] = {
    # Precision and memory settings per hardware class: they fill the config's fields left at "auto";
    # any value set in the config wins.
    # fused AdamW has CPU kernels (torch >= 2.4): one kernel over LoRA's many small tensors
    "cpu": {"dtype": "float32", "gradient_checkpointing": "false", "load_in_4bit": False,
            "optim": "adamw_torch_fused", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
    "t4": {"dtype": "float16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
           "optim": "adamw_8bit", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},
    "gpu": {"dtype": "bfloat16", "gradient_checkpointing": "unsloth", "load_in_4bit": True,
            "optim": "adamw_8bit", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2},
}


# The offline tiny model is a few million parameters: it needs a bigger step than the 2e-4 that
# suits billion-parameter models, and a few more passes over the data.
TINY_MODEL_DEFAULTS: dict[str, Any] = {"learning_rate": 3e-3, "num_train_epochs": 10.0}


def preset_name(hardware: Hardware) -> str:
    if hardware.device != "cuda":
        return "cpu"
    return "gpu" if hardware.bf16 else "t4"


def resolve_config(config: TrainConfig, hardware: Hardware) -> tuple[TrainConfig, str, list[str]]:
    """Fill every "auto" from the hardware preset; returns the config, the preset and why."""
    name = config.preset if config.preset != "auto" else preset_name(hardware)
    if name not in PRESETS:
        raise BrandkitError(f"unknown preset {name!r} (auto, {', '.join(PRESETS)})")
    preset, defaults, why = PRESETS[name], TrainConfig(), [f"preset {name!r} for {hardware.describe()}"]
    values = {}
    for key, value in preset.items():
        if getattr(config, key) == "auto":
            values[key] = value
    if config.base_model == TINY_MODEL_ID:
        tiny = {k: v for k, v in TINY_MODEL_DEFAULTS.items() if getattr(config, k) == getattr(defaults, k)}
        values.update(tiny)
        if tiny:
            why.append("the offline tiny model's own defaults: " + ", ".join(f"{k} {v}" for k, v in tiny.items()))
    resolved = dataclasses.replace(config, preset=name, **values)
    if resolved.dtype == "bfloat16" and hardware.device == "cpu" and cpu_bf16_speedup() > 1.2:
        why.append(f"bf16 runs {cpu_bf16_speedup():.1f}x faster than fp32 on this CPU: keeping bfloat16")
    elif resolved.dtype == "bfloat16" and not hardware.bf16:
        why.append("bf16 is not native here: training in " + ("float16" if hardware.fp16 else "float32"))
        resolved = dataclasses.replace(resolved, dtype="float16" if hardware.fp16 else "float32")
    if hardware.device != "cuda" and (resolved.load_in_4bit or resolved.dtype == "float16"):
        why.append("no CUDA GPU: 4-bit loading and fp16 switched off, training in float32")
        resolved = dataclasses.replace(resolved, load_in_4bit=False, dtype="float32")
    if resolved.gradient_checkpointing == "unsloth" and hardware.device != "cuda":
        resolved = dataclasses.replace(resolved, gradient_checkpointing="false")
    elif resolved.gradient_checkpointing == "unsloth" and choose_backend(hardware, resolved.backend) == "peft":
        # Unsloth's offloaded checkpointing needs Unsloth; without it, keep the memory saving the standard way
        why.append("gradient checkpointing 'unsloth' needs the unsloth backend: using standard checkpointing")
        resolved = dataclasses.replace(resolved, gradient_checkpointing="true")
    return resolved, name, why


# --------------------------------------------------------------------------- tokenizer and masks

def prepare_tokenizer(tokenizer) -> list[str]:
    """Give the tokenizer a chat template and a pad token distinct from EOS; returns added tokens."""
    added = []
    if not getattr(tokenizer, "chat_template", None):
        missing = [t for t in CHATML_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing})
            added += missing
        tokenizer.chat_template = CHATML_TEMPLATE
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        if PAD_TOKEN not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
            added.append(PAD_TOKEN)
        else:
            tokenizer.pad_token = PAD_TOKEN
    return added


def render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of every assistant answer.

    Each span runs from the end of the prompt that precedes the answer to the end of the answer's
    turn, so it includes the end-of-turn token: the model learns to stop. Works with any template
    that renders a conversation's prefix as a prefix of the whole.
    """
    full = render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], add_generation_prompt=True)
        upto = render(tokenizer, messages[: index + 1])
        if not (upto.startswith(prompt) and full.startswith(upto)):
            raise BrandkitError("the chat template does not render a conversation's beginning as a prefix of "
                                "the whole, so the answers cannot be located; use a standard template")
        end = len(upto.rstrip())
        spans.append((len(prompt), end))
    return full, spans


def tokenize_example(tokenizer, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """input_ids and assistant_masks (1 on tokens the loss is computed on) for one conversation."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start < end_span and end > start_span for start_span, end_span in spans))
            for start, end in encoded["offset_mapping"]]
    return {"input_ids": encoded["input_ids"][:max_length], "assistant_masks": mask[:max_length]}


def tokenize_examples(dataset, tokenizer, max_length: int):
    """Tokenize a split; fail with the examples' ids when one has no trainable token left."""
    tokenized = dataset.map(lambda ex: tokenize_example(tokenizer, ex["messages"], max_length),
                            desc="Tokenizing and masking")
    empty = [ex_id for ex_id, mask in zip(tokenized["id"], tokenized["assistant_masks"], strict=True)
             if 1 not in mask]
    if empty:
        raise BrandkitError(
            f"{len(empty)} example(s) have no trainable token after masking to the assistant's answers and "
            f"truncating to max_seq_length={max_length} (e.g. {', '.join(empty[:3])}): the prompt fills the "
            "whole length or the chat template lost the answers; raise max_seq_length or shorten the prompt")
    return tokenized


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn (EOS and the template's end-of-turn marker)."""
    ids = {tokenizer.eos_token_id}
    probe = render(tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
    tail = probe[probe.rindex("y") + 1:].strip()
    for token in tokenizer.all_special_tokens:
        if token and tail.startswith(token):
            ids.add(tokenizer.convert_tokens_to_ids(token))
    return sorted(i for i in ids if i is not None)


# --------------------------------------------------------------------------- models

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


def lora_config(config: TrainConfig, model, trainable_tokens: list[int] | None = None):
    from peft import LoraConfig

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.target_modules if t in names]
    if not targets:
        raise BrandkitError(f"none of the LoRA target modules {config.target_modules} exist in this model")
    extra = {"trainable_token_indices": {"embed_tokens": trainable_tokens}} if trainable_tokens else {}
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM", **extra)


# --------------------------------------------------------------------------- training

@dataclass
class TrainResult:
    adapter_dir: Path
    backend: str
    preset: str
    config: TrainConfig
    log_history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sft_config(config: TrainConfig, output_dir: Path, has_eval: bool, **overrides: Any):
    """TRL's SFTConfig with precision and checkpointing taken from our (resolved) config."""
    from trl import SFTConfig

    return SFTConfig(**sft_kwargs(config, output_dir, has_eval, **overrides))


def sft_kwargs(config: TrainConfig, output_dir: Path, has_eval: bool, **overrides: Any) -> dict[str, Any]:
    """The keywords brandkit passes to SFTConfig (tests check them against the installed trl)."""
    unresolved = [key for key in PRESETS["cpu"] if getattr(config, key) == "auto"]
    if unresolved:
        raise BrandkitError(f"train config still has 'auto' for {', '.join(unresolved)}: pass it through "
                            "resolve_config(config, detect_hardware()) first")
    checkpointing = config.gradient_checkpointing in ("true", "unsloth", True)
    args = dict(
        output_dir=str(output_dir), per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs, max_steps=config.max_steps, warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay, lr_scheduler_type=config.lr_scheduler_type, optim=config.optim,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None, seed=config.seed, data_seed=config.seed,
        bf16=config.dtype == "bfloat16", fp16=config.dtype == "float16",
        gradient_checkpointing=checkpointing and config.gradient_checkpointing != "unsloth",
        max_length=config.max_seq_length, report_to="none", dataset_num_proc=None, loss_type="nll",
        use_cpu=config.dtype == "float32" and not _cuda(),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
    args.update(overrides)
    return args


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class TrainingAdvice:
    """A trainer callback that turns the loss curve into plain-language warnings, each said once.

    Memorising (training loss under 0.2), overfitting (validation loss rising twice in a row) and
    not learning (training loss not falling after a third of the run).
    """

    def __init__(self, say=print):
        from transformers import TrainerCallback

        self.warnings: list[str] = []
        self.say = say
        train_losses: list[float] = []
        eval_losses: list[tuple[int, float]] = []
        outer = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                logs = logs or {}
                if "loss" in logs:
                    train_losses.append(float(logs["loss"]))
                    outer.check_training(train_losses, state.global_step, state.max_steps)
                if "eval_loss" in logs:
                    eval_losses.append((state.global_step, float(logs["eval_loss"])))
                    outer.check_validation(eval_losses)

        self.callback = Callback()

    def warn(self, key: str, text: str) -> None:
        if not any(w.startswith(key) for w in self.warnings):
            self.warnings.append(f"{key}: {text}")
            self.say(f"brandkit advice, {key}: {text}")

    def check_training(self, losses: list[float], step: int, max_steps: int) -> None:
        if losses[-1] < 0.2:
            self.warn("memorising", f"the training loss is {losses[-1]:.2f}. Under about 0.2 the model is usually "
                      "learning your documents by heart rather than your style: train for fewer epochs or add data.")
        window = max(1, len(losses) // 4)
        if max_steps and step >= max_steps / 3 and len(losses) >= 4:
            start, now = sum(losses[:window]) / window, sum(losses[-window:]) / window
            if now > start * 0.98:
                self.warn("not learning", f"the training loss has not fallen ({start:.2f} at the start, {now:.2f} "
                          "now). Try a higher learning rate (2x), and check that the examples are what you expect.")

    def check_validation(self, losses: list[tuple[int, float]]) -> None:
        if len(losses) >= 3 and losses[-1][1] > losses[-2][1] > losses[-3][1]:
            best_step, best = min(losses, key=lambda pair: pair[1])
            self.warn("overfitting", f"the validation loss has risen twice in a row ({losses[-3][1]:.2f} -> "
                      f"{losses[-2][1]:.2f} -> {losses[-1][1]:.2f}); it was lowest ({best:.2f}) at step {best_step}. "
                      "Stop earlier: fewer epochs or max_steps near that step.")


def train(examples, config: TrainConfig, out_dir: str | Path, callbacks: list | None = None,
          resume: bool = True, hardware: Hardware | None = None, say=print, progress: bool = True) -> TrainResult:
    """Fine-tune a LoRA adapter on examples["train"] (validated on examples["validation"]).

    Checkpoints go to out_dir/checkpoints; with resume=True an interrupted run continues from the
    last one. The adapter, its tokenizer, the config, data statistics and a model card are saved to
    out_dir/adapter. Works under `accelerate launch` (only the main process writes).
    """
    import time

    hardware = hardware or detect_hardware()
    config, preset, notes = resolve_config(config, hardware)
    backend = choose_backend(hardware, config.backend)
    out = Path(out_dir)
    if len(examples["train"]) == 0:
        raise BrandkitError("there are no training examples: collect and clean some documents first")
    advice = TrainingAdvice(say)
    callbacks = [advice.callback, *(callbacks or [])]
    if backend == "unsloth":
        from . import unsloth_backend

        trainer, model, tokenizer = unsloth_backend.build_trainer(examples, config, out, callbacks)
    else:
        trainer, model, tokenizer = build_peft_trainer(examples, config, out, callbacks)
    if not progress:
        from transformers import PrinterCallback, ProgressCallback

        trainer.args.disable_tqdm = True
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
    memory_before = gpu_memory_report(say, "before training") if hardware.device == "cuda" else {}
    checkpoint = resumable_checkpoint(out / "checkpoints", config, say) if resume else None
    if checkpoint:
        notes.append(f"resumed from {checkpoint.name}")
    elif (out / "checkpoints").is_dir() and trainer.is_world_process_zero():
        shutil.rmtree(out / "checkpoints")  # a finished or different run: its checkpoints would only confuse a resume
    if trainer.is_world_process_zero():
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints" / "brandkit_config.json").write_text(config_fingerprint(config), encoding="utf-8")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics = {**output.metrics, "seconds": round(time.perf_counter() - started, 1)}
    if hardware.device == "cuda":
        metrics["gpu_memory"] = {"before": memory_before, "after": gpu_memory_report(say, "after training")}
    history = trainer.state.log_history
    adapter_dir = out / "adapter"
    if trainer.is_world_process_zero():
        model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        stats = data_statistics(examples, tokenizer, config.max_seq_length)
        (adapter_dir / "brandkit_train.yaml").write_text(
            yaml.safe_dump({"backend": backend, "preset": preset, "config": dataclasses.asdict(config)},
                           sort_keys=False), encoding="utf-8")
        (adapter_dir / "data_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        (adapter_dir / "README.md").write_text(model_card(config, backend, preset, stats, metrics, history),
                                               encoding="utf-8")
        (out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    return TrainResult(adapter_dir=adapter_dir, backend=backend, preset=preset, config=config,
                       log_history=history, metrics=metrics, notes=notes + advice.warnings)


def gpu_memory_report(say, when: str) -> dict[str, float]:
    """GPU memory as Unsloth's notebooks show it: total, and the most reserved so far."""
    import torch

    props = torch.cuda.get_device_properties(0)
    report = {"gpu": props.name, "total_gb": round(props.total_memory / 2**30, 2),
              "max_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 2)}
    say(f"GPU = {report['gpu']}, {report['total_gb']} GB; {report['max_reserved_gb']} GB reserved ({when}).")
    return report


def data_statistics(examples, tokenizer, max_length: int) -> dict[str, Any]:
    """Examples per split and kind, and their lengths in this tokenizer's tokens."""
    from collections import Counter

    stats: dict[str, Any] = {}
    for split in examples:
        lengths = [len(tokenize_example(tokenizer, ex["messages"], 10**9)["input_ids"]) for ex in examples[split]]
        stats[split] = {"examples": len(lengths), "kinds": dict(Counter(examples[split]["kind"])),
                        "tokens": sum(lengths), "max_tokens": max(lengths, default=0),
                        "over_max_seq_length": sum(n > max_length for n in lengths)}
    return stats


def model_card(config: TrainConfig, backend: str, preset: str, stats: dict[str, Any], metrics: dict[str, Any],
               history: list[dict[str, Any]]) -> str:
    """README.md for the adapter folder, with the metadata the Hugging Face Hub reads."""
    from .config import TINY_MODEL_ID

    base = config.base_model
    final_eval = next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None)
    train_split = stats.get("train", {})
    warning = ("\n> Trained on brandkit's offline tiny model: a rehearsal of the pipeline, not a quality result.\n"
               if base == TINY_MODEL_ID else "")
    return f"""---
base_model: {base}
library_name: peft
pipeline_tag: text-generation
tags: [brandkit, lora, sft, trl, brand-voice]
---

# Brand-voice LoRA adapter
{warning}
A LoRA adapter trained with [brandkit](https://github.com/) on a business's own writing, so that
the base model writes in that business's voice.

- Base model: `{base}`; backend: {backend}; hardware preset: {preset}
- LoRA: r={config.lora_r}, alpha={config.lora_alpha}, dropout={config.lora_dropout}, modules: {", ".join(config.target_modules)}
- Training: learning rate {config.learning_rate}, {config.num_train_epochs} epochs (max_steps {config.max_steps}),
  batch {config.per_device_train_batch_size} x {config.gradient_accumulation_steps}, max length {config.max_seq_length},
  {config.dtype}, seed {config.seed}; loss on the assistant's answers only
- Data: {train_split.get("examples", 0)} training examples ({train_split.get("tokens", 0)} tokens), kinds
  {train_split.get("kinds", {})}; validation {stats.get("validation", {}).get("examples", 0)},
  held out {stats.get("heldout", {}).get("examples", 0)}
- Result: final training loss {metrics.get("train_loss", float("nan")):.3f}, validation loss {final_eval if final_eval is not None else "n/a"},
  {metrics.get("seconds", 0):.0f} s

## Use

```python
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer
model = AutoPeftModelForCausalLM.from_pretrained("this-folder")
tokenizer = AutoTokenizer.from_pretrained("this-folder")
```

(For the offline tiny model use `brandkit.compare.load_tuned("this-folder")`, which knows where it lives.)
"""


def build_peft_trainer(examples, config: TrainConfig, out: Path, callbacks: list):
    import torch
    from peft import get_peft_model
    from transformers import set_seed

    set_seed(config.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = load_tokenizer(config.base_model)
    added = prepare_tokenizer(tokenizer)
    model = load_base_model(config.base_model, config, tokenizer)
    new_ids = [tokenizer.convert_tokens_to_ids(t) for t in added if t != PAD_TOKEN]
    model = get_peft_model(model, lora_config(config, model, new_ids or None))
    train_ds = tokenize_examples(examples["train"], tokenizer, config.max_seq_length)
    eval_ds = (tokenize_examples(examples["validation"], tokenizer, config.max_seq_length)
               if len(examples.get("validation", [])) else None)
    args = sft_config(config, out / "checkpoints", has_eval=eval_ds is not None)
    trainer = trainer_class()(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                              processing_class=tokenizer, callbacks=callbacks)
    return trainer, model, tokenizer


class LengthBatches:
    """A sampler: examples sorted by length into batches of near-equal length, batch order shuffled per epoch.

    transformers' LengthGroupedSampler sorts only within small "megabatches", so on a small data set
    batches still mix short and long examples, and the padding is computed for nothing. Real
    documents vary a lot in length (a 20-word reply, a 600-word post): sorting the whole set leaves
    almost no padding, and shuffling whole batches keeps the order random.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import random

        rng = random.Random(self.seed + self.epoch)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], rng.random()))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        # the short last batch stays last: the data loader cuts this order into batches by count, so
        # one short batch in the middle would shift every later batch across two length groups
        short = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        rng.shuffle(batches)
        return iter([i for batch in batches + ([short] if short else []) for i in batch])


def answer_only_loss(model, inputs: dict[str, Any], num_items_in_batch=None):
    """Next-token loss with the output layer applied only where there is a label (the answers).

    The prompt and the padding need hidden states (the answer attends to them) but no logits; on
    a small model the vocabulary projection is a quarter of the work. None when this model's head
    does anything beyond a plain projection, or the logits would not fit comfortably.
    """
    import torch

    if hasattr(model, "module"):  # wrapped for DDP/FSDP: its own forward must run (gradient sync)
        return None
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    config, head = causal_lm.config, causal_lm.get_output_embeddings()
    if (getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", 1.0) not in (None, 1.0)
            or head is None or getattr(head, "bias", None) is not None or not hasattr(causal_lm, "get_decoder")):
        return None
    labels = inputs["labels"][:, 1:]
    valid = labels != -100
    if int(valid.sum()) * head.weight.shape[0] > 64_000_000:
        return None
    hidden = causal_lm.get_decoder()(input_ids=inputs["input_ids"], attention_mask=causal_mask_needed(inputs),
                                     use_cache=False).last_hidden_state[:, :-1]
    logits = head(hidden[valid]).float()
    loss = torch.nn.functional.cross_entropy(logits, labels[valid], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else valid.sum()
    return loss / (count.to(loss.device) if isinstance(count, torch.Tensor) else count)


def causal_mask_needed(inputs: dict[str, Any]):
    """The batch's attention mask, or None when the causal mask alone gives the same answer.

    With padding only at the end of each row, a real token never looks at a pad (they all come
    after it), so the padding mask changes nothing for the tokens the loss sees. Without it, SDPA
    runs its causal path, and no mask is built or read for every layer.
    """
    mask = inputs.get("attention_mask")
    if mask is None or inputs.get("position_ids") is not None or mask.dim() != 2:
        return mask
    right_padded = bool((mask[:, 1:] <= mask[:, :-1]).all()) and bool(mask[:, 0].all())
    return None if right_padded else mask


def trainer_class():
    """TRL's SFTTrainer with two changes for speed; the loss, the masking and the rest are TRL's.

    - No per-step entropy and accuracy metrics: they take a softmax over the whole vocabulary for
      every token, on top of the loss (the plain transformers loss over the labels TRL built).
    - Batches of near-equal length (LengthBatches) when length grouping is asked for.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class BrandkitSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            if not return_outputs:
                loss = answer_only_loss(model, inputs, num_items_in_batch)
                if loss is not None:
                    return loss
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if self.args.train_sampling_strategy != "group_by_length" or dataset is None:
                return super()._get_train_sampler(train_dataset)
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return LengthBatches(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                 self.args.data_seed or self.args.seed)

    return BrandkitSFTTrainer


def config_fingerprint(config: TrainConfig) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def resumable_checkpoint(folder: Path, config: TrainConfig, say=print) -> Path | None:
    """The last checkpoint of an interrupted run with this same configuration, if there is one.

    A run that finished, or one trained with other settings, is not resumed: training starts over.
    """
    checkpoint = last_checkpoint(folder)
    if checkpoint is None:
        return None
    saved = folder / "brandkit_config.json"
    if not saved.exists() or saved.read_text(encoding="utf-8") != config_fingerprint(config):
        say(f"the checkpoints in {folder} were made with other settings: starting a new run")
        return None
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    if state.get("max_steps") and state.get("global_step", 0) >= state["max_steps"]:
        say(f"the run in {folder} already finished: starting a new run")
        return None
    return checkpoint


def last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    points = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
              and (p / "trainer_state.json").exists()]
    return max(points, key=lambda p: int(p.name.split("-")[-1]), default=None)


def pad_batch(rows: list[dict[str, Any]], pad_id: int):
    """Right-padded input ids, labels (the answer's tokens; -100 elsewhere) and attention mask."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), -100)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        attention[i, :n] = 1
        labels[i, :n] = torch.tensor([t if m else -100 for t, m in zip(r["input_ids"], r["assistant_masks"],
                                                                       strict=True)])
    return ids, labels, attention


def perplexity_of(losses: list[float]) -> float:
    return math.exp(sum(losses) / len(losses)) if losses else float("nan")
