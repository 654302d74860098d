"""Lessons: the craft the course teaches, explained with the learner's own numbers.

The notebooks stay thin because the explanations are computed here (and tested): how big a LoRA
adapter is against its model and what its rank does, what this run's loss curve says, an
experiment that makes over-fitting happen, and the compare stage's perplexity, style score, votes
and edits in plain words.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import BrandkitError
from .figures import shown_once

# what the sentences call the three contenders
NAMES = {"tuned": "tuned model", "prompted": "generic model with the brand prompt",
         "generic": "generic model with the simple prompt"}

# ----------------------------------------------------------------------------- LoRA: what is trained


@dataclass
class AdapterSize:
    """A LoRA adapter against its base model, counted from the real files (no weights loaded)."""

    base_model: str
    model_parameters: int                  # every parameter of the base model: all frozen
    adapter_parameters: int                # every number in the adapter file
    rank: int
    alpha: float
    targets: list[str]                     # the kinds of weight matrix adapted (q_proj, ...)
    shapes: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, inputs, outputs) of each
    layers: int = 0
    megabytes: float = 0.0

    def lora_parameters(self, rank: int | None = None) -> int:
        """A rank-r adapter on these matrices: r x (inputs + outputs) numbers for each (the two thin matrices)."""
        r = self.rank if rank is None else rank
        return sum(r * (inputs + outputs) for _, inputs, outputs in self.shapes)

    @property
    def share(self) -> float:
        return self.adapter_parameters / self.model_parameters if self.model_parameters else float("nan")

    def sentence(self) -> str:
        extra = self.adapter_parameters - self.lora_parameters()
        extra_text = (f" (and {extra:,} for the embeddings of the tokens brandkit added)" if extra > 0 else "")
        return (f"The model has {millions(self.model_parameters)} parameters, and training leaves every one of "
                f"them frozen. Beside {len(self.shapes)} of its weight matrices ({', '.join(self.targets)} in each "
                f"of its {self.layers} layers) LoRA adds two thin matrices of rank {self.rank}, and trains only "
                f"those: {millions(self.adapter_parameters)} numbers{extra_text}, {self.share:.1%} of the "
                f"model, a {self.megabytes:.0f} MB file. Their product is added to the frozen weight, scaled by "
                f"alpha / rank = {self.alpha:g} / {self.rank} = {self.alpha / self.rank:g}.")


def millions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:,}"


def model_shapes(base_model: str, targets: list[str]) -> tuple[int, list[tuple[str, int, int]], int]:
    """The base model's parameter count, and (kind, inputs, outputs) of each linear layer LoRA adapts.

    Built on PyTorch's meta device from the model's config: shapes only, no weights read.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from .models import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(base_model))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    shapes, layers = [], set()
    for name, module in model.named_modules():
        kind = name.rsplit(".", 1)[-1]
        if kind in targets and isinstance(module, torch.nn.Linear):
            shapes.append((kind, module.in_features, module.out_features))
            layers.update(re.findall(r"\.(\d+)\.", f".{name}."))
    return total, shapes, len(layers)


def adapter_size(adapter_dir: str | Path) -> AdapterSize:
    """How many numbers a trained adapter holds, against its base model, from the adapter folder's files."""
    import yaml
    from safetensors import safe_open

    adapter = Path(adapter_dir)
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise BrandkitError(f"no adapter_model.safetensors in {adapter}: train first")
    peft_config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    saved = adapter / "brandkit_train.yaml"
    train = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).get("config", {}) if saved.is_file() else {}
    base = train.get("base_model") or peft_config["base_model_name_or_path"]
    targets = peft_config["target_modules"]
    targets = sorted(targets) if isinstance(targets, (list, set)) else [targets]
    order = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    targets.sort(key=lambda t: (order.index(t) if t in order else len(order), t))
    count = 0
    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():
            count += math.prod(handle.get_slice(key).get_shape())
    total, shapes, layers = model_shapes(base, targets)
    return AdapterSize(base, total, count, int(peft_config["r"]), float(peft_config["lora_alpha"]), targets,
                       shapes, layers, weights.stat().st_size / 2**20)


def adapter_size_figure(size: AdapterSize, ranks: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128)):
    """Left: the adapter's size against the model's. Right: what the rank does to the adapter's size."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.3), gridspec_kw={"width_ratios": [1.2, 1]})
    sizes = [size.model_parameters / 1e6, size.adapter_parameters / 1e6]
    bars = left.barh(["the model\n(frozen)", "the adapter\n(trained)"], sizes, color=["#9aa5b1", "#3b6fb6"])
    for bar, value in zip(bars, sizes, strict=True):
        left.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:,.1f}M", va="center")
    left.set_xlim(0, sizes[0] * 1.25)
    left.invert_yaxis()
    left.set_xlabel("parameters (millions)")
    left.set_title(f"LoRA trains {size.share:.1%} of the model's size")
    counts = [size.lora_parameters(r) / 1e6 for r in ranks]
    right.plot(ranks, counts, "o-", color="#3b6fb6")
    right.plot([size.rank], [size.lora_parameters() / 1e6], "o", color="#d2691e", markersize=10,
               label=f"this run: rank {size.rank}")
    right.set_xscale("log", base=2)
    right.set_xticks(ranks, [str(r) for r in ranks])
    right.set_xlabel("rank r")
    right.set_ylabel("adapter parameters (millions)")
    right.set_title("double the rank, double the adapter")
    share = right.secondary_yaxis("right", functions=(lambda m: 1e8 * m / size.model_parameters,
                                                      lambda p: p * size.model_parameters / 1e8))
    share.set_ylabel("% of the model")
    right.grid(alpha=0.3)
    right.legend(loc="upper left")
    figure.tight_layout()
    return shown_once(figure)


# the settings that decide what training does, and what each one does
SETTINGS = (
    ("base_model", "the model that learns the voice; its own weights stay frozen"),
    ("lora_r", "rank: how many independent directions each LoRA update may use; the adapter grows with it"),
    ("lora_alpha", "scales the update by alpha / rank (the default is twice the rank: change the two together)"),
    ("target_modules", "the weight matrices that get an adapter: attention (q, k, v, o) and feed-forward"),
    ("learning_rate", "how big a step each update takes: too high and the loss jumps or over-fits fast, "
                      "too low and nothing moves"),
    ("num_train_epochs", "how many times training goes through every example (unless max_steps is set)"),
    ("max_steps", "a fixed number of steps instead of epochs (-1: use the epochs)"),
    ("batch", "examples per update: per_device_train_batch_size x gradient_accumulation_steps"),
    ("max_seq_length", "tokens per example; a longer one is cut"),
    ("eval_steps", "a validation point every so many steps (under 1: that share of the run)"),
    ("save_steps", "a checkpoint every so many steps, to resume after a disconnect (under 1: a share)"),
    ("dtype", "the number format training computes in"),
    ("load_in_4bit", "the frozen model kept in 4 bits to save memory (QLoRA, on GPUs)"),
)


def key_settings(resolved):
    """The training settings that matter, with their values in this run and what each one does (a DataFrame)."""
    import pandas as pd

    rows = []
    for name, meaning in SETTINGS:
        if name == "batch":
            value: Any = (f"{resolved.per_device_train_batch_size} x {resolved.gradient_accumulation_steps} = "
                          f"{resolved.per_device_train_batch_size * resolved.gradient_accumulation_steps}")
        else:
            value = getattr(resolved, name)
            value = ", ".join(value) if isinstance(value, list) else value
        rows.append({"setting": name, "value": str(value), "what it does": meaning})
    return pd.DataFrame(rows).set_index("setting")


# ----------------------------------------------------------------------------- the loss curve, read


def losses(log_history: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, training loss) and (step, validation loss) readings from a trainer's log history."""
    train = [(int(h["step"]), float(h["loss"])) for h in log_history if "loss" in h and "step" in h]
    validation = [(int(h["step"]), float(h["eval_loss"])) for h in log_history if "eval_loss" in h and "step" in h]
    return train, validation


def rose_twice(validation: list[tuple[int, float]]) -> bool:
    """The validation loss rose at the last two readings in a row (brandkit's over-fitting warning)."""
    return len(validation) >= 3 and validation[-1][1] > validation[-2][1] > validation[-3][1]


def read_loss_curve(log_history: list[dict[str, Any]]) -> str:
    """What a run's loss curve says, in sentences with its own numbers."""
    train, validation = losses(log_history)
    if not train:
        return "There is no training loss in this log yet: train first."
    (first_step, first), (last_step, last) = train[0], train[-1]
    trend = "fell" if last < first * 0.98 else "rose" if last > first * 1.02 else "stayed about level"
    words = [f"The training loss {trend} from {first:.2f} at step {first_step} to {last:.2f} at step {last_step}."]
    if last < 0.2:
        words.append("Under about 0.2 the model is usually reciting its training texts rather than learning "
                     "the style.")
    if not validation:
        words.append("There is no validation point: the run ended before the first one. Set "
                     "config.train.eval_steps below the number of steps (0.1 means every tenth of the run).")
        return " ".join(words)
    (v_first_step, v_first), (v_last_step, v_last) = validation[0], validation[-1]
    best_step, best = min(validation, key=lambda pair: pair[1])
    if len(validation) == 1:
        words.append(f"The validation loss (on examples it never trains on) was measured once: {v_last:.2f} at "
                     f"step {v_last_step}; one point shows no trend.")
    else:
        words.append(f"The validation loss (on examples it never trains on) went from {v_first:.2f} at step "
                     f"{v_first_step} to {v_last:.2f} at step {v_last_step}, lowest ({best:.2f}) at step "
                     f"{best_step}.")
        if rose_twice(validation):
            train_did = "kept falling" if trend == "fell" else trend
            words.append(f"It rose at each of the last two readings, while the training loss {train_did}: the "
                         f"model is learning its training examples by heart (over-fitting), and the adapter of step "
                         f"{best_step}, where it was lowest, would likely write better. Train for fewer steps or "
                         f"epochs, or add data.")
        elif best_step == v_last_step:
            words.append("It is still falling at the end: the model is still learning things that carry over "
                         "to texts it has not seen, so more steps (or another epoch) could still help.")
        else:
            words.append(f"It has stopped falling (lowest at step {best_step}, {v_last:.2f} now): about as far "
                         f"as this data takes the model; more epochs would start to over-fit.")
    words.append(f"A loss of {v_last:.2f} is a perplexity of {math.exp(v_last):.1f}: on each next token of a "
                 f"text it has not seen, the model is as unsure as if it were choosing among "
                 f"{math.exp(v_last):.0f} equally likely ones.")
    return " ".join(words)


def loss_curves_figure(histories: dict[str, list[dict[str, Any]]]):
    """Several runs' training (thin) and validation (dots) losses on one plot, one colour per run."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 3.3))
    colours = ["#3b6fb6", "#d2691e", "#2e8b57", "#8f6bb3"]
    for (name, history), colour in zip(histories.items(), colours * 4):
        train, validation = losses(history)
        if train:
            axis.plot(*zip(*train, strict=True), color=colour, alpha=0.6, label=f"{name}: training")
        if validation:
            axis.plot(*zip(*validation, strict=True), "o-", color=colour, label=f"{name}: validation")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return shown_once(figure)


# ----------------------------------------------------------------------------- over-fitting, on purpose


def stop_when_overfitting():
    """A trainer callback that ends training once the validation loss has risen twice in a row."""
    from transformers import TrainerCallback

    class StopWhenOverfitting(TrainerCallback):
        def __init__(self):
            self.validation: list[tuple[int, float]] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "eval_loss" in logs:
                self.validation.append((state.global_step, float(logs["eval_loss"])))
                if rose_twice(self.validation):
                    control.should_training_stop = True

    return StopWhenOverfitting()


def overfitting_settings(config, hardware=None, examples: int = 4, max_steps: int = 30,
                         learning_rate_factor: float = 3.0):
    """The run's training settings turned into a recipe for over-fitting.

    A handful of training examples in one batch (every step is a whole epoch), a learning rate a few
    times the run's own, a validation point after every step and no warm-up: the training loss
    dives while the validation loss turns and climbs.
    """
    from .hardware import detect_hardware
    from .presets import resolve_config

    resolved, _, _ = resolve_config(config, hardware or detect_hardware())
    return dataclasses.replace(
        resolved, learning_rate=float(resolved.learning_rate) * learning_rate_factor, max_steps=max_steps,
        per_device_train_batch_size=examples, gradient_accumulation_steps=1, warmup_steps=0.0, eval_steps=1,
        logging_steps=1, save_steps=max_steps + 1, max_seq_length=min(int(resolved.max_seq_length), 128))


def overfitting_experiment(run, examples: int = 4, validation: int = 4, max_steps: int = 30,
                           learning_rate_factor: float = 3.0, hardware=None):
    """Train on a few examples until over-fitting shows, in the run's branch `<run>-overfit`; returns the TrainResult.

    The run itself is untouched. Training stops as soon as the validation loss has risen twice in
    a row, which is also when brandkit's over-fitting warning fires (it is in the result's notes).
    """
    from .examples import load_examples
    from .train import train

    branch = run.branch("overfit", upto="examples")
    data = load_examples(branch.path("examples"))
    if len(data["train"]) < examples or len(data["validation"]) < 3:
        raise BrandkitError(f"the experiment needs {examples} training and 3 validation examples")
    subset = {"train": data["train"].select(range(examples)),
              "validation": data["validation"].select(range(min(validation, len(data["validation"]))))}
    config = overfitting_settings(run.config.train, hardware, examples, max_steps, learning_rate_factor)
    branch.config.train = config
    branch.config.to_yaml(branch.path("config.yaml"))
    return train(subset, config, branch.path("train"), callbacks=[stop_when_overfitting()], resume=False,
                 hardware=hardware, say=run.log, progress=run.progress)


# ----------------------------------------------------------------------------- compare, in plain words


def odds(p: float) -> str:
    """A probability as the odds a bookmaker would say ("about 4 to 1 that it is" for 0.8)."""
    if 0.45 < p < 0.55:
        return "about even odds that it is"
    if p < 0.005 or p > 0.995:
        return "near certainty that it is" + (" not" if p < 0.5 else "")
    ratio = p / (1 - p) if p > 0.5 else (1 - p) / p
    number = f"{ratio:.1f}" if ratio < 3 else f"{ratio:.0f}"
    return f"about {number} to 1 that it is" + ("" if p > 0.5 else " not")


def perplexity_sentence(metrics: dict[str, Any]) -> str:
    """Held-out perplexity, generic against tuned, in words."""
    ppl = metrics.get("perplexity") or {}
    generic, tuned = ppl.get("generic"), ppl.get("tuned")
    if generic is None or tuned is None or math.isnan(generic) or math.isnan(tuned):
        return "There is no held-out perplexity: the run has no held-out examples."
    change = (f"{1 - tuned / generic:.0%} lower: the brand's real writing surprises the tuned model less"
              if tuned < generic else
              f"{tuned / generic - 1:.0%} higher: training made the brand's real writing more surprising, "
              "a sign of over-fitting (or of a broken run)")
    return (f"On the brand's held-out answers the generic model's perplexity is {generic:.1f} and the tuned "
            f"model's {tuned:.1f}, {change}. A perplexity of {tuned:.0f} means that at each next token the "
            f"tuned model is as unsure as if it were choosing among {tuned:.0f} equally likely ones (the "
            f"generic model: {generic:.0f}). Compare perplexities within one run only: another model or "
            f"tokenizer counts on another scale.")


def style_score_sentence(metrics: dict[str, Any]) -> str:
    """What the brand-style scores mean, with the classifier's own trust figures."""
    scores, classifier = metrics.get("style_score") or {}, metrics.get("classifier") or {}
    brand, accuracy = scores.get("brand"), classifier.get("heldout_accuracy")
    if brand is None:
        return "There are no style scores yet: run compare first."
    named = {"tuned": "the tuned model's", "prompted": "the prompted generic model's", "generic": "the generic model's"}
    parts = [f"{named[c]} {scores[c]:.2f}" for c in ("tuned", "prompted", "generic") if scores.get(c) is not None]
    trust = (f"It is right on {accuracy:.0%} of texts it never saw (held-out brand texts and generic ones), and "
             if accuracy is not None and not math.isnan(accuracy) else "")
    return (f"The style score is a classifier's estimate of the probability that a text was written by the brand: "
            f"0.8 means it would give about 4 to 1 that it was, 0.5 that it cannot tell, 0.1 about 9 to 1 that it "
            f"was not. {trust}the brand's own held-out texts average {brand:.2f} ({odds(brand)} the brand's): "
            f"that, not 1, is the mark to compare with. Average scores here: " + ", ".join(parts) + ".")


def style_gap(per_generation, model: str = "tuned", other: str = "prompted", resamples: int = 2000,
              seed: int = 3407) -> dict[str, float]:
    """The mean style-score lead of one contender over another on the same requests, with a 95% bootstrap interval.

    Requests are resampled (with all their answers), as for the votes: one request's answers are not independent.
    """
    frame = per_generation[per_generation["model"].isin([model, other])]
    means = frame.groupby(["item_id", "model"])["style_score"].mean().unstack()
    if model not in means or other not in means:
        return {"gap": float("nan"), "low": float("nan"), "high": float("nan"), "requests": 0}
    gaps = (means[model] - means[other]).dropna().tolist()
    if not gaps:
        return {"gap": float("nan"), "low": float("nan"), "high": float("nan"), "requests": 0}
    rng = random.Random(seed)
    draws = sorted(sum(rng.choice(gaps) for _ in gaps) / len(gaps) for _ in range(resamples))
    return {"gap": sum(gaps) / len(gaps), "low": draws[int(0.025 * (resamples - 1))],
            "high": draws[math.ceil(0.975 * (resamples - 1))], "requests": len(gaps)}


def style_gap_sentence(per_generation, model: str = "tuned", other: str = "prompted") -> str:
    """By how much one contender's style score leads another's, and whether the lead is more than chance."""
    gap = style_gap(per_generation, model, other)
    name, rival = NAMES.get(model, model), NAMES.get(other, other)
    if not gap["requests"]:
        return f"There are no requests that both the {name} and the {rival} answered."
    lead = ("is ahead: even the low end of the interval is above 0" if gap["low"] > 0 else
            "is behind: even the high end of the interval is below 0" if gap["high"] < 0 else
            "cannot be told apart from it on these requests: the interval includes 0")
    return (f"On the {gap['requests']} requests both answered, the {name} scores {gap['gap']:+.2f} against the "
            f"{rival} on average (95% interval {gap['low']:+.2f} to {gap['high']:+.2f}, resampling requests). "
            f"So the {name} {lead}.")


def votes_sentence(votes: list[dict[str, Any]]) -> str:
    """The blind votes in plain words: each pair's record, win rate and interval, and what they allow one to say."""
    from .compare.votes import pair_results

    if not votes:
        return "No votes yet: vote above, then run this cell again."
    paragraphs = []
    for r in pair_results(votes):
        name, other = NAMES.get(r.model, r.model), NAMES.get(r.other, r.other)
        verdict = (f"The whole interval is above 50%: raters prefer the {name}." if r.low > 0.5 else
                   f"The whole interval is below 50%: raters prefer the {other}." if r.high < 0.5 else
                   "The interval includes 50%, so these votes cannot tell the two apart yet: more requests "
                   "narrow it (more raters on the same requests much less).")
        words = (f"The {name} against the {other}: {r.wins} wins, {r.losses} losses, {r.ties} ties and "
                 f"{r.both_bad} \"both bad\" in {r.votes} votes on {r.prompts} requests. A tie or a \"both bad\" "
                 f"counts half a win for each side: neither answer was preferred, so the vote is a draw, and it "
                 f"pulls the rate towards 50%. That makes a win rate of {r.rate:.0%}; the 95% interval, from "
                 f"resampling requests (one request's votes are not independent), runs from {r.low:.0%} to "
                 f"{r.high:.0%}. {verdict}")
        if r.votes and r.both_bad / r.votes >= 1 / 3:
            words += (" So many \"both bad\" votes say neither writes well enough yet: look at the base model "
                      "and the data.")
        if r.seen_labelled:
            words += f" ({r.seen_labelled} of these votes were cast after the rater had seen the labels.)"
        paragraphs.append(words)
    return "\n\n".join(paragraphs)


def edits_sentence(edits: list[dict[str, Any]]) -> str:
    """How much of each contender's drafts survived editing, in words."""
    from .compare.edits import edit_summary

    if not edits:
        return "No edits yet: edit a draft above, then run this cell again."
    parts = [f"the {NAMES.get(row['contender'], row['contender'])}, {row['drafts']} "
             f"draft{'s' if row['drafts'] != 1 else ''}: {row['kept']:.0%} of the characters kept, "
             f"{row['sent_unchanged']:.0%} sent unchanged, a median {row['median_seconds']:.0f} s of editing"
             for row in edit_summary(edits)]
    return ("Drafts edited until they would be sent. " + "; ".join(parts)[0].upper() + "; ".join(parts)[1:]
            + ". The more of a draft survives, the less work it left: \"nearly ready to send\", measured.")
