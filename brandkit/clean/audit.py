"""The audit trail: a step's verdict on one document (Change), and folding it into the row with its reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..collect import render_turns
from ..config import CleanConfig

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
    fields: dict[str, Any] = field(default_factory=dict)  # other columns: title, author, tags, source, extra
    note: bool = False  # the document is kept as it is; the reason is only said in the audit ("kept")


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
                             "action": "dropped" if change.drop else "kept" if change.note else "changed",
                             "reason": change.reason}
    if change.drop or change.note:
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
    if change.note:
        row[AUDIT].append(audit_entry(row, step, change, before, before))
        return
    if change.fields:
        row.update(change.fields)
        if change.text is None and change.turns is None:
            row[AUDIT].append(audit_entry(row, step, change, before, before))
            return
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
