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
from .config import BrandKit, CleanConfig, load_stage_dataset

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


def first_difference(a: str, b: str) -> int:
    """Index of the first character where two texts differ (linear, unlike a full diff)."""
    limit, i = min(len(a), len(b)), 0
    while i < limit and a[i:i + 256] == b[i:i + 256]:
        i += 256
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def excerpt_pair(before: str, after: str, width: int = 160) -> tuple[str, str]:
    """Short before/after samples starting just before the first place the texts differ."""
    start = max(0, first_difference(before, after) - width // 4)
    return before[start:start + width], after[start:start + width]


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


def apply_change(row: dict[str, Any], step: str, change: Change | None) -> None:
    """Fold one step's verdict into the row (text, turns, format, audit, drop reason)."""
    if change is None:
        return
    before = row["text"]
    if change.drop:
        row[DROPPED] = f"{step}: {change.reason}"
        row[AUDIT].append(audit_entry(row, step, change, before, ""))
        return
    text = render_turns(change.turns) if change.turns is not None else change.text
    if text is None:
        return
    if text != before:
        row[AUDIT].append(audit_entry(row, step, change, before, text))
        row["text"] = text
    if change.turns is not None:
        row["turns"] = change.turns
    if change.format is not None:
        row["format"] = change.format


CHANGING = ("text", "turns", "format", AUDIT, DROPPED)


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
        # plain ASCII has no mojibake to repair: only the whitespace needs normalising
        fixed = normalise_whitespace(text if text.isascii() else
                                     ftfy.fix_text(text, uncurl_quotes=False, normalization="NFC"))
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
THREAD_HINT = re.compile(r"wrote:|schrieb|a écrit|escribió|ha scritto|schreef|^\s*>|^(?:From|Von|De|Van|Da):|^-{2,}|"
                         r"forwarded|original message|confidential|disclaimer|sent from my|intended (?:solely )?for",
                         re.I | re.M)


def step_strip_email(row: dict[str, Any], config: CleanConfig, languages: tuple[str, ...] = ("en",)) -> Change | None:
    """Keep the newest message of a thread; drop quotes, forwards, signatures and disclaimers.

    mail-parser-reply splits the thread at reply headers ("On ... wrote:", Outlook blocks). Its
    signature rules would also cut a brand's sign-off ("Kind regards, ..."), which is part of the
    voice, so signatures are cut only at the standard "-- " delimiter.
    """
    if row["kind"] != "email" or not THREAD_HINT.search(row["text"]):
        return None  # nothing that looks like a reply, forward, signature or disclaimer
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
    return " ".join(line.lower().split())


def line_keys(text: str) -> list[str]:
    """A document's distinct lines long enough to be boilerplate, normalised for counting."""
    return list({key for key in map(line_key, text.splitlines()) if len(key) >= 12})


def learn_boilerplate(lines: list[list[str]], alive: int, config: CleanConfig, keep: list[str]) -> set[str]:
    """Lines that repeat across many documents (footers, legal lines), minus the brand's sign-off."""
    counts: Counter = Counter(key for keys in lines for key in keys)
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
    from .redact import Redactor  # presidio (and through it spaCy) loads only when redaction runs

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
    from .redact import replace

    redactor = _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep)
    people = known_people(row)
    total: Counter = Counter()
    redacted_chars = 0

    def redact(text: str) -> str:
        nonlocal redacted_chars
        findings = redactor.find(text, people)
        total.update(f.entity for f in findings)
        redacted_chars += sum(f.end - f.start for f in findings)
        return replace(text, findings) if findings else text

    text, turns = map_texts(row, redact)
    if not total:
        return None
    turns = [{**t, "author": "[PERSON]" if t.get("role") == "customer" else t.get("author", "")}
             for t in turns] if turns else None
    summary = ", ".join(f"{n} {entity}" for entity, n in total.most_common())
    return Change(f"redacted personal data: {summary}", text=text, turns=turns,
                  details={"entities": dict(total), "redacted_chars": redacted_chars})


# --------------------------------------------------------------------------- 6. quality

LETTERS = re.compile(r"[^\W\d_]+")
SPACES = re.compile(r"\s+")


def step_quality(row: dict[str, Any], config: CleanConfig) -> Change | None:
    """Length and quality rules tuned for business text: a 12-word reply is fine, a 'Thanks!' is not."""
    from .redact import placeholder_share

    body = row["text"] if not row["turns"] else "\n".join(t["text"] for t in row["turns"])
    words = word_count(body)
    if words < config.min_words:
        return Change(f"too short to teach anything ({words} words, minimum {config.min_words})", drop=True)
    if words > config.max_words:
        return Change(f"too long ({words} words, maximum {config.max_words})", drop=True)
    visible = len(body) - sum(len(run) for run in SPACES.findall(body))
    alpha = sum(len(run) for run in LETTERS.findall(body)) / visible if visible else 0.0
    if alpha < config.min_alpha_share:
        return Change(f"mostly not words ({alpha:.0%} letters, minimum {config.min_alpha_share:.0%})", drop=True)
    share = placeholder_share(body) if "[" in body else 0.0
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


ENGLISH_WORDS = frozenset("the and to of a in is you that it for we our on with your this be are at".split())


def plainly_english(text: str) -> bool:
    """A cheap first look: a third of the words among the commonest English ones settles it."""
    tokens = re.findall(r"[a-z']+", text.lower())
    return len(tokens) >= 20 and sum(t in ENGLISH_WORDS for t in tokens) / len(tokens) > 0.3


def language_verdicts(texts: list[str], language: str) -> list[str]:
    """For each text, "" if it is in `language` (or too short to tell), else the language it is in."""
    detector = _language_detector(language)
    samples = [re.sub(r"\[[A-Z_]+\]|https?://\S+", " ", t)[:1500] for t in texts]
    # One at a time: lingua's parallel API starts a thread pool, and a pool inherited by a forked
    # datasets worker deadlocks. num_proc gives the parallelism instead.
    detected = [None if word_count(sample) < 6 or (language == "en" and plainly_english(sample))
                else detector.detect_language_of(sample) for sample in samples]
    return [found.iso_code_639_1.name.lower() if found is not None and
            found.iso_code_639_1.name.lower() != language.lower() else "" for found in detected]


def step_language(row: dict[str, Any], config: CleanConfig, language: str = "en") -> Change | None:
    found = language_verdicts([row["text"]], language)[0]
    if found:
        return Change(f"not in the brand's language ({found}, expected {language})", drop=True)
    return None


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


@functools.lru_cache(maxsize=4)
def _permutations(num_perm: int):
    """The seeded hash permutations, made once: creating them is most of a small MinHash's cost."""
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=1, scheme=MINHASH_SCHEME).permutations


def minhash_signature(text: str, num_perm: int, size: int) -> bytes:
    """A MinHash signature (datasketch) of a text's word shingles; crc32 keeps it fast and stable."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, hashfunc=_crc32, seed=1, permutations=_permutations(num_perm),
                      scheme=MINHASH_SCHEME)
    minhash.update_batch(shingles(text, size))
    return minhash.hashvalues.astype("<u8").tobytes()


def earliest_first(dates: list[str]) -> list[int]:
    """Row order for keeping "the earliest copy": by date where known, then as collected."""
    keys = [str(d or "").replace("T", " ")[:19] or "9999" for d in dates]
    return sorted(range(len(keys)), key=lambda i: (keys[i], i))


def exact_duplicates(texts: list[str], ids: list[str], alive: list[bool], order: list[int]) -> dict[int, tuple[str, str]]:
    """Row index -> (id of the kept copy, reason) for every later copy of an identical text."""
    first: dict[str, str] = {}
    drops = {}
    for index in order:
        if not alive[index]:
            continue
        key = content_key(texts[index])
        if key in first:
            drops[index] = (first[key], "exact duplicate")
        else:
            first[key] = ids[index]
    return drops


def near_duplicates(signatures: list[bytes], ids: list[str], alive: list[bool], order: list[int],
                    config: CleanConfig) -> dict[int, tuple[str, str]]:
    """MinHash LSH: each document is checked against those kept before it (linear in documents)."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    # Candidates come from a looser band setting (few missed pairs); the estimate decides.
    lsh = MinHashLSH(threshold=max(0.5, config.near_dup_threshold - 0.15), num_perm=config.num_perm,
                     weights=(0.3, 0.7))
    kept: dict[str, Any] = {}
    drops = {}
    for index in order:
        if not alive[index] or not signatures[index]:
            continue
        minhash = MinHash(num_perm=config.num_perm, hashvalues=np.frombuffer(signatures[index], dtype="<u8"),
                          seed=1, permutations=_permutations(config.num_perm), scheme=MINHASH_SCHEME)
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


STEP_ORDER = ("fix_unicode", "html_to_text", "strip_email", "strip_boilerplate", "redact_pii", "quality",
              "language", "dedupe_exact", "dedupe_near")


def clean(records, config: CleanConfig | None = None, brand: BrandKit | None = None) -> CleanResult:
    """Run the cleaning steps over collected records (a datasets.Dataset, which is left unchanged).

    Two fused passes over the data (the boilerplate step needs to learn from the result of the
    first), then the corpus-wide duplicate steps.
    """
    config = config or CleanConfig()
    language = (config.language or (brand.language if brand else "en") or "en").lower()
    keep = tuple(t for t in [*(brand.public_terms() if brand else []), *config.keep_names] if t)
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
    second = [(name, func) for name, switch, func in (
        ("strip_boilerplate", config.strip_boilerplate,
         functools.partial(step_strip_boilerplate, learned=learned, keep=sign_off)),
        ("redact_pii", config.redact_pii, functools.partial(step_redact_pii, keep=keep)),
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


def warm_up(config: CleanConfig, language: str, keep: tuple[str, ...]) -> None:
    """Load the heavy libraries and models once, here: forked worker processes inherit them."""
    import ftfy  # noqa: F401
    import inscriptis  # noqa: F401
    import mailparser_reply.parser  # noqa: F401
    import trafilatura  # noqa: F401

    if config.redact_pii:
        _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep).find(
            "Warm up: call +1 555-0100, write to a@example.com, card 4242 4242 4242 4242, at 1 High Street.")
    if config.filter_language:
        detector = _language_detector(language)
        for sample in ("Bonjour, merci pour votre commande.", "Hola, gracias por su pedido de hoy.",
                       "Hallo, vielen Dank für Ihre Bestellung.", "Thank you for your order today."):
            detector.detect_language_of(sample)


def enabled(config: CleanConfig, step: str) -> bool:
    switch = {"quality": "filter_quality", "language": "filter_language"}.get(step, step)
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
