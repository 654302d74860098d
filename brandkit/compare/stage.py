"""The compare stage: three contenders answer the held-out requests, measured, with one verdict sentence.

Generations are cached in the run folder and reused only for the same adapter weights, prompts and
sampling settings. The model stays in the result, so the notebook's playground reuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import BrandKit, CompareConfig
from ..models import load_tuned
from .contenders import ADAPTER, CONTENDERS, LABELS, EvalItem, PromptBuilder, context_budget, eval_items, \
    training_system_prompt
from .generate import Generation, generate, heldout_perplexity, load_generations, save_generations
from .metrics import measure, style_summary


def prompt_builder(model, tokenizer, brand: BrandKit, examples, config: CompareConfig) -> PromptBuilder:
    """The contenders' prompts for this run: the training system prompt, the brand's training texts, the context."""
    return PromptBuilder(brand, tokenizer, training_system_prompt(examples), list(examples["train"]),
                         context_budget(model, tokenizer, config.max_new_tokens, config.max_prompt_tokens),
                         few_shot=config.few_shot)


def run_generations(model, tokenizer, items: list[EvalItem], config: CompareConfig, builder: PromptBuilder,
                    contenders: tuple[str, ...] = CONTENDERS, progress: bool = True) -> list[Generation]:
    rows = []
    for contender in contenders:
        asked = builder.items_for(contender, items)
        answers = generate(model, tokenizer, asked, config, ADAPTER[contender], progress=progress, label=contender)
        for item, samples in zip(asked, answers, strict=True):
            tokens = builder.length(item.messages)
            rows.extend(Generation(item.id, item.kind, item.source, item.prompt, item.reference, contender, n,
                                   answer.text, tokens, answer.finished) for n, answer in enumerate(samples))
    return rows


def compare_models(adapter_dir: str | Path, brand: BrandKit, examples, config: CompareConfig | None = None,
                   out_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Generate with the three contenders, measure them; generations are cached in out_dir."""
    config = config or CompareConfig()
    out = Path(out_dir) if out_dir is not None else None
    items = eval_items(brand, examples["heldout"], system_prompt="", max_heldout=config.max_heldout,
                       max_kit_prompts=config.max_kit_prompts)
    model, tokenizer = load_tuned(adapter_dir)
    builder = prompt_builder(model, tokenizer, brand, examples, config)
    asked = {c: builder.items_for(c, items) for c in CONTENDERS}
    key = generation_key(adapter_dir, [i for c in CONTENDERS for i in asked[c]], config)
    cached = out is not None and (out / "generations.jsonl").exists() and (out / "generations.key").exists() \
        and (out / "generations.key").read_text() == key
    if cached:
        generations = load_generations(out / "generations.jsonl")
    else:
        generations = run_generations(model, tokenizer, items, config, builder, progress=progress)
    brand_texts = [ex["messages"][-1]["content"] for ex in examples["train"]]
    heldout_texts = [ex["messages"][-1]["content"] for ex in examples["heldout"]]
    per_generation, reference, classifier = measure(generations, brand, brand_texts,
                                                    heldout_brand_texts=heldout_texts)
    summary = style_summary(per_generation, reference)
    perplexity = {"generic": heldout_perplexity(model, tokenizer, examples["heldout"], adapter=False),
                  "tuned": heldout_perplexity(model, tokenizer, examples["heldout"], adapter=True)}
    contenders = contender_table(per_generation, perplexity)
    style = per_generation.groupby("model")["style_score"].mean().to_dict()
    metrics = {
        "contenders": contenders,
        "perplexity": perplexity,
        "style_score": {**{c: style.get(c) for c in CONTENDERS}, "brand": float(reference["style_score"].mean())},
        "classifier": classifier,
        "prompt_budget": builder.budget, "simple_system_prompt": builder.simple_system,
        "style": summary.to_dict("records"),
        "prompts": len(items), "generations": len(generations), "cached": bool(cached),
    }
    metrics["verdict"] = verdict_sentence(metrics)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not cached:
            save_generations(generations, out / "generations.jsonl")
            (out / "generations.key").write_text(key)
        per_generation.to_csv(out / "per_generation.csv", index=False)
        reference.to_csv(out / "reference.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return {"generations": generations, "metrics": metrics, "per_generation": per_generation,
            "reference": reference, "summary": summary, "contenders": contenders_frame(metrics),
            "model": model, "tokenizer": tokenizer, "builder": builder}


def contender_table(per_generation, perplexity: dict[str, float]) -> list[dict[str, Any]]:
    """One row per contender: its prompt length in tokens beside its scores."""
    rows = []
    for contender in CONTENDERS:
        mine = per_generation[per_generation["model"] == contender]
        if not len(mine):
            continue
        rows.append({"contender": contender, "label": LABELS[contender],
                     "prompt_tokens": float(mine["prompt_tokens"].mean()),
                     "prompt_tokens_max": int(mine["prompt_tokens"].max()),
                     "style_score": float(mine["style_score"].mean()),
                     "style_score_median": float(mine["style_score"].median()),
                     "finished": float(mine["finished"].mean()),
                     "banned_terms": float(mine["banned_terms"].mean()),
                     "sign_off": float(mine["sign_off"].mean()),
                     "words": float(mine["words"].mean()),
                     "preferred_terms_per_100": float(mine["preferred_terms_per_100"].mean()),
                     "emoji_per_100": float(mine["emoji_per_100"].mean()),
                     "perplexity": perplexity.get(contender)})
    return rows


def contenders_frame(metrics: dict[str, Any]):
    """The contender table as a DataFrame, for the notebook (prompt tokens beside the scores)."""
    import pandas as pd

    return pd.DataFrame(metrics.get("contenders") or []).set_index("contender") if metrics.get("contenders") \
        else pd.DataFrame()


def verdict_sentence(metrics: dict[str, Any]) -> str:
    """One plain sentence: the three contenders' brand-style scores and prompt lengths, and what they mean."""
    rows = {r["contender"]: r for r in metrics.get("contenders") or []}
    if not {"generic", "prompted", "tuned"} <= set(rows):
        return "Not all three contenders were measured, so there is no verdict yet."
    tuned, prompted, generic = rows["tuned"], rows["prompted"], rows["generic"]
    classifier = metrics.get("classifier") or {}
    brand = (metrics.get("style_score") or {}).get("brand", float("nan"))
    accuracy = classifier.get("heldout_accuracy", float("nan"))
    gap = tuned["style_score"] - prompted["style_score"]
    lead = ("The tuned model sounds more like the brand than the generic model given a hand-written brand prompt"
            if gap > 0.05 else
            "The generic model given a hand-written brand prompt sounds more like the brand than the tuned model"
            if gap < -0.05 else
            "The tuned model and the generic model given a hand-written brand prompt sound about as much like the brand")
    trust = (f"the brand's own held-out texts score {brand:.2f} on a classifier that is {accuracy:.0%} accurate on "
             f"texts it was not trained on" if not math.isnan(accuracy) else f"the brand's own texts score {brand:.2f}")
    return (f"{lead}: on brand style (0 to 1) the tuned model scores {tuned['style_score']:.2f} with a "
            f"{tuned['prompt_tokens']:.0f}-token prompt, the prompted generic model {prompted['style_score']:.2f} "
            f"with a {prompted['prompt_tokens']:.0f}-token prompt, and the generic model "
            f"{generic['style_score']:.2f} with the same {generic['prompt_tokens']:.0f}-token prompt as the tuned "
            f"one ({trust}).")


def generation_key(adapter_dir: str | Path, items: list[EvalItem], config: CompareConfig) -> str:
    """Generations are reused only for the same adapter weights, prompts and sampling settings."""
    digest = hashlib.sha256()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        path = Path(adapter_dir) / name
        if path.exists():
            digest.update(path.read_bytes())
    digest.update(json.dumps([asdict(i) for i in items], sort_keys=True).encode())
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    return digest.hexdigest()
