"""The shared room of collect: records, file reports, the importer registry and the text helpers every family uses."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import CollectConfig

KINDS = ("email", "blog", "product", "chat", "manual", "page", "other")


class SkipFile(Exception):
    """Raised by an importer: this file cannot be imported, for the reason given."""


@dataclass
class Record:
    """One document: an email, a blog post, a product, a support chat, a manual section, a page."""

    source: str                 # path relative to the collected folder (zip members: a.zip!b.txt)
    kind: str
    title: str
    text: str
    importer: str
    locator: str = ""           # where in the file (message 3, row 12, item 40)
    format: str = "text"        # text | markdown | html
    turns: list[dict[str, str]] = field(default_factory=list)  # chats: role, author, time, text
    date: str = ""
    author: str = ""
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if not self.id:
            body = self.text if not self.turns else json.dumps(self.turns, sort_keys=True)
            digest = hashlib.sha256(f"{self.source}\n{self.locator}\n{body}".encode()).hexdigest()
            self.id = digest[:16]

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["turns"] = [{k: str(t.get(k, "") or "") for k in ("role", "author", "time", "text")}
                        for t in self.turns]
        row["extra"] = json.dumps(self.extra, ensure_ascii=False, sort_keys=True, default=str)
        return row


@dataclass
class FileReport:
    """What happened to one input file."""

    path: str
    importer: str = ""
    status: str = "imported"    # imported | skipped
    records: int = 0
    reason: str = ""
    kinds: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # e.g. {"attachments ignored": 2}


@dataclass
class FileContext:
    """What an importer gets besides the bytes: where the file came from, and where to note things."""

    source: str
    config: CollectConfig
    importer: str = ""
    notes: Counter = field(default_factory=Counter)
    children: list[FileReport] = field(default_factory=list)  # files inside an archive
    depth: int = 0

    def record(self, **fields: Any) -> Record:
        return Record(source=self.source, importer=self.importer, **fields)


Importer = Callable[[bytes, FileContext], list[Record]]
IMPORTERS: dict[str, tuple[str, Importer]] = {}   # suffix -> (importer name, function)


def importer(*suffixes: str, name: str | None = None) -> Callable[[Importer], Importer]:
    """Register a function as the importer for the given file suffixes."""

    def register(func: Importer) -> Importer:
        for suffix in suffixes:
            IMPORTERS[suffix.lower()] = (name or func.__name__.removeprefix("import_"), func)
        return func

    return register


# --------------------------------------------------------------------------- decoding helpers

PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "mac_roman")


def decode_text(data: bytes) -> str:
    """Bytes to text: UTF-8 first, otherwise the detected encoding; binary data is refused."""
    if not data.strip():
        raise SkipFile("empty file")
    if b"\x00" in data[:8192]:
        raise SkipFile("binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise SkipFile("undecodable bytes: no text encoding fits")
    # Short texts often fit several code pages equally well; Western business text is usually cp1252.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for name in PREFERRED_ENCODINGS for m in tied if m.encoding == name), best)
    text = str(best)
    if sum(not (c.isprintable() or c.isspace()) for c in text) > 0.02 * len(text):
        raise SkipFile(f"binary data, not text (best guess {best.encoding} gives control characters)")
    return text


def guess_kind(name: str, default: str = "other") -> str:
    """A kind from a file name, for formats that do not say what they hold (chats come only from chat exports)."""
    lowered = name.lower()
    for kind, words in (
        ("manual", ("manual", "faq", "guide", "handbook", "help")),
        ("blog", ("blog", "post", "article")),
        ("email", ("email", "newsletter", "mail")),
        ("product", ("product", "catalog", "catalogue")),
        ("page", ("page", "about", "contact", "shipping")),
    ):
        if any(word in lowered for word in words):
            return kind
    return default


ROLE_LABELS = {"customer": "Customer", "staff": "Staff"}


def render_turns(turns: list[dict[str, str]]) -> str:
    """A chat as plain text, one "Customer:" or "Staff:" line per turn."""
    return "\n".join(f"{ROLE_LABELS.get(t.get('role', ''), 'Customer')}: {t.get('text', '')}" for t in turns)


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<p>" in head or "<div" in head or "<br" in head or "</" in head


# --------------------------------------------------------------------------- table columns

def column_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def pick_column(header: list[str], wanted: str | None, candidates: Iterable[str]) -> str | None:
    """The column the user named, or the first header matching a common name.

    Matching ignores case and treats spaces, hyphens and underscores alike ("Sender type" = sender_type).
    """
    keyed = {column_key(h): h for h in header}
    if wanted:
        return keyed.get(column_key(wanted))
    for name in candidates:
        if name in keyed:
            return keyed[name]
    return None


# --------------------------------------------------------------------------- HTML and output

def html_to_text(html: str) -> str:
    """A whole HTML body as text, keeping its layout (inscriptis)."""
    from inscriptis import get_text

    return get_text(html).strip()


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
