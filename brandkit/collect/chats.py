"""Support chats: chat exports (CSV rows or JSON conversations) rebuilt into ordered conversations."""

from __future__ import annotations

from typing import Any

from ..config import CollectConfig
from .base import FileContext, Record, pick_column, render_turns

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
