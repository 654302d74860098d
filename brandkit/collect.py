"""Collect: turn the files a shop owner hands over into one uniform set of records.

Every file is accounted for: it is either imported (and says how many records it made) or skipped
with a reason. Originals are only ever opened for reading. Importers are small functions, one per
format, registered with ``@importer`` in this module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import BrandkitError, CollectConfig

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


# --------------------------------------------------------------------------- importers

@importer(".txt", name="text")
def import_text(data: bytes, ctx: FileContext) -> list[Record]:
    text = decode_text(data)
    name = Path(ctx.source.split("!")[-1]).stem
    return [ctx.record(kind=guess_kind(ctx.source, ctx.config.default_kind), title=name.replace("_", " "),
                       text=text, format="html" if looks_like_html(text) else "text")]


@importer(".md", ".markdown", name="markdown")
def import_markdown(data: bytes, ctx: FileContext) -> list[Record]:
    """A Markdown file; a manual or FAQ with several headings becomes one record per section."""
    text = decode_text(data)
    kind = guess_kind(ctx.source, ctx.config.default_kind)
    sections = split_markdown_sections(text)
    if len(sections) > 1:
        kind = "manual" if kind == "other" else kind
        doc_title = sections[0][0] if sections[0][1].strip() == "" else ""
        return [ctx.record(kind=kind, title=heading, text=body, format="markdown", locator=f"section {i}",
                           extra={"document": doc_title} if doc_title else {})
                for i, (heading, body) in enumerate(sections, 1) if body.strip()]
    title = sections[0][0] if sections else Path(ctx.source).stem
    return [ctx.record(kind=kind, title=title, text=text, format="markdown")]


MARKDOWN_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def split_markdown_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs, split at every '#'-heading line."""
    sections: list[tuple[str, list[str]]] = []
    heading, body = "", []
    for line in text.splitlines():
        match = MARKDOWN_HEADING.match(line)
        if match:
            if heading or any(b.strip() for b in body):
                sections.append((heading, body))
            heading, body = match.group(1), []
        else:
            body.append(line)
    sections.append((heading, body))
    return [(h, "\n".join(b).strip()) for h, b in sections]


def read_csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV, with its delimiter sniffed (comma, semicolon, tab or pipe)."""
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or []) if h is not None]
    rows = []
    for row in reader:
        rows.append({(k or "").strip(): (v if isinstance(v, str) else "" if v is None else ",".join(v))
                     for k, v in row.items()})
    return header, rows


TEXT_COLUMN_NAMES = ("text", "body", "content", "message", "description", "copy", "post", "email")
TITLE_COLUMN_NAMES = ("title", "subject", "name", "heading", "headline")


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


def records_from_table(rows: list[dict[str, Any]], header: list[str], ctx: FileContext) -> list[Record]:
    """Generic rows with a text column (and optional title and kind columns) become records."""
    cfg = ctx.config
    text_col = pick_column(header, cfg.text_column, TEXT_COLUMN_NAMES)
    if text_col is None:
        wanted = f"no column {cfg.text_column!r} (the text column asked for)" if cfg.text_column else "no text column"
        raise SkipFile(f"{wanted} among the columns: {', '.join(header) or '(none)'}")
    title_col = pick_column(header, cfg.title_column, TITLE_COLUMN_NAMES)
    kind_col = pick_column(header, cfg.kind_column, ("kind", "type", "category"))
    default_kind = guess_kind(ctx.source, cfg.default_kind)
    records = []
    for number, row in enumerate(rows, 1):
        text = str(row.get(text_col) or "")
        if not text.strip():
            ctx.notes["rows without text skipped"] += 1
            continue
        kind = str(row.get(kind_col) or "").strip().lower() if kind_col else ""
        records.append(ctx.record(
            kind=kind if kind in KINDS else default_kind,
            title=str(row.get(title_col) or "") if title_col else "",
            text=text, format="html" if looks_like_html(text) else "text", locator=f"row {number}",
            extra={k: v for k, v in row.items() if k not in (text_col, title_col, kind_col) and v not in ("", None)}))
    return records


@importer(".csv", ".tsv", name="csv")
def import_csv(data: bytes, ctx: FileContext) -> list[Record]:
    """Shopify product exports, support chat exports, or any table with a text column."""
    header, rows = read_csv_rows(decode_text(data))
    if not rows:
        raise SkipFile("CSV has a header but no rows" if header else "CSV has no rows")
    if is_shopify(header):
        ctx.importer = "shopify"
        return records_from_shopify(rows, ctx)
    if chat_columns(header, ctx.config):
        ctx.importer = "chat"
        return records_from_chat_rows(rows, header, ctx)
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        raise SkipFile(f"CSV seems to use a delimiter that could not be detected (one column: {header[0][:60]!r})")
    return records_from_table(rows, header, ctx)


def read_json_rows(data: bytes, ctx: FileContext, jsonl: bool) -> list[Any]:
    """Objects of a JSON array or a JSON Lines file; malformed lines are skipped and counted."""
    text = decode_text(data)
    if not jsonl:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if "\n{" not in text:
                raise SkipFile(f"malformed JSON: {exc}") from None
            jsonl = True  # a .json file that is really JSON Lines
        else:
            return value if isinstance(value, list) else [value]
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            ctx.notes[f"malformed JSON line {number} skipped ({exc.msg})"] += 1
    if not rows:
        raise SkipFile("no valid JSON line")
    return rows


@importer(".json", ".jsonl", ".ndjson", name="json")
def import_json(data: bytes, ctx: FileContext) -> list[Record]:
    """Chat exports (rows, or conversations holding their messages) or rows with a text column."""
    rows = read_json_rows(data, ctx, jsonl=not ctx.source.endswith(".json"))
    if len(rows) == 1 and isinstance(rows[0], dict):  # {"conversations": [...]} or {"data": [...]}
        lists = [v for k, v in rows[0].items()
                 if k not in MESSAGE_KEYS and isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(lists) == 1:
            rows = lists[0]
    objects = [r for r in rows if isinstance(r, dict)]
    if len(objects) < len(rows):
        ctx.notes["non-object JSON values skipped"] += len(rows) - len(objects)
    objects = flatten_conversations(objects)
    header = list(dict.fromkeys(k for r in objects for k in r))
    if chat_columns(header, ctx.config):
        ctx.importer = "chat"
        return records_from_chat_rows(objects, header, ctx)
    return records_from_table(objects, header, ctx)


# --------------------------------------------------------------------------- support chats

CHAT_COLUMN_NAMES = {
    "conversation": ("conversation_id", "conversation", "chat_id", "ticket_id", "ticket", "thread_id", "thread",
                     "session_id", "case_id"),
    "role": ("author_role", "role", "sender_type", "author_type", "from_type", "user_type", "direction"),
    "author": ("author_name", "author", "sender", "sender_name", "name", "from", "who", "user", "agent"),
    "time": ("timestamp", "time", "sent_at", "created_at", "created", "date", "datetime", "when"),
    "text": ("message", "text", "body", "content", "message_text"),
}
MESSAGE_KEYS = ("messages", "turns", "conversation_parts", "events", "parts")
CUSTOMER_ROLES = {"customer", "user", "visitor", "client", "end-user", "end_user", "enduser", "contact", "guest",
                  "requester", "inbound", "shopper", "lead"}
STAFF_ROLES = {"agent", "staff", "admin", "operator", "support", "assistant", "team", "bot", "owner",
               "employee", "outbound", "host", "teammate"}


def chat_columns(header: list[str], config: CollectConfig) -> dict[str, str] | None:
    """The chat export's columns (user mapping first, then common names), or None if not a chat."""
    found = {}
    for field_name, names in CHAT_COLUMN_NAMES.items():
        column = pick_column(header, config.chat_columns.get(field_name), names)
        if column:
            found[field_name] = column
    if {"conversation", "text"} <= set(found) and ({"role", "author"} & set(found)):
        return found
    return None


def flatten_conversations(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{id, messages: [...]}] exports become one row per message carrying the conversation id."""
    flat = []
    for obj in objects:
        nested = next((obj[k] for k in MESSAGE_KEYS if isinstance(obj.get(k), list)), None)
        if nested is None:
            flat.append(obj)
            continue
        conv_id = next((obj[k] for k in ("conversation_id", "id", "ticket_id", "chat_id") if k in obj), "")
        for message in nested:
            if isinstance(message, dict):
                flat.append({"conversation_id": conv_id, **message})
    return flat


def normalise_role(value: str) -> str:
    value = str(value or "").strip().lower()
    if value in CUSTOMER_ROLES:
        return "customer"
    if value in STAFF_ROLES:
        return "staff"
    return ""


def records_from_chat_rows(rows: list[dict[str, Any]], header: list[str], ctx: FileContext) -> list[Record]:
    """Rows of (conversation, role or author, time, text) rebuilt into ordered conversations."""
    columns = chat_columns(header, ctx.config) or {}
    conversations: dict[str, list[dict[str, Any]]] = {}
    for number, row in enumerate(rows):
        text = str(row.get(columns["text"]) or "").strip()
        if not text:
            ctx.notes["empty messages skipped"] += 1
            continue
        conv = str(row.get(columns["conversation"]) or "").strip() or "(no id)"
        conversations.setdefault(conv, []).append({
            "order": number, "text": text,
            "time": str(row.get(columns.get("time", ""), "") or ""),
            "author": str(row.get(columns.get("author", ""), "") or ""),
            "role": normalise_role(row.get(columns.get("role", ""), "")) if "role" in columns else ""})
    records = []
    for conv_id, messages in conversations.items():
        messages.sort(key=lambda m: (m["time"], m["order"]))  # exports often list rows out of order
        first_author = messages[0]["author"]
        for message in messages:
            if not message["role"]:  # no usable role column: whoever opened the chat is the customer
                message["role"] = "customer" if message["author"] == first_author else "staff"
        turns = [{"role": m["role"], "author": m["author"], "time": m["time"], "text": m["text"]} for m in messages]
        customer = next((t["author"] for t in turns if t["role"] == "customer" and t["author"]), "")
        staff = sorted({t["author"] for t in turns if t["role"] == "staff" and t["author"]})
        records.append(ctx.record(
            kind="chat", title=f"Conversation {conv_id}", text=render_turns(turns), turns=turns,
            locator=f"conversation {conv_id}", date=turns[0]["time"], author=", ".join(staff),
            extra={"customer": customer, "messages": len(turns)}))
    return records


# --------------------------------------------------------------------------- Shopify

def is_shopify(header: list[str]) -> bool:
    names = {h.lower() for h in header}
    return "handle" in names and ("body (html)" in names or "variant sku" in names)


def records_from_shopify(rows: list[dict[str, str]], ctx: FileContext) -> list[Record]:
    """One record per product: Shopify repeats the handle on a row per variant, details on the first."""
    products: dict[str, dict[str, Any]] = {}
    for row in rows:
        handle = (row.get("Handle") or "").strip()
        if not handle:
            ctx.notes["rows without a handle skipped"] += 1
            continue
        product = products.setdefault(handle, {"row": None, "variants": []})
        if product["row"] is None and (row.get("Title") or "").strip():
            product["row"] = row
        options = " / ".join(v for v in (row.get(f"Option{i} Value", "") for i in (1, 2, 3)) if v)
        if options or row.get("Variant SKU"):
            product["variants"].append({"option": options, "sku": row.get("Variant SKU", ""),
                                        "price": row.get("Variant Price", "")})
    records = []
    for handle, product in products.items():
        row = product["row"]
        if row is None:
            ctx.notes["variant rows without a product row skipped"] += 1
            continue
        body = (row.get("Body (HTML)") or "").strip()
        if not body:
            ctx.notes["products without a description skipped"] += 1
            continue
        if (row.get("Status") or "active").strip().lower() == "archived":
            ctx.notes["archived products skipped"] += 1
            continue
        records.append(ctx.record(
            kind="product", title=row["Title"].strip(), text=body, format="html", locator=f"product {handle}",
            author=row.get("Vendor", ""), tags=[t.strip() for t in (row.get("Tags") or "").split(",") if t.strip()],
            extra={"handle": handle, "vendor": row.get("Vendor", ""), "type": row.get("Type", ""),
                   "category": row.get("Product Category", ""), "variants": product["variants"]}))
    return records


# --------------------------------------------------------------------------- email

MBOX_SEPARATOR = re.compile(rb"^From [^\n]*\n", re.MULTILINE)
ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def html_to_text(html: str) -> str:
    """A whole HTML body as text, keeping its layout (inscriptis)."""
    from inscriptis import get_text

    return get_text(html).strip()


def email_body(message, ctx: FileContext) -> tuple[str, str]:
    """(text, how it was found): the plain part if there is one, else the HTML part as text."""
    plain, html = None, None
    for part in message.walk():
        if part.is_multipart():
            continue
        if (part.get("Content-Disposition", "").lower().startswith("attachment")) or part.get_filename():
            ctx.notes["attachments ignored"] += 1
            continue
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html"):
            ctx.notes[f"{kind} parts ignored"] += 1
            continue
        text = part_text(part)
        if kind == "text/plain" and plain is None:
            plain = text
        elif kind == "text/html" and html is None:
            html = text
    if plain and plain.strip():
        return plain, "plain"
    if html and html.strip():
        return html_to_text(html), "html"
    return "", ""


def part_text(part) -> str:
    """A MIME part's text in its declared charset, or the detected one when the label is wrong."""
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        try:
            return decode_text(payload)
        except SkipFile:
            return payload.decode("utf-8", errors="replace")


def header_text(message, name: str) -> str:
    """A header decoded from RFC 2047 ("=?utf-8?q?Caf=C3=A9?=" -> "Café"), tolerant of bad encodings."""
    from email.header import decode_header, make_header

    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value)))).strip()
    except (LookupError, UnicodeDecodeError, ValueError):
        return str(value).strip()


def record_from_email(data: bytes, ctx: FileContext, locator: str = "") -> Record | None:
    from email import policy
    from email.parser import BytesParser
    from email.utils import parsedate_to_datetime

    # compat32 parses lazily and is several times faster than policy.default on big mailboxes;
    # the few headers we keep are decoded by hand.
    message = BytesParser(policy=policy.compat32).parsebytes(data)
    labels = [label.strip() for label in header_text(message, "X-Gmail-Labels").split(",") if label.strip()]
    if {"Spam", "Trash"} & set(labels):
        ctx.notes["spam or trash messages skipped"] += 1
        return None
    text, found = email_body(message, ctx)
    if not text.strip():
        ctx.notes["messages without a text body skipped"] += 1
        return None
    try:
        date = parsedate_to_datetime(header_text(message, "Date")).isoformat() if message["Date"] else ""
    except (TypeError, ValueError):
        date = ""
    return ctx.record(kind="email", title=header_text(message, "Subject"), text=text, locator=locator, date=date,
                      author=header_text(message, "From"), tags=labels,
                      extra={"to": header_text(message, "To"), "message_id": header_text(message, "Message-ID"),
                             "in_reply_to": header_text(message, "In-Reply-To"), "body_from": found})


@importer(".eml", name="email")
def import_eml(data: bytes, ctx: FileContext) -> list[Record]:
    if not data.strip():
        raise SkipFile("empty file")
    if b":" not in data[:2000]:
        raise SkipFile("not an email message (no headers)")
    record = record_from_email(data, ctx)
    return [record] if record else []


@importer(".mbox", ".mbx", name="mbox")
def import_mbox(data: bytes, ctx: FileContext) -> list[Record]:
    """An mbox (mail clients, Gmail Takeout): one record per message, threads kept apart."""
    if not data.strip():
        raise SkipFile("empty file")
    if not data.startswith(b"From "):
        raise SkipFile("not an mbox file (it must start with a 'From ' line)")
    chunks = MBOX_SEPARATOR.split(data)[1:]
    records = []
    for number, chunk in enumerate(chunks, 1):
        try:
            record = record_from_email(ESCAPED_FROM.sub(rb"\1", chunk), ctx, locator=f"message {number}")
        except Exception as exc:  # one broken message must not lose the rest of the mailbox
            ctx.notes[f"unreadable messages skipped ({type(exc).__name__})"] += 1
            continue
        if record:
            records.append(record)
    return records


# --------------------------------------------------------------------------- WordPress

WXR = {"content": "http://purl.org/rss/1.0/modules/content/", "dc": "http://purl.org/dc/elements/1.1/"}


@importer(".xml", name="wordpress")
def import_wordpress(data: bytes, ctx: FileContext) -> list[Record]:
    """A WordPress export (WXR): published posts and pages; drafts, revisions, attachments counted."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SkipFile(f"malformed XML: {exc}") from None
    channel = root.find("channel")
    declared = wxr_namespace(data)
    if channel is None or not declared:
        raise SkipFile("XML is not a WordPress export (WXR)")
    wp_ns = "{" + declared + "}"
    records = []
    for item in channel.findall("item"):
        post_type = (item.findtext(f"{wp_ns}post_type") or "").strip()
        status = (item.findtext(f"{wp_ns}status") or "").strip()
        if post_type not in ("post", "page"):
            ctx.notes[f"{post_type or 'untyped'} items skipped"] += 1
            continue
        if status != "publish":
            ctx.notes[f"{status or 'unpublished'} {post_type}s skipped"] += 1
            continue
        body = item.findtext(f"{{{WXR['content']}}}encoded") or ""
        if not body.strip():
            ctx.notes[f"empty {post_type}s skipped"] += 1
            continue
        categories = [c.text.strip() for c in item.findall("category") if c.text and c.get("domain") == "category"]
        tags = [c.text.strip() for c in item.findall("category") if c.text and c.get("domain") == "post_tag"]
        records.append(ctx.record(
            kind="blog" if post_type == "post" else "page", title=(item.findtext("title") or "").strip(),
            text=body, format="html", locator=f"item {item.findtext(f'{wp_ns}post_id') or len(records) + 1}",
            date=(item.findtext(f"{wp_ns}post_date") or "").strip(),
            author=(item.findtext(f"{{{WXR['dc']}}}creator") or "").strip(), tags=categories + tags,
            extra={"categories": categories, "link": (item.findtext("link") or "").strip()}))
    return records


def wxr_namespace(data: bytes) -> str:
    """WXR versions 1.0-1.2 use different wp namespace URIs; the one this file declares, or ""."""
    match = re.search(rb'xmlns:wp="(http://wordpress\.org/export/[^"]+)"', data[:4000])
    return match.group(1).decode() if match else ""


# --------------------------------------------------------------------------- documents

@importer(".docx", name="docx")
def import_docx(data: bytes, ctx: FileContext) -> list[Record]:
    """A Word document; headings split it into sections (a manual or FAQ)."""
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkipFile(f"not a valid .docx (corrupt, or not a Word file): {type(exc).__name__}") from None
    lines: list[tuple[str, str]] = []  # (style kind, text)
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "").lower()
        kind = "heading" if style.startswith(("heading", "title")) else "item" if "list" in style else "text"
        lines.append((kind, text))
    for table_ in document.tables:
        for row in table_.rows:
            lines.append(("text", " | ".join(cell.text.strip() for cell in row.cells)))
    if not lines:
        raise SkipFile("the document has no text")
    title = document.core_properties.title or Path(ctx.source).stem
    return sections_to_records(lines, title, ctx, fmt="text")


def sections_to_records(lines: list[tuple[str, str]], title: str, ctx: FileContext, fmt: str) -> list[Record]:
    """(heading | text | item, text) lines split at headings into one record per section."""
    sections: list[tuple[str, list[str]]] = []
    for kind, text in lines:
        if kind == "heading":
            sections.append((text, []))
            continue
        if not sections:
            sections.append(("", []))
        body = sections[-1][1]
        if kind == "item" and body and body[-1].startswith("- "):
            body[-1] += f"\n- {text}"  # consecutive list items stay one block
        else:
            body.append(f"- {text}" if kind == "item" else text)
    kind = guess_kind(ctx.source, "manual")
    kind = "manual" if kind == "other" else kind
    return [ctx.record(kind=kind, title=heading or title, text="\n\n".join(body), format=fmt,
                       locator=f"section {number}", extra={"document": title})
            for number, (heading, body) in enumerate(sections, 1) if body]


@importer(".pdf", name="pdf")
def import_pdf(data: bytes, ctx: FileContext) -> list[Record]:
    """A PDF's text layer; its outline (bookmarks) splits it into sections, else one record per page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip().startswith(b"%PDF"):
        raise SkipFile("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SkipFile("the PDF is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        outline = flat_outline(reader)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise SkipFile(f"corrupt PDF: {exc}") from None
    if not any(p.strip() for p in pages):
        raise SkipFile("the PDF has no text layer (a scan?)")
    title = (reader.metadata.title if reader.metadata and reader.metadata.title else "") or Path(ctx.source).stem
    text = "\n".join(pages)
    positions = []
    cursor = 0
    for heading in outline:
        found = text.find(heading, cursor)
        if found >= 0:
            positions.append((found, heading))
            cursor = found + len(heading)
    if positions:
        lines = []
        for index, (start, heading) in enumerate(positions):
            end = positions[index + 1][0] if index + 1 < len(positions) else len(text)
            lines.append(("heading", heading))
            lines.extend(("text", p) for p in reflow(text[start + len(heading):end]))
        return sections_to_records(lines, title, ctx, fmt="text")
    kind = guess_kind(ctx.source, ctx.config.default_kind)
    return [ctx.record(kind=kind, title=f"{title} (page {n})", text="\n\n".join(reflow(page)),
                       locator=f"page {n}", extra={"document": title})
            for n, page in enumerate(pages, 1) if page.strip()]


def flat_outline(reader) -> list[str]:
    titles: list[str] = []

    def walk(items):
        for item in items:
            if isinstance(item, list):
                walk(item)
            elif getattr(item, "title", None):
                titles.append(str(item.title).strip())

    walk(reader.outline or [])
    return titles


def reflow(text: str) -> list[str]:
    """PDF text comes as wrapped lines: join them back into paragraphs."""
    paragraphs, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return [p for p in paragraphs if p]


@importer(".html", ".htm", name="html")
def import_html(data: bytes, ctx: FileContext) -> list[Record]:
    """A saved web page: its main text (trafilatura), not the navigation, banners or footer."""
    import trafilatura

    page = decode_text(data)
    if "<" not in page:
        raise SkipFile("not HTML (no tags)")
    text = trafilatura.extract(page, include_comments=False, include_tables=True, favor_recall=True) or ""
    if not text.strip():
        text = html_to_text(page)
        ctx.notes["no main content found: whole page converted"] += 1
    meta = trafilatura.extract_metadata(page)
    title = (meta.title if meta and meta.title else "") or Path(ctx.source).stem
    title = re.split(r"\s+[|\u2013\u2014-]\s+", title)[0].strip()
    return [ctx.record(kind=guess_kind(ctx.source, "page") if guess_kind(ctx.source, "page") != "other" else "page",
                       title=title, text=text, extra={"url": (meta.url if meta and meta.url else "") or ""})]


# --------------------------------------------------------------------------- archives

MAX_ARCHIVE_DEPTH = 2


@importer(".zip", name="zip")
def import_zip(data: bytes, ctx: FileContext) -> list[Record]:
    """Every member of a zip archive, each reported as a file of its own (a.zip!folder/file.txt)."""
    import zipfile

    if ctx.depth >= MAX_ARCHIVE_DEPTH:
        raise SkipFile(f"archive nested more than {MAX_ARCHIVE_DEPTH} deep")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SkipFile(f"corrupt zip archive: {exc}") from None
    limit = int(ctx.config.max_file_mb * 1024 * 1024)
    records = []
    for member in members:
        shown = f"{ctx.source}!{member.filename}"
        if member.file_size > limit:
            ctx.children.append(FileReport(path=shown, status="skipped", reason=(
                f"too large: {member.file_size / 1e6:.1f} MB (limit {ctx.config.max_file_mb} MB)")))
            continue
        try:
            content = archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            ctx.children.append(FileReport(path=shown, status="skipped", reason=f"cannot be extracted: {exc}"))
            continue
        got, report, children = import_bytes(content, shown, ctx.config, depth=ctx.depth + 1)
        records.extend(got)
        ctx.children.extend([report, *children])
    ctx.notes["files inside"] = len(members)
    if not members:
        raise SkipFile("empty zip archive")
    if not records:
        ctx.notes["no member could be imported"] += 1
    return records


# --------------------------------------------------------------------------- the walk

@dataclass
class CollectResult:
    """The records of one collect run, and a report on every file it saw."""

    root: str
    records: list[Record]
    files: list[FileReport]

    @property
    def imported(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "imported"]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "skipped"]

    def kind_counts(self) -> dict[str, int]:
        return dict(Counter(r.kind for r in self.records).most_common())

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.kind_counts().items()) or "none"
        return (f"{len(self.files)} files: {len(self.imported)} imported, {len(self.skipped)} skipped; "
                f"{len(self.records)} records ({kinds})")

    def report_frame(self):
        """One row per file: importer, status, records made or the reason it was skipped."""
        import pandas as pd

        return pd.DataFrame([{"file": f.path, "importer": f.importer, "status": f.status, "records": f.records,
                              "reason": f.reason, "notes": "; ".join(f"{k}: {v}" for k, v in f.notes.items())}
                             for f in self.files])

    def to_dataset(self):
        from datasets import Dataset

        return Dataset.from_list([r.to_row() for r in self.records], features=record_features())

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write records.jsonl, the records as a datasets folder, and collect_report.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"records_jsonl": out / "records.jsonl", "records_dataset": out / "records",
                 "report": out / "collect_report.json"}
        write_jsonl(paths["records_jsonl"], (r.to_row() for r in self.records))
        self.to_dataset().save_to_disk(str(paths["records_dataset"]))
        paths["report"].write_text(json.dumps({
            "root": self.root, "summary": self.summary(), "kinds": self.kind_counts(),
            "files": [asdict(f) for f in self.files]}, indent=2, ensure_ascii=False), encoding="utf-8")
        return paths


def record_features():
    from datasets import Features, List, Value

    turn = {"role": Value("string"), "author": Value("string"), "time": Value("string"), "text": Value("string")}
    return Features({
        "source": Value("string"), "kind": Value("string"), "title": Value("string"), "text": Value("string"),
        "importer": Value("string"), "locator": Value("string"), "format": Value("string"),
        "turns": List(turn), "date": Value("string"), "author": Value("string"), "tags": List(Value("string")),
        "extra": Value("string"), "id": Value("string")})


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def iter_files(root: Path) -> Iterable[tuple[Path, str, str]]:
    """(path, shown name, skip reason or "") for every file under root; symlinks followed once."""
    seen_dirs = {root.resolve()}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield folder, _shown(folder, root), f"folder cannot be read: {exc.strerror or exc}"
            continue
        for entry in entries:
            path = Path(entry.path)
            shown = _shown(path, root)
            try:
                is_dir = entry.is_dir()
                if entry.is_symlink():
                    target = path.resolve(strict=True)
                    if is_dir and target in seen_dirs:
                        yield path, shown, "symlink loop: points back to a folder already walked"
                        continue
            except (OSError, RuntimeError):
                yield path, shown, "broken symlink or symlink loop"
                continue
            if is_dir:
                seen_dirs.add(path.resolve())
                stack.append(path)
            else:
                yield path, shown, ""
        stack.sort(reverse=True)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def import_bytes(data: bytes, source: str, config: CollectConfig,
                 depth: int = 0) -> tuple[list[Record], FileReport, list[FileReport]]:
    """Run the registered importer on one file's bytes; a failure becomes a skip with its reason.

    Returns the records, the file's report, and the reports of files inside it (archives).
    """
    report = FileReport(path=source)
    name = source.split("!")[-1]
    suffix = Path(name).suffix.lower()
    if Path(name).name.startswith(".") or "__MACOSX" in name:
        report.status, report.reason = "skipped", "hidden or system file"
        return [], report, []
    if suffix not in IMPORTERS:
        report.status, report.reason = "skipped", f"unsupported file type {suffix or '(no extension)'}"
        return [], report, []
    report.importer, func = IMPORTERS[suffix]
    ctx = FileContext(source=source, config=config, importer=report.importer, depth=depth)
    try:
        records = func(data, ctx)
    except SkipFile as exc:
        records, report.status, report.reason = [], "skipped", str(exc)
    except Exception as exc:  # a crash in one file must never sink the whole run
        records, report.status = [], "skipped"
        report.reason = f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    if report.status == "imported" and not records and suffix != ".zip":
        report.status, report.reason = "skipped", "no documents found in the file"
    report.importer = ctx.importer
    report.records = len(records)
    report.kinds = dict(Counter(r.kind for r in records))
    report.notes = dict(ctx.notes)
    return records, report, ctx.children


def collect(source: str | Path, config: CollectConfig | None = None, progress: bool = True) -> CollectResult:
    """Import every supported file under a folder (or one file) into records."""
    config = config or CollectConfig()
    root = Path(source)
    if not root.exists():
        raise BrandkitError(f"source folder not found: {root}")
    if root.is_file():
        listing = [(root, root.name, "")]
        root = root.parent
    else:
        listing = list(iter_files(root))
    if not listing:
        raise BrandkitError(f"source folder is empty: {root}")
    from tqdm.auto import tqdm

    records: list[Record] = []
    reports: list[FileReport] = []
    limit = int(config.max_file_mb * 1024 * 1024)
    for path, shown, problem in tqdm(listing, desc="Collecting", unit="file", disable=not progress):
        if problem:
            reports.append(FileReport(path=shown, status="skipped", reason=problem))
            continue
        try:
            size = path.stat().st_size
            if size > limit:
                reports.append(FileReport(path=shown, status="skipped",
                                          reason=f"too large: {size / 1e6:.1f} MB (limit {config.max_file_mb} MB)"))
                continue
            with open(path, "rb") as handle:  # read-only: originals are never modified
                data = handle.read()
        except OSError as exc:
            reports.append(FileReport(path=shown, status="skipped", reason=f"cannot be read: {exc.strerror or exc}"))
            continue
        got, report, inside = import_bytes(data, shown, config)
        records.extend(got)
        reports.append(report)
        reports.extend(inside)
    return CollectResult(root=str(root), records=records, files=reports)


def load_records(path: str | Path):
    """The records a collect run saved (a datasets folder or records.jsonl)."""
    from datasets import Dataset, load_from_disk

    path = Path(path)
    if path.is_dir() and (path / "records").is_dir():
        path = path / "records"
    if path.is_dir():
        return load_from_disk(str(path))
    if path.suffix == ".jsonl" and path.is_file():
        return Dataset.from_json(str(path), features=record_features())
    raise BrandkitError(f"no collected records at {path}")
