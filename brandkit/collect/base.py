"""The shared room of collect: records, file reports, the importer registry and the text helpers every family uses."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

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

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """The record a to_row() dict came from."""
        fields = {**row, "extra": json.loads(row.get("extra") or "{}"), "turns": list(row.get("turns") or []),
                  "tags": list(row.get("tags") or [])}
        return cls(**fields)

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
    # parts of the file left out, each with where and why (received mail: {"locator": "message 3", "reason": ...})
    skipped_items: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FileContext:
    """What an importer gets besides the bytes: where the file came from, and where to note things."""

    source: str
    config: CollectConfig
    importer: str = ""
    notes: Counter = field(default_factory=Counter)
    children: list[FileReport] = field(default_factory=list)  # files inside an archive
    depth: int = 0
    senders: tuple[str, ...] = ()  # the brand's own mail addresses and "@domains" (brand kit: sends_from)
    skipped_items: list[dict[str, str]] = field(default_factory=list)

    def skip_item(self, locator: str, reason: str, note: str) -> None:
        """Leave one part of a file out (a received message), counted under note and listed with its reason."""
        self.notes[note] += 1
        if len(self.skipped_items) < MAX_LISTED_SKIPS:
            self.skipped_items.append({"locator": locator, "reason": reason})

    def record(self, **fields: Any) -> Record:
        return Record(source=self.source, importer=self.importer, **fields)


MAX_LISTED_SKIPS = 10_000  # per file; past this only the count in the notes grows

Importer = Callable[[bytes, FileContext], list[Record]]
StreamImporter = Callable[[BinaryIO, FileContext], Iterator[Record]]
IMPORTERS: dict[str, tuple[str, Importer]] = {}   # suffix -> (importer name, function)
# suffix -> (importer name, function reading an open file): formats that can be huge (mailboxes) are
# read as a stream from disk, never whole into memory, and have no size limit
STREAM_IMPORTERS: dict[str, tuple[str, StreamImporter]] = {}


def importer(*suffixes: str, name: str | None = None, stream: bool = False) -> Callable[[Importer], Importer]:
    """Register a function as the importer for the given file suffixes (stream=True: it reads an open file)."""

    def register(func: Importer) -> Importer:
        for suffix in suffixes:
            (STREAM_IMPORTERS if stream else IMPORTERS)[suffix.lower()] = (
                name or func.__name__.removeprefix("import_"), func)
        return func

    return register


# --------------------------------------------------------------------------- decoding helpers

PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "mac_roman")


# UTF-32's marks first: UTF-32-LE's begins with UTF-16-LE's
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes) -> str:
    """Bytes to text: a byte-order mark's encoding, UTF-8, otherwise the detected encoding; binary data is refused.

    Windows tools (Notepad, Excel's "Unicode text") write UTF-16 with a byte-order mark: its zero
    bytes are text, not a sign of binary data.
    """
    if not data.strip():
        raise SkipFile("empty file")
    for mark, encoding in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                break
            if not text.strip():
                raise SkipFile("empty file")
            return text
    if b"\x00" in data[:8192]:
        # UTF-16 without a mark is mostly zero bytes too: only charset-normalizer's confident verdict saves it
        from charset_normalizer import from_bytes

        best = from_bytes(data[:65536]).best()
        if best is None or not best.encoding.startswith(("utf_16", "utf_32")):
            raise SkipFile("binary data, not text")
        try:
            return data.decode(best.encoding)
        except UnicodeDecodeError:
            raise SkipFile("binary data, not text") from None
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
