"""Tables: CSV and JSON files, handed to the Shopify or chat reader when they are one, else rows with a text column."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .base import (
    KINDS,
    FileContext,
    Record,
    SkipFile,
    decode_text,
    guess_kind,
    importer,
    looks_like_html,
    pick_column,
)
from .chats import (
    MESSAGE_KEYS,
    chat_columns,
    flatten_conversations,
    records_from_chat_rows,
)
from .shopify import is_shopify, records_from_shopify


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
