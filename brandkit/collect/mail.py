"""Email: single messages (.eml) and mailboxes (.mbox), one record per message.

Only the brand's own messages teach its voice: with ``collect.mail_messages: sent`` (the default) a
message is kept when its From address is one of the brand kit's ``sends_from`` addresses or domains,
or when Gmail labelled it Sent; the rest (customers' mail, in Takeout's "All mail") is skipped and
listed with the reason. Mailboxes are read as a stream, a block at a time: Takeout exports run to
several GB.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from .base import FileContext, Record, SkipFile, decode_text, html_to_text, importer

MBOX_SEPARATOR = re.compile(rb"^From [^\n]*\n", re.MULTILINE)
ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


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
    sender = header_text(message, "From")
    if ctx.config.mail_messages == "sent":
        received = not_sent_by_brand(sender, labels, ctx)
        if received:
            ctx.skip_item(locator or "message", received, RECEIVED_NOTE)
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
                      author=sender, tags=labels,
                      extra={"to": header_text(message, "To"), "message_id": header_text(message, "Message-ID"),
                             "in_reply_to": header_text(message, "In-Reply-To"), "body_from": found})


RECEIVED_NOTE = "received messages skipped (not sent by the brand)"
UNCHECKED_NOTE = "messages kept without a sender check (the brand kit lists no sends_from addresses)"


def not_sent_by_brand(sender: str, labels: list[str], ctx: FileContext) -> str:
    """Why a message is not the brand's own writing, or "" when it is (or cannot be told)."""
    from email.utils import parseaddr

    if any(label.lower() in ("sent", "sent mail", "[gmail]/sent mail") for label in labels):
        return ""
    address = parseaddr(sender)[1].lower()
    domain = address.rpartition("@")[2]
    for entry in ctx.senders:
        entry = entry.strip().lower()
        if address and (address == entry or domain == entry.lstrip("@") and "@" not in entry.lstrip("@")):
            return ""
    if not ctx.senders and not labels:  # nothing to check against: keep it, and say so
        ctx.notes[UNCHECKED_NOTE] += 1
        return ""
    who = f"From {domain or 'an unknown sender'}" if address else "no From address"
    return (f"received mail: {who} is not one of the brand's addresses ({', '.join(ctx.senders) or 'none listed'})"
            " and the message has no Sent label")


@importer(".eml", name="email")
def import_eml(data: bytes, ctx: FileContext) -> list[Record]:
    if not data.strip():
        raise SkipFile("empty file")
    if b":" not in data[:2000]:
        raise SkipFile("not an email message (no headers)")
    record = record_from_email(data, ctx)
    return [record] if record else []


@importer(".mbox", ".mbx", name="mbox", stream=True)
def import_mbox_stream(handle: BinaryIO, ctx: FileContext) -> Iterator[Record]:
    """An mbox (mail clients, Gmail Takeout) read from an open file: one record per message, threads kept apart."""
    head = handle.read(5)
    if not head.strip():
        raise SkipFile("empty file")
    if head != b"From ":
        raise SkipFile("not an mbox file (it must start with a 'From ' line)")
    for number, chunk in enumerate(mbox_messages(handle, head), 1):
        try:
            record = record_from_email(ESCAPED_FROM.sub(rb"\1", chunk), ctx, locator=f"message {number}")
        except Exception as exc:  # one broken message must not lose the rest of the mailbox
            ctx.notes[f"unreadable messages skipped ({type(exc).__name__})"] += 1
            continue
        if record:
            yield record


@importer(".mbox", ".mbx", name="mbox")
def import_mbox(data: bytes, ctx: FileContext) -> list[Record]:
    """An mbox held in memory (inside a zip archive): the stream importer over its bytes."""
    return list(import_mbox_stream(io.BytesIO(data), ctx))


BLOCK = 4 * 1024 * 1024


def mbox_messages(handle: BinaryIO, start: bytes = b"") -> Iterator[bytes]:
    """Each message of an mbox (without its 'From ' line), reading the file a block at a time.

    Memory holds one block and the message being read, whatever the size of the mailbox.
    """
    buffer, pos, body = start, 0, None   # body: where the current message starts in buffer
    while True:
        block = handle.read(BLOCK)
        buffer += block
        while (separator := MBOX_SEPARATOR.search(buffer, pos)) is not None:
            if body is not None:
                yield buffer[body:separator.start()]
            body = pos = separator.end()
        if not block:
            if body is not None:
                yield buffer[body:]
            return
        if body:  # forget what has been handed out
            buffer, pos, body = buffer[body:], pos - body, 0
        # complete separators are all found; one cut by the block's end starts near it
        pos = max(pos, len(buffer) - 4096)
