"""Train: a LoRA adapter on the chat examples, with the backend and precision the hardware wants.

Unsloth's ``FastLanguageModel`` (4-bit, fused kernels) runs when a CUDA GPU is present and unsloth
is installed; transformers + PEFT + TRL run everywhere else. Both take the same examples and the
same config and write the same thing: a PEFT adapter folder with its tokenizer.
"""


from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .chat import tokenize_example
from .config import BrandkitError, TrainConfig
from .cpu_memory import freed_memory_kept
from .hardware import Hardware, choose_backend, detect_hardware
from .presets import resolve_config
from .peft_backend import build_peft_trainer


@dataclass
class TrainResult:
    adapter_dir: Path
    backend: str
    preset: str
    config: TrainConfig
    log_history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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
    if len(examples["train"]) == 0:
        raise BrandkitError("there are no training examples: collect and clean some documents first")
    config, preset, notes = resolve_config(config, hardware, train_examples=len(examples["train"]))
    backend = choose_backend(hardware, config.backend)
    out = Path(out_dir)
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
    # on a CPU, each step would otherwise fault its activations' memory in afresh (cpu_memory: 1.2x a step)
    with freed_memory_kept() if hardware.device == "cpu" else contextlib.nullcontext():
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
            yaml.safe_dump({"backend": backend, "preset": preset, "config": dataclasses.asdict(config),
                            # the system prompt it learned with: a Modelfile or a caller should use the same
                            "system_prompt": trained_system_prompt(examples["train"])},
                           sort_keys=False, allow_unicode=True), encoding="utf-8")
        (adapter_dir / "data_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        (adapter_dir / "README.md").write_text(model_card(config, backend, preset, stats, metrics, history),
                                               encoding="utf-8")
        (out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    return TrainResult(adapter_dir=adapter_dir, backend=backend, preset=preset, config=config,
                       log_history=history, metrics=metrics, notes=notes + advice.warnings)


def trained_system_prompt(train_split) -> str:
    """The system prompt of the training examples ("" when they have none)."""
    first = train_split[0]["messages"] if len(train_split) else []
    return next((m["content"] for m in first if m["role"] == "system"), "")


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
    from .models import base_model_info, hub_id, model_title

    base, info = config.base_model, base_model_info(config.base_model)
    final_eval = next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None)
    train_split = stats.get("train", {})
    warning = ("\n> Trained on brandkit's offline tiny model: a rehearsal of the pipeline, not a quality result.\n"
               if info and info.rehearsal else "")
    offline = (f"\nbrandkit loaded it as `{base}`: {info.title}. To load this adapter without brandkit, point "
               f"it at `{info.hub_id}` (the same model on the Hub) or at brandkit's converted copy.\n"
               if info and info.hub_id else "")
    return f"""---
base_model: {hub_id(base)}
library_name: peft
pipeline_tag: text-generation
tags: [brandkit, lora, sft, trl, brand-voice]
---

# Brand-voice LoRA adapter
{warning}
A LoRA adapter trained with [brandkit](https://github.com/brandkit-course/brandkit) on a business's own writing, so that
the base model writes in that business's voice.

- Base model: {model_title(base)}; backend: {backend}; hardware preset: {preset}
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

Or, with brandkit installed, `brandkit.models.load_tuned("this-folder")`, which finds brandkit's
named models (the offline ones included) by itself. To merge it into the base model, or to make a GGUF
file and an Ollama Modelfile, run `brandkit export` ([how](https://github.com/brandkit-course/brandkit#export)).
{offline}"""


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
