"""Contenders: who answers the held-out requests, and with which prompt.

Three contenders answer the same requests, with one model in memory:

- generic:  the base model (adapter off) with the simple prompt a busy owner types;
- prompted: the base model with the best prompt a careful user writes by hand: the brand kit's
  voice, preferred and banned terms and sign-off, then a few of the brand's own *training* texts of
  the same kind as examples (few-shot), as many as fit the context; never a held-out text;
- tuned:    the adapter switched on, with the simple prompt it was trained with.

The simple prompt is the request with the system prompt training used (`examples.system_prompt`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import BrandKit

CONTENDERS = ("generic", "prompted", "tuned")
LABELS = {"generic": "generic model, simple prompt", "prompted": "generic model, hand-written brand prompt",
          "tuned": "tuned model, simple prompt"}
SHORT_LABELS = {"generic": "Generic", "prompted": "Generic + brand prompt", "tuned": "Tuned"}
ADAPTER = {"generic": False, "prompted": False, "tuned": True}
# the pair the owner's question is about comes first, in votes and in the report
PAIRS = (("tuned", "prompted"), ("tuned", "generic"), ("prompted", "generic"))


@dataclass
class EvalItem:
    """One prompt to answer: the messages before the answer, and the brand's own answer if known."""

    id: str
    kind: str
    source: str                      # brand_kit | heldout
    messages: list[dict[str, str]]
    reference: str = ""
    contender: str = ""              # set on the copies each contender answers

    @property
    def prompt(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def request(self) -> list[dict[str, str]]:
        """The conversation without any system prompt: what every contender is asked."""
        return [m for m in self.messages if m["role"] != "system"]


def spread_over_kinds(kinds: list[str], limit: int | None) -> list[int]:
    """Up to `limit` positions, taken a kind at a time in turn (first of each kind, then second...), in
    their original order: a short evaluation still asks for every kind of text."""
    if limit is None or limit >= len(kinds):
        return list(range(len(kinds)))
    counts: dict[str, int] = {}
    nth_of_kind = []
    for kind in kinds:
        nth_of_kind.append(counts.get(kind, 0))
        counts[kind] = nth_of_kind[-1] + 1
    in_turn = sorted(range(len(kinds)), key=lambda i: (nth_of_kind[i], i))
    return sorted(in_turn[:max(limit, 0)])


def eval_items(brand: BrandKit, heldout=None, system_prompt: str | None = None, max_heldout: int = 24,
               max_kit_prompts: int | None = None) -> list[EvalItem]:
    """The brand kit's evaluation prompts (up to max_kit_prompts, spread over kinds), then held-out
    examples (their last answer as reference)."""
    system = brand.system_prompt if system_prompt is None else system_prompt
    head = [{"role": "system", "content": system}] if system else []
    items = []
    kept = spread_over_kinds([p.kind for p in brand.eval_prompts], max_kit_prompts)
    for number, prompt in enumerate(brand.eval_prompts, 1):
        if number - 1 not in kept:
            continue
        items.append(EvalItem(f"kit-{number:02d}", prompt.kind, "brand_kit",
                              head + [{"role": "user", "content": prompt.prompt.strip()}], prompt.reference.strip()))
    for example in list(heldout or [])[:max_heldout]:
        messages = [m for m in example["messages"] if m["role"] != "system"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        items.append(EvalItem(f"held-{example['id']}", example["kind"], "heldout", head + messages[:last],
                              messages[last]["content"]))
    return items


def training_system_prompt(examples) -> str:
    """The system prompt the adapter was trained with ("" for none): the simple contenders use it too."""
    train = examples["train"]
    first = train[0]["messages"] if len(train) else []
    return next((m["content"] for m in first if m["role"] == "system"), "")


def brand_guide(brand: BrandKit) -> str:
    """The style guide a careful user pastes into the prompt: everything the brand kit says about the voice."""
    lines = [f"You write for {brand.name}" + (f", which sells {brand.sells.rstrip('.')}." if brand.sells else ".")]
    if brand.voice:
        lines.append(f"Our voice: {brand.voice}")
    if brand.preferred_terms:
        lines.append("Words we like to use: " + ", ".join(brand.preferred_terms) + ".")
    if brand.banned_terms:
        lines.append("Words we never use: " + ", ".join(brand.banned_terms) + ".")
    if brand.sign_off:
        lines.append(f"Newsletters and replies end with this sign-off: {brand.sign_off}")
    lines.append("Below are some of our own past texts of the same kind. Write the next one in exactly that voice.")
    return "\n".join(lines)


def _order(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12], 16)


@dataclass
class PromptBuilder:
    """Each contender's messages for a request, and their length in tokens.

    `budget` is the most prompt tokens the prompted contender may use: the model's context minus
    the tokens it generates. Few-shot examples are the brand's training texts of the request's kind,
    in a fixed order per kind, added while the whole prompt fits.
    """

    brand: BrandKit
    tokenizer: Any
    simple_system: str
    train: list[dict[str, Any]]
    budget: int
    few_shot: int = 3
    guide: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.guide = self.guide or brand_guide(self.brand)
        self.by_kind: dict[str, list[dict[str, Any]]] = {}
        for row in self.train:
            self.by_kind.setdefault(row["kind"], []).append(row)
        for kind, rows in self.by_kind.items():
            rows.sort(key=lambda r: _order(kind, r["id"]))

    def length(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens: the chat template applied, with the assistant's turn opened."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def simple(self, request: list[dict[str, str]]) -> list[dict[str, str]]:
        return ([{"role": "system", "content": self.simple_system}] if self.simple_system else []) + list(request)

    def prompted(self, request: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
        """Style guide, then as many of the brand's own training texts of this kind as fit, then the request."""
        system = self.guide
        messages = [{"role": "system", "content": system}, *request]
        if self.length(messages) > self.budget:  # even the guide does not fit: cut it down to what does
            ids = self.tokenizer(system, add_special_tokens=False)["input_ids"]
            spare = self.budget - self.length([{"role": "system", "content": ""}, *request])
            system = self.tokenizer.decode(ids[:max(spare - 2, 0)])
            return [{"role": "system", "content": system}, *request]
        shots: list[dict[str, str]] = []
        used = 0
        for row in self.by_kind.get(kind, []):
            if used >= self.few_shot:
                break
            turns = [m for m in row["messages"] if m["role"] != "system"]
            candidate = [{"role": "system", "content": system}, *shots, *turns, *request]
            if self.length(candidate) <= self.budget:
                shots += turns
                used += 1
        return [{"role": "system", "content": system}, *shots, *request]

    def messages(self, contender: str, request: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
        return self.prompted(request, kind) if contender == "prompted" else self.simple(request)

    def items_for(self, contender: str, items: list[EvalItem]) -> list[EvalItem]:
        """Copies of the items with this contender's messages."""
        return [replace(item, messages=self.messages(contender, item.request, item.kind), contender=contender)
                for item in items]


def context_budget(model, tokenizer, max_new_tokens: int, cap: int | None = None) -> int:
    """Prompt tokens that leave room for the answer within the model's context."""
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 2048
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        context = min(context, limit)
    budget = context - max_new_tokens
    return min(budget, cap) if cap else budget
