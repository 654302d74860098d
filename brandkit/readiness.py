"""Is the data ready to train on? Checked before any GPU time is spent.

Reads the clean stage's result and the examples it will become (tokenised with the chosen model's
tokenizer), and reports what a careful person would look at: documents in and out per step and per
kind, example lengths against the sequence length, how much text was redacted, warnings with advice,
and a rough training-time estimate for the hardware preset.
"""

from __future__ import annotations

import dataclasses
import html
import statistics
from dataclasses import dataclass, field
from typing import Any

from .config import BrandKit, ExamplesConfig, TrainConfig

# Effective training throughput (FLOP/s) by preset, for the estimate: measured here for the CPU
# (SmolLM2-135M's demo on 2 cores, what this formula counts as 2.6e13 FLOP: its train stage took
# 290-312 s in fp32 held to avx2, and 205-236 s in bf16 on a CPU with fast bf16), typical achieved
# figures for a T4 with 4-bit LoRA and for bf16 GPUs.
EFFECTIVE_FLOPS = {"cpu": 8.6e10, "cpu-bf16": 1.2e11, "t4": 8e12, "gpu": 6e13}


@dataclass
class Readiness:
    examples: int
    by_kind: dict[str, int]
    token_lengths: list[int]
    answer_lengths: list[int]
    max_seq_length: int
    over_length: list[str]
    redaction: dict[str, Any]
    steps: list[dict[str, Any]]
    kinds: list[dict[str, Any]]
    estimate_minutes: float | None
    preset: str
    parameters: int | None
    model: str = ""
    warnings: list[str] = field(default_factory=list)
    set_aside: int = 0                 # received mail the collect stage left out (not the brand's writing)

    def summary(self) -> dict[str, Any]:
        lengths = sorted(self.token_lengths) or [0]
        return {"examples": self.examples, "by_kind": self.by_kind,
                "tokens": {"min": lengths[0], "median": statistics.median(lengths), "max": lengths[-1],
                           "p95": lengths[int(0.95 * (len(lengths) - 1))], "total": sum(lengths)},
                "over_max_seq_length": len(self.over_length), "max_seq_length": self.max_seq_length,
                "redacted_share": self.redaction.get("share", 0.0), "estimate_minutes": self.estimate_minutes,
                "preset": self.preset, "model": self.model, "parameters": self.parameters,
                "received_mail_set_aside": self.set_aside, "warnings": self.warnings}

    def figure(self):
        """Histogram of example lengths in tokens, with the sequence length marked."""
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6.5, 3.0))
        axis.hist(self.token_lengths, bins=30, color="#3b6fb6", label="whole example")
        axis.hist(self.answer_lengths, bins=30, color="#d2691e", alpha=0.6, label="answer only")
        axis.axvline(self.max_seq_length, color="#a12", linestyle="--", label=f"max_seq_length {self.max_seq_length}")
        axis.set_xlabel("tokens (the chosen model's tokenizer)")
        axis.set_ylabel("examples")
        axis.legend()
        axis.grid(alpha=0.3)
        return figure

    def to_html(self) -> str:
        from .figures import img, table

        s = self.summary()
        parts = [f"<p><b>{self.examples} training examples</b> "
                 f"({', '.join(f'{n} {k}' for k, n in self.by_kind.items())}); median {s['tokens']['median']:.0f} "
                 f"tokens, longest {s['tokens']['max']}; {s['over_max_seq_length']} over max_seq_length "
                 f"{self.max_seq_length}; {100 * s['redacted_share']:.1f}% of the text redacted.</p>"]
        if self.model:
            size = f", {self.parameters / 1e6:.0f}M parameters" if self.parameters else ""
            parts.append(f"<p>Base model: <b>{html.escape(self.model)}</b>{size}.</p>")
        if self.set_aside:
            parts.append(f"<p>{self.set_aside} received messages were set aside when collecting: they are "
                         "customers' mail, not the brand's writing (<code>collect.mail_messages: all</code> "
                         "keeps them).</p>")
        if self.estimate_minutes is not None:
            when = "under a minute" if self.estimate_minutes < 1 else f"about {self.estimate_minutes:.0f} minutes"
            parts.append(f"<p>Estimated training time on the <b>{html.escape(self.preset)}</b> preset: {when} "
                         "(a rough guide, from the model size and the number of tokens).</p>")
        parts += [f'<p class="note">{html.escape(w)}</p>' for w in self.warnings]
        parts.append(img(self.figure(), "example lengths in tokens"))
        parts.append(table(self.kinds, ["kind", "docs_in", "dropped", "docs_out"]))
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()


def count_parameters(name_or_path: str) -> int | None:
    """Parameters of a model from its config alone (no weights loaded); None when the config is out of reach."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from .models import resolve_model

        config = AutoConfig.from_pretrained(resolve_model(name_or_path))
        with torch.device("meta"):  # shapes only, no memory
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # an offline hub id or an unknown architecture: no estimate, not an error
        return None


def set_aside_count(collected) -> int:
    """Received messages the collect stage set aside: from its result, its report dict or collect_report.json."""
    import json
    from pathlib import Path

    if collected is None:
        return 0
    if isinstance(collected, (str, Path)):
        path = Path(collected)
        collected = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if isinstance(collected, dict):
        return int(collected.get("set_aside", 0) or 0)
    return int(getattr(collected, "set_aside", 0) or 0)


def check(clean_result, brand: BrandKit, train_config: TrainConfig | None = None,
          examples_config: ExamplesConfig | None = None, preset: str | None = None, collected=None) -> Readiness:
    """The data-readiness report for a clean result, as the chosen model will see it.

    collected: the collect stage's result (or its collect_report.json), to say how much received
    mail was set aside.
    """
    from .chat import prepare_tokenizer, tokenize_example
    from .examples import build_examples
    from .hardware import detect_hardware
    from .presets import resolve_config
    from .models import load_tokenizer, model_title

    train_config = train_config or TrainConfig()
    hardware = detect_hardware()
    examples = build_examples(clean_result.dataset, brand, examples_config)
    resolved, chosen, _ = resolve_config(dataclasses.replace(train_config, preset=preset or train_config.preset),
                                         hardware, train_examples=len(examples["train"]))
    tokenizer = load_tokenizer(train_config.base_model)
    prepare_tokenizer(tokenizer)
    lengths, answers, over, kinds = [], [], [], {}
    for split in examples:
        for example in examples[split]:
            tokens = tokenize_example(tokenizer, example["messages"], 10**9)
            lengths.append(len(tokens["input_ids"]))
            answers.append(sum(tokens["assistant_masks"]))
            if lengths[-1] > resolved.max_seq_length:
                over.append(example["id"])
            if split == "train":
                kinds[example["kind"]] = kinds.get(example["kind"], 0) + 1
    parameters = count_parameters(train_config.base_model)
    train_tokens = sum(lengths) * len(examples["train"]) / max(len(lengths), 1)
    epochs = resolved.num_train_epochs if resolved.max_steps <= 0 else (
        resolved.max_steps * resolved.per_device_train_batch_size * resolved.gradient_accumulation_steps
        / max(len(examples["train"]), 1))
    rate = EFFECTIVE_FLOPS["cpu-bf16" if chosen == "cpu" and resolved.dtype == "bfloat16" else chosen]
    estimate = (4 * parameters * train_tokens * epochs / rate / 60) if parameters else None
    report = Readiness(
        examples=len(examples["train"]), by_kind=dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        token_lengths=lengths, answer_lengths=answers, max_seq_length=resolved.max_seq_length, over_length=over,
        redaction=clean_result.redaction(), steps=clean_result.steps_frame().to_dict("records"),
        kinds=clean_result.kinds_frame().to_dict("records"), estimate_minutes=estimate, preset=chosen,
        parameters=parameters, model=model_title(train_config.base_model), set_aside=set_aside_count(collected))
    report.warnings = advice(report, clean_result)
    return report


def advice(report: Readiness, clean_result) -> list[str]:
    """Plain-language warnings, each with what to do about it."""
    out = []
    if report.examples < 100:
        out.append(f"Only {report.examples} training examples. Fine-tuning guides suggest at least about 100, and "
                   "over 1,000 is better: add more past emails, posts, product pages or chats if you have them.")
    if report.by_kind:
        kind, count = next(iter(report.by_kind.items()))
        if report.examples >= 10 and count / report.examples > 0.6:
            out.append(f"{count / report.examples:.0%} of the examples are {kind}s. The model will mostly learn to "
                       f"write {kind}s; add other kinds of writing if you want it to do those well too.")
    steps = {s["step"]: s for s in report.steps}
    duplicates = sum(steps.get(name, {}).get("dropped", 0) for name in ("dedupe_exact", "dedupe_near"))
    docs_in = report.steps[0]["docs_in"] if report.steps else 0
    if docs_in and duplicates / docs_in > 0.2:
        out.append(f"{duplicates} of {docs_in} documents were duplicates or near-duplicates. That is normal for "
                   "newsletters sent several times, but check the audit log: templates sent over and over teach "
                   "the model to repeat them.")
    if report.over_length:
        out.append(f"{len(report.over_length)} example(s) are longer than max_seq_length={report.max_seq_length} "
                   "tokens and will be cut short: raise max_seq_length if your GPU has room, or split long "
                   "documents.")
    if report.redaction.get("share", 0) > 0.05:
        out.append(f"{report.redaction['share']:.0%} of the text was redacted: the model will learn to write "
                   "placeholders like [EMAIL]. Consider removing documents that are mostly personal details.")
    return out
