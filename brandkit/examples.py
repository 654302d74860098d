"""Examples: each cleaned document becomes the request a user would make, answered by the document.

The requests come from the templates below (the one place to edit them); each kind has several
wordings so the model learns the voice rather than one phrasing. The split into train, validation
and held-out is deterministic and stratified by kind; held-out examples are never trained on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .config import BrandKit, ExamplesConfig, load_stage_dataset

SPLITS = ("train", "validation", "heldout")

# {title}, {tags}, {type}, {vendor}, {document} are filled from the record; a template whose fields
# are empty for a record is not used for it. The wording stays neutral: a word in these requests is
# one the model sees at every step, and some brands ban words as common as "customers".
REQUEST_TEMPLATES: dict[str, list[str]] = {
    "email": [
        'Write a promotional email with the subject "{title}".',
        'Draft our newsletter email titled "{title}".',
        "Write an email with the subject line: {title}",
        'We need an email for our mailing list. Subject: "{title}".',
    ],
    "reply": [
        'Write our reply to a customer email about "{title}".',
        'A customer wrote to us about "{title}". Write the reply.',
    ],
    "blog": [
        'Write a blog post titled "{title}".',
        'Write a blog post titled "{title}" about {tags}.',
        'Draft an article for our blog: "{title}".',
    ],
    "product": [
        "Write a product description for {title}.",
        "Write a product description for {title}, a {type} from {vendor}.",
        "Write the shop page copy for {title} ({type}). Tags: {tags}.",
    ],
    "manual": [
        'Write the section "{title}" of our {document}.',
        'Write the "{title}" section of our help pages.',
        "Explain {title} for our guide.",
    ],
    "page": [
        'Write the "{title}" page for our website.',
        'Write our website\'s "{title}" page.',
    ],
    "other": [
        'Write "{title}" in our usual voice.',
        'Write a short text titled "{title}".',
    ],
}
FALLBACK_REQUEST = "Write a short piece in our usual voice."


def _stable_hash(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12], 16)


def _fields(record: dict[str, Any]) -> dict[str, str]:
    extra = record.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra or "{}")
    title = re.sub(r"^(re|fwd?|aw|tr)\s*:\s*", "", (record.get("title") or "").strip(), flags=re.I)
    return {"title": title, "tags": ", ".join(record.get("tags") or []),
            "type": str(extra.get("type") or ""), "vendor": str(extra.get("vendor") or ""),
            "document": str(extra.get("document") or "guide")}


def request_for(record: dict[str, Any]) -> str:
    """The user's request that the record answers, worded by one of its kind's templates."""
    kind = record["kind"]
    if kind == "email" and re.match(r"^\s*re\s*:", record.get("title") or "", flags=re.I):
        kind = "reply"
    fields = _fields(record)
    usable = [t for t in REQUEST_TEMPLATES.get(kind, REQUEST_TEMPLATES["other"])
              if all(fields.get(name) for name in re.findall(r"{(\w+)}", t))]
    if not usable:
        return FALLBACK_REQUEST
    template = usable[_stable_hash(record["id"], "template") % len(usable)]
    return template.format(**fields)


def chat_messages(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """Customer turns become the user, staff turns the assistant; same-role turns are joined."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        role = "assistant" if turn.get("role") == "staff" else "user"
        text = (turn.get("text") or "").strip()
        if not text:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    while messages and messages[0]["role"] == "assistant":  # a chat must open with the customer
        messages.pop(0)
    while messages and messages[-1]["role"] == "user":      # and end on a staff answer
        messages.pop()
    return messages


def to_messages(record: dict[str, Any], system_prompt: str = "") -> list[dict[str, str]]:
    """One record as a chat: optional system prompt, the request, the document as the answer."""
    if record["kind"] == "chat" and record.get("turns"):
        body = chat_messages(record["turns"])
    else:
        body = [{"role": "user", "content": request_for(record)},
                {"role": "assistant", "content": record["text"].strip()}]
    if not any(m["role"] == "assistant" for m in body):
        return []
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + body


def split_of(ids_by_kind: dict[str, list[str]], config: ExamplesConfig) -> dict[str, str]:
    """Deterministic split, stratified by kind: each kind's documents ordered by a seeded hash."""
    assignment = {}
    for kind, ids in ids_by_kind.items():
        ordered = sorted(ids, key=lambda i: _stable_hash(str(config.seed), i))
        n = len(ordered)
        n_held = round(n * config.heldout_share) if n >= 5 else 0
        n_val = round(n * config.validation_share) if n >= 5 else 0
        n_held, n_val = max(n_held, 1 if n >= 5 else 0), max(n_val, 1 if n >= 8 else 0)
        for position, doc_id in enumerate(ordered):
            assignment[doc_id] = ("heldout" if position < n_held
                                  else "validation" if position < n_held + n_val else "train")
    return assignment


def system_prompt_for(brand: BrandKit | None, setting: str | None) -> str:
    """The system prompt examples.system_prompt names: "short" (one line), "brand" (the kit's long one),
    "none", or the text itself. None means "brand" (what configs written before the setting meant)."""
    key = "brand" if setting is None else setting.strip()
    if key.lower() == "short":
        return f"You write for {brand.name}." if brand else ""
    if key.lower() == "brand":
        return brand.system_prompt if brand else ""
    if key.lower() in ("none", ""):
        return ""
    return key


def build_examples(cleaned, brand: BrandKit | None = None, config: ExamplesConfig | None = None):
    """A DatasetDict (train / validation / heldout) of chat examples from cleaned records."""
    from datasets import Dataset, DatasetDict

    config = config or ExamplesConfig()
    system_prompt = system_prompt_for(brand, config.system_prompt)
    rows = []
    for record in cleaned:
        messages = to_messages(record, system_prompt)
        if messages:
            rows.append({"id": record["id"], "kind": record["kind"], "title": record.get("title") or "",
                         "messages": messages})
    ids_by_kind: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        ids_by_kind[row["kind"]].append(row["id"])
    assignment = split_of(ids_by_kind, config)
    return DatasetDict({split: Dataset.from_list([r for r in rows if assignment[r["id"]] == split] or [],
                                                 features=example_features())
                        for split in SPLITS})


def example_features():
    from datasets import Features, List, Value

    return Features({"id": Value("string"), "kind": Value("string"), "title": Value("string"),
                     "messages": List({"role": Value("string"), "content": Value("string")})})


def split_counts(examples) -> dict[str, dict[str, int]]:
    return {split: dict(Counter(examples[split]["kind"])) for split in examples}


def save_examples(examples, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples.save_to_disk(str(out / "examples"))
    paths = {"examples_dataset": out / "examples"}
    for split in examples:
        path = out / f"{split}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for row in examples[split]:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[f"{split}_jsonl"] = path
    return paths


def load_examples(path: str | Path):
    return load_stage_dataset(path, "examples")
