"""Clean: from "our sent folder" to text a model should learn from, with a reason for every change.

Steps, in order (each can be switched off or tuned in CleanConfig):

1. fix_unicode      mojibake repair and whitespace normalisation (ftfy)
2. html_to_text     main content for pages and blog posts (trafilatura), whole body otherwise (inscriptis)
3. strip_email      quoted replies, forwarded headers, signatures, legal disclaimers (mail-parser-reply)
4. strip_boilerplate  marketing footers, and lines that repeat across many documents (learned)
5. redact_pii       personal data to typed placeholders ([EMAIL], [PHONE], [CARD], ...), offline
6. quality          too short, too long, not enough letters, mostly placeholders
7. language         not in the brand's language (lingua, models bundled)
8. dedupe_exact / dedupe_near  identical and near-identical texts (MinHash LSH), the earliest copy kept

The input dataset is never modified: each step makes a new dataset, and every document a step
changes or drops gets an audit entry (step, action, reason, a before/after sample). Per-document
steps run through ``datasets.map`` with ``num_proc`` so large collections use every core.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .collect import html_to_text as whole_html_to_text
from .collect import render_turns, write_jsonl
from .config import BrandKit, CleanConfig

AUDIT = "_audit"    # per-document list of JSON audit entries, carried through the steps
DROPPED = "_drop"   # why a document was dropped ("" = kept)


@dataclass
class Change:
    """A step's verdict on one document: new text (or turns), or a reason to drop it."""

    reason: str
    text: str | None = None
    turns: list[dict[str, str]] | None = None
    drop: bool = False
    duplicate_of: str = ""
    format: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


DocStep = Callable[[dict[str, Any], CleanConfig], "Change | None"]


def map_texts(row: dict[str, Any], func: Callable[[str], str]) -> tuple[str, list[dict[str, str]]]:
    """Apply a text function to a document: to each turn of a chat, else to its text."""
    if row["turns"]:
        turns = [{**t, "text": func(t["text"])} for t in row["turns"]]
        return render_turns(turns), turns
    return func(row["text"]), []


def excerpt_pair(before: str, after: str, width: int = 160) -> tuple[str, str]:
    """Short before/after samples around the first place the texts differ."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, _i2, j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            start_b, start_a = max(0, i1 - width // 4), max(0, j1 - width // 4)
            return before[start_b:start_b + width], after[start_a:start_a + width]
    return before[:width], after[:width]


def audit_entry(row: dict[str, Any], step: str, change: Change, before: str, after: str) -> str:
    entry: dict[str, Any] = {"id": row["id"], "source": row["source"], "kind": row["kind"], "step": step,
                             "action": "dropped" if change.drop else "changed", "reason": change.reason}
    if change.drop:
        entry["before"] = before[:200]
    else:
        entry["before"], entry["after"] = excerpt_pair(before, after)
    if change.duplicate_of:
        entry["duplicate_of"] = change.duplicate_of
    if change.details:
        entry["details"] = change.details
    return json.dumps(entry, ensure_ascii=False)


def _apply_row(row: dict[str, Any], step: str, func: DocStep, config: CleanConfig) -> dict[str, Any]:
    if row[DROPPED]:
        return {}
    change = func(row, config)
    if change is None:
        return {}
    before = row["text"]
    if change.drop:
        return {DROPPED: f"{step}: {change.reason}", AUDIT: row[AUDIT] + [audit_entry(row, step, change, before, "")]}
    text, turns = change.text, change.turns
    if turns is not None:
        text = render_turns(turns)
    if text is None or (text == before and change.format is None):
        return {}
    out: dict[str, Any] = {"text": text}
    if text != before:
        out[AUDIT] = row[AUDIT] + [audit_entry(row, step, change, before, text)]
    if turns is not None:
        out["turns"] = turns
    if change.format is not None:
        out["format"] = change.format
    return out


# --------------------------------------------------------------------------- 1. unicode

def normalise_whitespace(text: str) -> str:
    """Unix newlines, no trailing spaces, single spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\u200b", "")
    text = "\n".join(re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def step_fix_unicode(row: dict[str, Any], config: CleanConfig) -> Change | None:
    import ftfy

    repaired = []

    def fix(text: str) -> str:
        fixed = normalise_whitespace(ftfy.fix_text(text, uncurl_quotes=False, normalization="NFC"))
        if fixed != normalise_whitespace(text):
            repaired.append(True)
        return fixed

    text, turns = map_texts(row, fix)
    reason = "repaired mojibake / broken Unicode (ftfy)" if repaired else "normalised whitespace"
    return Change(reason, text=text, turns=turns or None)


# --------------------------------------------------------------------------- 2. HTML

SHORTCODE_PAIR = re.compile(r"\[(caption|embed|video|audio)[^\]]*\].*?\[/\1\]", re.S)
SHORTCODE = re.compile(r"\[/?[a-z][\w\-]*(?:\s[^\]]*)?\]")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def main_content(html: str) -> str:
    """The main text of a page or post (trafilatura), falling back to the whole body."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True) or ""
    # trafilatura puts one paragraph per line; a blank line between them keeps the shape of the post
    return re.sub(r"\n+", "\n\n", text) if text.strip() else whole_html_to_text(html)


def step_html_to_text(row: dict[str, Any], config: CleanConfig) -> Change | None:
    if row["format"] != "html":
        return None
    html = HTML_COMMENT.sub("", row["text"])                     # Gutenberg block markers
    html = SHORTCODE.sub("", SHORTCODE_PAIR.sub("", html))         # [caption]...[/caption], [gallery ...]
    if row["kind"] in ("page", "blog"):
        text, how = main_content(f"<html><body><article>{html}</article></body></html>"), "main content"
    else:
        text, how = whole_html_to_text(html), "whole body"
    return Change(f"HTML converted to text ({how})", text=normalise_whitespace(text), format="text")


# --------------------------------------------------------------------------- 3. email

SIGNATURE_DELIMITER = re.compile(r"^--\s*$", re.M)
FORWARD_MARKER = re.compile(r"^-{3,}\s*(?:Forwarded message|Original Message|Begin forwarded message)\b.*$",
                            re.M | re.I)
DISCLAIMER = re.compile(r"^(?:CONFIDENTIAL(?:ITY)? NOTICE|DISCLAIMER|This (?:e-?mail|message) (?:and any "
                        r"attachments )?(?:is|are) (?:confidential|intended)).*?(?:\n\n|\Z)", re.M | re.I | re.S)
MOBILE_FOOTER = re.compile(r"^Sent from my \w+.*$", re.M)


def step_strip_email(row: dict[str, Any], config: CleanConfig, languages: tuple[str, ...] = ("en",)) -> Change | None:
    """Keep the newest message of a thread; drop quotes, forwards, signatures and disclaimers.

    mail-parser-reply splits the thread at reply headers ("On ... wrote:", Outlook blocks). Its
    signature rules would also cut a brand's sign-off ("Kind regards, ..."), which is part of the
    voice, so signatures are cut only at the standard "-- " delimiter.
    """
    if row["kind"] != "email":
        return None
    from mailparser_reply.parser import EmailMessage

    text = row["text"]
    message = EmailMessage(text=text, languages=list(languages), keep_hyphen_lists=True).read()
    newest = message.replies[0].content if message.replies else text
    removed = []
    if len(message.replies) > 1:
        removed.append("forwarded message" if FORWARD_MARKER.search(newest) else "quoted reply")
    newest = FORWARD_MARKER.split(newest)[0] if FORWARD_MARKER.search(newest) else newest
    newest = re.sub(r"(?m)^>.*\n?", "", newest) if newest.count("\n>") > 2 else newest  # inline quoting
    signature = SIGNATURE_DELIMITER.search(newest)
    if signature:
        newest, tail = newest[:signature.start()], newest[signature.start():]
        removed += ["signature"] + (["legal disclaimer"] if DISCLAIMER.search(tail) else [])
    if DISCLAIMER.search(newest):
        newest, removed = DISCLAIMER.sub("", newest), removed + ["legal disclaimer"]
    if MOBILE_FOOTER.search(newest):
        newest, removed = MOBILE_FOOTER.sub("", newest), removed + ["'Sent from' line"]
    newest = normalise_whitespace(newest)
    if not removed or newest == text:
        return None
    return Change(f"removed {', '.join(removed)}", text=newest)


# --------------------------------------------------------------------------- 4. boilerplate

MARKETING_LINE = re.compile(
    r"unsubscribe|view (?:this )?(?:e-?mail )?in (?:your |a |the )?browser|update (?:your )?preferences|"
    r"manage (?:your )?(?:subscription|preferences)|you(?:'re| are) receiving this|"
    r"(?:sent|delivered) to you because|add us to your address book|all rights reserved|^-{3,}$", re.I)


def line_key(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip().lower())


def learn_boilerplate(ds, config: CleanConfig, keep: list[str]) -> set[str]:
    """Lines that repeat across many documents (footers, legal lines), minus the brand's sign-off."""
    counts: Counter = Counter()
    alive = 0
    for text, dropped in zip(ds["text"], ds[DROPPED], strict=True):
        if dropped:
            continue
        alive += 1
        counts.update({line_key(l) for l in text.splitlines() if len(line_key(l)) >= 12})
    floor = max(config.boilerplate_min_docs, int(config.boilerplate_min_share * alive))
    protected = [line_key(k) for k in keep if k]
    return {line for line, n in counts.items() if n >= floor
            and not any(line in p or p in line for p in protected if len(p) >= 4)}


def step_strip_boilerplate(row: dict[str, Any], config: CleanConfig, learned: frozenset = frozenset(),
                           keep: tuple[str, ...] = ()) -> Change | None:
    """Marketing lines anywhere; learned repeated lines only at the document's top and bottom edges.

    Footers and headers sit at the edges. A repeated line in the middle of a text is content, and
    a document that is mostly repeated lines is left to the duplicate steps.
    """
    marketing = repeated = 0
    protected = [line_key(k) for k in keep if k]

    def strip(text: str) -> str:
        nonlocal marketing, repeated
        lines = text.splitlines()
        flags = []
        for line in lines:
            key = line_key(line)
            is_protected = any(key in p or p in key for p in protected if len(p) >= 4) if key else False
            flags.append("marketing" if key and not is_protected and MARKETING_LINE.search(line)
                         else "learned" if key in learned and not is_protected else "")
        edge = set()
        for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
            for i in order:
                if flags[i] or not lines[i].strip():
                    edge.add(i)
                else:
                    break
        learned_words = sum(word_count(lines[i]) for i in edge if flags[i] == "learned")
        if learned_words * 2 > word_count(text):
            edge = {i for i in edge if flags[i] != "learned"}
        drop = {i for i, flag in enumerate(flags) if flag == "marketing"} | {i for i in edge if flags[i] == "learned"}
        marketing += sum(1 for i in drop if flags[i] == "marketing")
        repeated += sum(1 for i in drop if flags[i] == "learned")
        return normalise_whitespace("\n".join(line for i, line in enumerate(lines) if i not in drop))

    text, turns = map_texts(row, strip)
    if not (marketing or repeated):
        return None
    parts = ([f"{marketing} marketing footer line(s) (unsubscribe, view in browser, ...)"] if marketing else []) + (
        [f"{repeated} line(s) repeated across many documents"] if repeated else [])
    return Change("removed " + " and ".join(parts), text=text, turns=turns or None)


# --------------------------------------------------------------------------- 5. personal data

@functools.lru_cache(maxsize=4)
def _redactor(entities: tuple[str, ...], regions: tuple[str, ...], keep: tuple[str, ...]):
    from .redact import Redactor

    return Redactor(entities, regions, keep)


def known_people(row: dict[str, Any]) -> list[str]:
    """Names the export itself tells us: the chat's customer, the email's recipient."""
    extra = json.loads(row.get("extra") or "{}")
    names = [extra.get("customer", "")]
    names += [t.get("author", "") for t in row["turns"] or [] if t.get("role") == "customer"]
    recipient = str(extra.get("to", ""))
    match = re.match(r'\s*"?([^"<@]+?)"?\s*<', recipient)
    if match:
        names.append(match.group(1))
    return [n for n in names if n]


def step_redact_pii(row: dict[str, Any], config: CleanConfig, keep: tuple[str, ...] = ()) -> Change | None:
    redactor = _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep)
    people = known_people(row)
    total: Counter = Counter()
    redacted_chars = 0

    def redact(text: str) -> str:
        nonlocal redacted_chars
        findings = redactor.find(text, people)
        total.update(f.entity for f in findings)
        redacted_chars += sum(f.end - f.start for f in findings)
        return redactor.redact(text, people)[0] if findings else text

    text, turns = map_texts(row, redact)
    if not total:
        return None
    turns = [{**t, "author": "[PERSON]" if t.get("role") == "customer" else t.get("author", "")}
             for t in turns] if turns else None
    summary = ", ".join(f"{n} {entity}" for entity, n in total.most_common())
    return Change(f"redacted personal data: {summary}", text=text, turns=turns,
                  details={"entities": dict(total), "redacted_chars": redacted_chars})


# --------------------------------------------------------------------------- 6. quality

def step_quality(row: dict[str, Any], config: CleanConfig) -> Change | None:
    """Length and quality rules tuned for business text: a 12-word reply is fine, a 'Thanks!' is not."""
    from .redact import placeholder_share

    body = row["text"] if not row["turns"] else "\n".join(t["text"] for t in row["turns"])
    words = word_count(body)
    if words < config.min_words:
        return Change(f"too short to teach anything ({words} words, minimum {config.min_words})", drop=True)
    if words > config.max_words:
        return Change(f"too long ({words} words, maximum {config.max_words})", drop=True)
    visible = [c for c in body if not c.isspace()]
    alpha = sum(c.isalpha() for c in visible) / len(visible) if visible else 0.0
    if alpha < config.min_alpha_share:
        return Change(f"mostly not words ({alpha:.0%} letters, minimum {config.min_alpha_share:.0%})", drop=True)
    share = placeholder_share(body)
    if share > config.max_placeholder_share:
        return Change(f"mostly personal data ({share:.0%} of words redacted)", drop=True)
    if row["kind"] == "chat" and not any(t.get("role") == "staff" for t in row["turns"]):
        return Change("chat without a staff answer", drop=True)
    return None


# --------------------------------------------------------------------------- 7. language

LANGUAGES = ("EN", "ES", "FR", "DE", "IT", "PT", "NL", "PL", "SV", "DA")


@functools.lru_cache(maxsize=2)
def _language_detector(brand_language: str):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = set(LANGUAGES) | {brand_language.upper()}
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code)) for code in codes
                 if hasattr(IsoCode639_1, code)]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def language_verdicts(texts: list[str], language: str) -> list[str]:
    """For each text, "" if it is in `language` (or too short to tell), else the language it is in."""
    detector = _language_detector(language)
    samples = [re.sub(r"\[[A-Z_]+\]|https?://\S+", " ", t)[:1500] for t in texts]
    # One at a time: lingua's parallel API starts a thread pool, and a pool inherited by a forked
    # datasets worker deadlocks. num_proc gives the parallelism instead.
    detected = [detector.detect_language_of(sample) for sample in samples]
    out = []
    for sample, found in zip(samples, detected, strict=True):
        code = found.iso_code_639_1.name.lower() if found is not None else ""
        out.append(code if code and code != language.lower() and word_count(sample) >= 6 else "")
    return out


def mark_language(ds, language: str, num_proc: int | None):
    def apply(batch):
        verdicts = language_verdicts(batch["text"], language)
        drops, audits = [], []
        for i, verdict in enumerate(verdicts):
            if batch[DROPPED][i] or not verdict:
                drops.append(batch[DROPPED][i])
                audits.append(batch[AUDIT][i])
                continue
            row = {k: batch[k][i] for k in ("id", "source", "kind", "text")}
            change = Change(f"not in the brand's language ({verdict}, expected {language})", drop=True)
            drops.append(f"language: {change.reason}")
            audits.append(batch[AUDIT][i] + [audit_entry(row, "language", change, row["text"], "")])
        return {DROPPED: drops, AUDIT: audits}

    return ds.map(apply, batched=True, batch_size=256, desc="language", num_proc=num_proc)


# --------------------------------------------------------------------------- 8. duplicates

def content_key(text: str) -> str:
    """What counts as the same document: identical text ignoring case and spacing."""
    return hashlib.sha256(re.sub(r"\s+", " ", text).strip().lower().encode()).hexdigest()


def shingles(text: str, size: int) -> list[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) <= size:
        return [" ".join(words).encode()]
    return [" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)]


MINHASH_SCHEME = "affine32"


def _crc32(data: bytes) -> int:
    return zlib.crc32(data)


def minhash_signature(text: str, num_perm: int, size: int) -> list[int]:
    """A MinHash signature (datasketch) of a text's word shingles; crc32 keeps it fast and stable."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, hashfunc=_crc32, seed=1, scheme=MINHASH_SCHEME)
    minhash.update_batch(shingles(text, size))
    return minhash.hashvalues.tolist()


def earliest_first(ds) -> list[int]:
    """Row order for keeping "the earliest copy": by date where known, then as collected."""
    dates = [str(d or "").replace("T", " ")[:19] or "9999" for d in ds["date"]]
    return sorted(range(len(ds)), key=lambda i: (dates[i], i))


def exact_duplicates(ds, order: list[int]) -> dict[int, tuple[str, str]]:
    """Row index -> (id of the kept copy, reason) for every later copy of an identical text."""
    keys = [content_key(t) for t in ds["text"]]
    first: dict[str, str] = {}
    drops = {}
    dropped, ids = ds[DROPPED], ds["id"]
    for index in order:
        if dropped[index]:
            continue
        if keys[index] in first:
            drops[index] = (first[keys[index]], "exact duplicate")
        else:
            first[keys[index]] = ids[index]
    return drops


def near_duplicates(ds, order: list[int], config: CleanConfig, num_proc: int | None) -> dict[int, tuple[str, str]]:
    """MinHash LSH: each document is checked against those kept before it (linear in documents)."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    signatures = ds.map(lambda r: {"_sig": minhash_signature(r["text"], config.num_perm, config.shingle_words)
                                   if not r[DROPPED] else []},
                        desc="MinHash signatures", num_proc=num_proc)["_sig"]
    # Candidates come from a looser band setting (few missed pairs); the estimate decides.
    lsh = MinHashLSH(threshold=max(0.5, config.near_dup_threshold - 0.15), num_perm=config.num_perm,
                     weights=(0.3, 0.7))
    kept: dict[str, Any] = {}
    drops = {}
    ids = ds["id"]
    for index in order:
        if not signatures[index]:
            continue
        minhash = MinHash(num_perm=config.num_perm, hashvalues=np.array(signatures[index], dtype=np.uint64),
                          seed=1, scheme=MINHASH_SCHEME)
        best, best_sim = None, 0.0
        for candidate in lsh.query(minhash):
            similarity = minhash.jaccard(kept[candidate])
            if similarity >= config.near_dup_threshold and similarity > best_sim:
                best, best_sim = candidate, similarity
        if best is not None:
            drops[index] = (best, f"near duplicate (estimated similarity {best_sim:.2f})")
        else:
            lsh.insert(ids[index], minhash)
            kept[ids[index]] = minhash
    return drops


def mark_drops(ds, step: str, drops: dict[int, tuple[str, str]], num_proc: int | None):
    def apply(row, index):
        if index not in drops:
            return {}
        original, reason = drops[index]
        change = Change(f"{reason} of {original}", drop=True, duplicate_of=original)
        return {DROPPED: f"{step}: {change.reason}",
                AUDIT: row[AUDIT] + [audit_entry(row, step, change, row["text"], "")]}

    return ds.map(apply, with_indices=True, desc=step, num_proc=num_proc)


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


def clean(records, config: CleanConfig | None = None, brand: BrandKit | None = None) -> CleanResult:
    """Run the cleaning steps over collected records (a datasets.Dataset, which is left unchanged)."""
    config = config or CleanConfig()
    language = (config.language or (brand.language if brand else "en") or "en").lower()
    keep = tuple(t for t in [*(brand.public_terms() if brand else []), *config.keep_names] if t)
    sign_off = tuple(l.strip() for l in re.split(r"[\n,]", brand.sign_off) if l.strip()) if brand else ()
    num_proc = workers(config, len(records))
    ds = records.map(lambda _: {AUDIT: [], DROPPED: ""}, desc="Preparing")
    counts: list[StepCount] = []

    def alive(ds) -> int:
        return sum(1 for d in ds[DROPPED] if not d)

    def doc_step(ds, name: str, func: DocStep):
        docs_in = alive(ds)
        ds = ds.map(_apply_row, fn_kwargs={"step": name, "func": func, "config": config},
                    desc=name, num_proc=num_proc)
        tag = f'"step": "{name}", "action": '
        actions = Counter(e[e.index(tag) + len(tag):].split('"')[1] for a in ds[AUDIT] for e in a if tag in e)
        counts.append(StepCount(name, docs_in, actions["changed"], actions["dropped"]))
        return ds

    def drop_step(ds, name: str, find: Callable[[Any], dict[int, tuple[str, str]]]):
        docs_in = alive(ds)
        drops = find(ds)
        counts.append(StepCount(name, docs_in, 0, len(drops)))
        return mark_drops(ds, name, drops, num_proc) if drops else ds

    if config.fix_unicode:
        ds = doc_step(ds, "fix_unicode", step_fix_unicode)
    if config.html_to_text:
        ds = doc_step(ds, "html_to_text", step_html_to_text)
    if config.strip_email:
        ds = doc_step(ds, "strip_email", functools.partial(step_strip_email, languages=(language,)))
    if config.strip_boilerplate:
        learned = frozenset(learn_boilerplate(ds, config, list(sign_off)))
        ds = doc_step(ds, "strip_boilerplate", functools.partial(step_strip_boilerplate, learned=learned,
                                                                 keep=sign_off))
    if config.redact_pii:
        ds = doc_step(ds, "redact_pii", functools.partial(step_redact_pii, keep=keep))
    if config.filter_quality:
        ds = doc_step(ds, "quality", step_quality)
    if config.filter_language:
        docs_in = alive(ds)
        ds = mark_language(ds, language, num_proc)
        counts.append(StepCount("language", docs_in, 0, docs_in - alive(ds)))
    order = earliest_first(ds) if (config.dedupe_exact or config.dedupe_near) else []
    if config.dedupe_exact:
        ds = drop_step(ds, "dedupe_exact", lambda d: exact_duplicates(d, order))
    if config.dedupe_near:
        ds = drop_step(ds, "dedupe_near", lambda d: near_duplicates(d, order, config, num_proc))

    audit = [json.loads(e) for entries_ in ds[AUDIT] for e in entries_]
    kept = ds.filter(lambda r: not r[DROPPED], desc="Keeping", num_proc=num_proc)
    dropped = ds.filter(lambda r: bool(r[DROPPED]), desc="Dropped", num_proc=num_proc)
    return CleanResult(dataset=kept.remove_columns([AUDIT, DROPPED]), dropped=dropped.remove_columns([AUDIT]),
                       audit=audit, steps=counts)


def load_cleaned(path: str | Path):
    from datasets import load_from_disk

    path = Path(path)
    if (path / "cleaned").is_dir():
        path = path / "cleaned"
    return load_from_disk(str(path))
