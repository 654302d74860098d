"""Clean: from "our sent folder" to text a model should learn from, with a reason for every change.

Steps, in order (each can be switched off or tuned in CleanConfig):

1. fix_unicode      mojibake repair and whitespace normalisation (ftfy)
2. html_to_text     main content for pages and blog posts (trafilatura), whole body otherwise (inscriptis)
3. strip_email      quoted replies, forwarded headers, signatures, legal disclaimers (mail-parser-reply)
4. strip_boilerplate  marketing footers, and lines that repeat across many documents (learned)
5. redact_pii       personal data to typed placeholders ([EMAIL], [PHONE], [CARD], [PERSON], ...), offline;
   redact_metadata  the same in every other column (title, author, tags, source, extra), personal keys dropped
6. quality          too short, too long (the minimum length depends on the kind), not enough letters,
                    mostly placeholders
7. language         not in the brand's language (lingua, models bundled), when lingua is sure
8. dedupe_exact / dedupe_near  identical and near-identical texts (MinHash LSH), the earliest copy kept

The input dataset is never modified: each step makes a new dataset, and every document a step
changes or drops gets an audit entry (step, action, reason, a before/after sample). Per-document
steps run through ``datasets.map`` with ``num_proc`` so large collections use every core.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..collect import write_jsonl
from ..config import BrandKit, CleanConfig, load_stage_dataset
from .audit import AUDIT, DROPPED, Change, DocStep, apply_change, audit_entry
from .dedupe import earliest_first, exact_duplicates, minhash_signature, near_duplicates
from .steps import (
    _language_detector,
    _redactor,
    learn_boilerplate,
    line_keys,
    step_fix_unicode,
    step_html_to_text,
    step_language,
    step_quality,
    step_redact_metadata,
    step_redact_pii,
    step_strip_boilerplate,
    step_strip_email,
)

CHANGING = ("text", "turns", "format", "title", "author", "tags", "source", "extra", AUDIT, DROPPED)


def run_steps(batch: dict[str, list], steps: list[tuple[str, DocStep]], config: CleanConfig,
              signatures: bool = False, lines: bool = False) -> dict[str, list]:
    """Several per-document steps fused into one pass over a batch (one datasets.map, not one per step).

    With signatures=True the pass also computes each kept text's MinHash signature for the
    near-duplicate step, so that step needs no pass of its own.
    """
    extra = (("_sig",) if signatures else ()) + (("_lines",) if lines else ())
    out: dict[str, list] = {name: [] for name in CHANGING + extra}
    for i in range(len(batch["id"])):
        row = {name: values[i] for name, values in batch.items()}
        row[AUDIT] = list(row[AUDIT])
        for name, func in steps:
            if row[DROPPED]:
                break
            apply_change(row, name, func(row, config))
        for name in CHANGING:
            out[name].append(row[name])
        if signatures:  # packed as bytes: far cheaper to move between processes than 128 Python ints
            out["_sig"].append(b"" if row[DROPPED] else
                               minhash_signature(row["text"], config.num_perm, config.shingle_words))
        if lines:
            out["_lines"].append([] if row[DROPPED] else line_keys(row["text"]))
    return out


# --------------------------------------------------------------------------- the pipeline

@dataclass
class StepCount:
    step: str
    docs_in: int
    changed: int
    dropped: int

    @property
    def docs_out(self) -> int:
        return self.docs_in - self.dropped


@dataclass
class CleanResult:
    """The cleaned dataset, what was dropped, the audit log, and counts per step."""

    dataset: Any
    dropped: Any
    audit: list[dict[str, Any]]
    steps: list[StepCount] = field(default_factory=list)

    def summary(self) -> str:
        docs_in = self.steps[0].docs_in if self.steps else len(self.dataset)
        drops = "; ".join(f"{s.step} -{s.dropped}" for s in self.steps if s.dropped)
        return f"{docs_in} documents in, {len(self.dataset)} out ({drops or 'none dropped'})"

    def steps_frame(self):
        import pandas as pd

        return pd.DataFrame([{**asdict(s), "docs_out": s.docs_out} for s in self.steps])

    def kinds_frame(self):
        """Documents in and out per kind."""
        import pandas as pd

        out = Counter(self.dataset["kind"])
        dropped = Counter(self.dropped["kind"]) if len(self.dropped) else Counter()
        kinds = sorted(set(out) | set(dropped))
        return pd.DataFrame([{"kind": k, "docs_in": out[k] + dropped[k], "dropped": dropped[k], "docs_out": out[k]}
                             for k in kinds])

    def redaction(self) -> dict[str, Any]:
        """What personal data was found, and the share of the kept text it covered."""
        entities: Counter = Counter()
        chars = 0
        for entry in self.audit:
            if entry["step"] == "redact_pii":
                entities.update(entry.get("details", {}).get("entities", {}))
                chars += entry.get("details", {}).get("redacted_chars", 0)
        total = sum(len(t) for t in self.dataset["text"]) or 1
        return {"entities": dict(entities), "redacted_chars": chars, "share": chars / total}

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), "steps": [{**asdict(s), "docs_out": s.docs_out} for s in self.steps],
                "kinds": self.kinds_frame().to_dict("records"), "redaction": self.redaction()}

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"cleaned_jsonl": out / "cleaned.jsonl", "cleaned_dataset": out / "cleaned",
                 "audit": out / "audit.jsonl", "report": out / "clean_report.json"}
        write_jsonl(paths["cleaned_jsonl"], iter(self.dataset))
        self.dataset.save_to_disk(str(paths["cleaned_dataset"]))
        write_jsonl(paths["audit"], self.audit)
        paths["report"].write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        return paths


def workers(config: CleanConfig, size: int) -> int | None:
    if config.num_proc is not None:
        return config.num_proc if config.num_proc > 1 else None
    return min(os.cpu_count() or 1, 8) if size >= 2000 else None  # processes only pay off on big inputs


STEP_ORDER = ("fix_unicode", "html_to_text", "strip_email", "strip_boilerplate", "redact_pii", "redact_metadata",
              "quality", "language", "dedupe_exact", "dedupe_near")


def clean(records, config: CleanConfig | None = None, brand: BrandKit | None = None) -> CleanResult:
    """Run the cleaning steps over collected records (a datasets.Dataset, which is left unchanged).

    Two fused passes over the data (the boilerplate step needs to learn from the result of the
    first), then the corpus-wide duplicate steps.
    """
    config = config or CleanConfig()
    language = (config.language or (brand.language if brand else "en") or "en").lower()
    keep = tuple(t for t in [*(brand.public_terms() if brand else []), *config.keep_names,
                             *product_names(records)] if t)
    sign_off = tuple(l.strip() for l in re.split(r"[\n,]", brand.sign_off) if l.strip()) if brand else ()
    num_proc = workers(config, len(records))
    if num_proc:
        warm_up(config, language, keep)
    ds = records.add_column(AUDIT, [[] for _ in range(len(records))]).add_column(DROPPED, [""] * len(records))

    def fused(ds, steps: list[tuple[str, DocStep]], desc: str, signatures: bool = False, lines: bool = False):
        if not (steps or signatures or lines):
            return ds
        return ds.map(run_steps, batched=True, batch_size=1000, desc=desc, num_proc=num_proc,
                      fn_kwargs={"steps": steps, "config": config, "signatures": signatures, "lines": lines})

    first = [(name, func) for name, switch, func in (
        ("fix_unicode", config.fix_unicode, step_fix_unicode),
        ("html_to_text", config.html_to_text, step_html_to_text),
        ("strip_email", config.strip_email, functools.partial(step_strip_email, languages=(language,))),
    ) if switch]
    ds = fused(ds, first, "Repairing text", lines=config.strip_boilerplate)
    learned: frozenset = frozenset()
    if config.strip_boilerplate:
        counted = ds.select_columns(["_lines", DROPPED]).to_dict()
        alive = sum(1 for reason in counted[DROPPED] if not reason)
        learned = frozenset(learn_boilerplate(counted["_lines"], alive, config, list(sign_off)))
        ds = ds.remove_columns(["_lines"])
    names = config.redact_pii and "PERSON" in config.pii_entities
    vocabulary = tuple(published_vocabulary(ds, config)) if names else ()
    second = [(name, func) for name, switch, func in (
        ("strip_boilerplate", config.strip_boilerplate,
         functools.partial(step_strip_boilerplate, learned=learned, keep=sign_off)),
        ("redact_pii", config.redact_pii, functools.partial(step_redact_pii, keep=keep, vocabulary=vocabulary)),
        ("redact_metadata", config.redact_pii,
         functools.partial(step_redact_metadata, keep=keep, vocabulary=vocabulary)),
        ("quality", config.filter_quality, step_quality),
        ("language", config.filter_language, functools.partial(step_language, language=language)),
    ) if switch]
    ds = fused(ds, second, "Stripping, redacting, filtering", signatures=config.dedupe_near)

    # Corpus-wide duplicates, on plain lists: no pass over the data is needed to mark them.
    columns = ds.select_columns(["id", "text", "source", "kind", "date", AUDIT, DROPPED]
                                + (["_sig"] if config.dedupe_near else [])).to_dict()
    ids, texts, reasons = columns["id"], columns["text"], columns[DROPPED]
    audits = [[json.loads(e) for e in entries] for entries in columns[AUDIT]]
    order = earliest_first(columns["date"]) if (config.dedupe_exact or config.dedupe_near) else []
    for name, switch in (("dedupe_exact", config.dedupe_exact), ("dedupe_near", config.dedupe_near)):
        if not switch:
            continue
        alive = [not r for r in reasons]
        drops = (exact_duplicates(texts, ids, alive, order) if name == "dedupe_exact"
                 else near_duplicates(columns["_sig"], ids, alive, order, config))
        for index, (original, why) in drops.items():
            change = Change(f"{why} of {original}", drop=True, duplicate_of=original)
            row = {"id": ids[index], "source": columns["source"][index], "kind": columns["kind"][index]}
            reasons[index] = f"{name}: {change.reason}"
            audits[index].append(json.loads(audit_entry(row, name, change, texts[index], "")))

    steps = step_counts(audits, len(ds), [n for n in STEP_ORDER if enabled(config, n)])
    dropped_rows = [i for i, r in enumerate(reasons) if r]
    kept_rows = [i for i, r in enumerate(reasons) if not r]
    plain = ds.remove_columns([AUDIT, DROPPED] + (["_sig"] if config.dedupe_near else []))
    dropped = plain.add_column(DROPPED, reasons).select(dropped_rows)
    return CleanResult(dataset=plain.select(kept_rows), dropped=dropped,
                       audit=[entry for entries in audits for entry in entries], steps=steps)


def published_vocabulary(ds, config: CleanConfig) -> list[str]:
    """Proper names in the brand's published copy (the kinds NER does not read) and their titles."""
    from .redact import published_names

    columns = ds.select_columns(["kind", "title", "text", DROPPED]).to_dict()
    published = [i for i, (kind, reason) in enumerate(zip(columns["kind"], columns[DROPPED]))
                 if kind not in config.ner_kinds and not reason]
    titles = [columns["title"][i] for i in published]
    return published_names([columns["text"][i] for i in published] + titles) + [t.strip() for t in titles if t.strip()]


def product_names(records) -> list[str]:
    """The brand's own product titles (a shop export's): never taken for a person's name."""
    if "kind" not in records.column_names:
        return []
    columns = records.select_columns(["kind", "title"]).to_dict()
    return sorted({t.strip() for k, t in zip(columns["kind"], columns["title"]) if k == "product" and t and t.strip()})


def warm_up(config: CleanConfig, language: str, keep: tuple[str, ...]) -> None:
    """Load the heavy libraries and models once, here: forked worker processes inherit them."""
    import ftfy  # noqa: F401
    import inscriptis  # noqa: F401
    import mailparser_reply.parser  # noqa: F401
    import trafilatura  # noqa: F401

    if config.redact_pii:
        _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep).find(
            "Warm up: call +1 555-0100, write to a@example.com, card 4242 4242 4242 4242, at 1 High Street. "
            "Thanks, Zorbla Quenby here.", ner="PERSON" in config.pii_entities and bool(config.ner_kinds))
    if config.filter_language:
        detector = _language_detector(language)
        for sample in ("Bonjour, merci pour votre commande.", "Hola, gracias por su pedido de hoy.",
                       "Hallo, vielen Dank für Ihre Bestellung.", "Thank you for your order today."):
            detector.detect_language_of(sample)


def enabled(config: CleanConfig, step: str) -> bool:
    switch = {"quality": "filter_quality", "language": "filter_language",
              "redact_metadata": "redact_pii"}.get(step, step)
    return bool(getattr(config, switch))


def step_counts(audits: list[list[dict[str, Any]]], total: int, steps: list[str]) -> list[StepCount]:
    """Documents in, changed and dropped per step, read back from the audit log."""
    changed = Counter(e["step"] for entries in audits for e in entries if e["action"] == "changed")
    dropped = Counter(e["step"] for entries in audits for e in entries if e["action"] == "dropped")
    counts, alive = [], total
    for step in steps:
        counts.append(StepCount(step, alive, changed[step], dropped[step]))
        alive -= dropped[step]
    return counts


def load_cleaned(path: str | Path):
    return load_stage_dataset(path, "cleaned")
