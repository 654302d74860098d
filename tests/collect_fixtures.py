"""Builders for the collect tests: one small file per format, and a folder of them with every kind of bad input."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path


def build_email(subject: str, body: str, *, html: str | None = None, charset: str = "utf-8",
                cte: str = "quoted-printable", attachment: bool = False, sender: str = "shop@example.com") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"The Shop <{sender}>"
    msg["To"] = "friend@example.com"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2025, 3, 4, 10, 0))
    if charset == "utf-8":
        msg.set_content(body, charset="utf-8", cte=cte)
    else:
        msg.set_content(body.encode(charset), maintype="text", subtype="plain", cte=cte)
        msg.set_param("charset", charset)
    if html:
        msg.add_alternative(html, subtype="html")
    if attachment:
        msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="invoice.pdf")
    return msg.as_bytes()


def html_only_email() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@example.com", "a@example.com", "HTML only"
    msg.set_content("<html><body><p>Our <b>spring</b> sale starts Monday.</p></body></html>", subtype="html")
    return msg.as_bytes()


def mbox(*messages: bytes) -> bytes:
    return b"".join(b"From shop@example.com Tue Mar  4 10:00:00 2025\n" + m.replace(b"\nFrom ", b"\n>From ")
                    + b"\n" for m in messages)


def docx_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading("Care guide", level=1)
    doc.add_heading("Cleaning", level=2)
    doc.add_paragraph("Wipe the machine with a damp cloth after every use.")
    doc.add_paragraph("Use a soft brush", style="List Bullet")
    doc.add_paragraph("Never use bleach", style="List Bullet")
    doc.add_heading("Storage", level=2)
    doc.add_paragraph("Keep it somewhere cool and dry when you are not using it.")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def pdf_bytes(outline: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    for heading, text in (("Returns", "You can return any unopened item within thirty days of delivery."),
                          ("Shipping", "Orders placed before noon leave our warehouse the same day.")):
        if outline:
            pdf.start_section(heading)
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


PAGE = """<!DOCTYPE html><html><head><title>About us | The Shop</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop all products</a></li></ul></nav>
<main><article><h1>About us</h1><p>We started the shop in a tiny garage in 2015, selling hand-thrown mugs to
our neighbours. Ten years later we still make every mug by hand, one at a time, in the same town.</p>
<p>Every order is packed by the person who made it, with a note about the clay and the glaze.</p>
</article></main><footer><p>Copyright 2025 The Shop. All rights reserved. Privacy policy. Terms.</p></footer>
</body></html>"""

WXR = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/"><channel>
<title>The Shop</title>
<item><title>Spring is here</title><dc:creator>owner</dc:creator><content:encoded><![CDATA[<!-- wp:paragraph -->
<p>Our spring range is in the shop now.</p><!-- /wp:paragraph -->]]></content:encoded>
<wp:post_id>1</wp:post_id><wp:post_date>2025-03-01 09:00:00</wp:post_date><wp:status>publish</wp:status>
<wp:post_type>post</wp:post_type><category domain="category" nicename="news"><![CDATA[News]]></category>
<category domain="post_tag" nicename="spring"><![CDATA[spring]]></category></item>
<item><title>Unfinished</title><content:encoded><![CDATA[<p>draft text</p>]]></content:encoded>
<wp:status>draft</wp:status><wp:post_type>post</wp:post_type></item>
<item><title>photo</title><content:encoded><![CDATA[]]></content:encoded><wp:status>inherit</wp:status>
<wp:post_type>attachment</wp:post_type></item>
<item><title>Spring is here</title><content:encoded><![CDATA[<p>old</p>]]></content:encoded>
<wp:status>inherit</wp:status><wp:post_type>revision</wp:post_type></item>
<item><title>Delivery</title><content:encoded><![CDATA[<p>We deliver on weekdays.</p>]]></content:encoded>
<wp:status>publish</wp:status><wp:post_type>page</wp:post_type></item>
</channel></rss>"""

SHOPIFY = (
    "Handle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,Option1 Value,Variant SKU,Variant Price,Status\n"
    'mug,Stoneware Mug,"<p>A <b>sturdy</b> mug.</p>",The Shop,Mugs,"mug, gift",Colour,Blue,MUG-B,18.00,active\n'
    "mug,,,,,,,Green,MUG-G,18.00,\n"
    "mug,,,,,,,Sand,MUG-S,18.00,\n"
    'bowl,Serving Bowl,"<p>A wide bowl.</p>",The Shop,Bowls,bowl,Size,Large,BWL-L,40.00,active\n'
)

CHAT_CSV = (
    "Ticket,When,Who,Sender type,Body\n"
    "t1,2025-01-01T10:02:00,Sam,agent,Hi Alex! Happy to help with that.\n"
    "t1,2025-01-01T10:00:00,Alex Doe,visitor,Where is my order?\n"
    "t1,2025-01-01T10:05:00,Alex Doe,visitor,Thanks a lot\n"
    "t2,2025-01-02T09:00:00,Jo Bloggs,customer,Do you ship abroad?\n"
    "t2,2025-01-02T09:01:00,Sam,staff,We do, to most of Europe.\n"
)

CHAT_JSON = [{"id": "c9", "messages": [
    {"sender": "Kim", "sender_type": "customer", "sent_at": "2025-01-01T10:00", "body": "Can I change my order?"},
    {"sender": "Sam", "sender_type": "agent", "sent_at": "2025-01-01T10:01", "body": "Yes, until it ships."}]}]


def write_fixtures(root: Path) -> dict[str, Path]:
    """One file per supported format, plus every kind of bad input."""
    files = {
        "notes/welcome.txt": "Welcome to the shop. We make mugs, bowls and plates by hand.".encode(),
        "notes/latin1.txt": "Caf\u00e9 cr\u00e8me recipes for our customers, written in our kitchen.".encode("latin-1"),
        "docs/faq.md": b"# FAQ\n\n## Returns\n\nSend it back within 30 days.\n\n## Shipping\n\nWe ship on weekdays.\n",
        "site/about.html": PAGE.encode(),
        "docs/care-guide.docx": docx_bytes(),
        "docs/policies.pdf": pdf_bytes(),
        "docs/no-outline.pdf": pdf_bytes(outline=False),
        "mail/one.eml": build_email("=?utf-8?q?Caf=C3=A9_news?=", "Our caf\u00e9 opens on Monday at nine."),
        "mail/Sent.mbox": mbox(
            build_email("Plain QP", "Line one of the newsletter.\nFrom here on, more text.", cte="quoted-printable"),
            build_email("Base64 body", "A message sent as base64.", cte="base64", attachment=True),
            build_email("Latin-1", "Cr\u00e8me br\u00fbl\u00e9e is back on the menu.", charset="iso-8859-1"),
            build_email("Both parts", "The plain version.", html="<p>The <b>HTML</b> version.</p>"),
            html_only_email()),
        "blog/site.WordPress.xml": WXR.encode(),
        "shop/products_export.csv": SHOPIFY.encode(),
        "support/chats.csv": CHAT_CSV.encode(),
        "support/chats.json": json.dumps(CHAT_JSON).encode(),
        "data/posts.jsonl": (json.dumps({"title": "Hello", "text": "A first post about our new kiln."}) + "\n"
                             + "{not json}\n" + json.dumps({"title": "Again", "text": "A second post."}) + "\n"
                             ).encode(),
        "data/table.csv": b"title;text\nA;Semicolons separate these columns in this export.\n",
        # bad input, each must be skipped with a reason
        "bad/corrupt.docx": b"PK\x03\x04 this is not really a word document",
        "bad/corrupt.pdf": b"%PDF-1.4\n garbage without any objects",
        "bad/corrupt.zip": b"PK\x03\x04 broken archive",
        "bad/binary.txt": bytes(range(256)) * 8,
        "bad/empty.txt": b"",
        "bad/nocolumn.csv": b"id,price\n1,2.00\n",
        "bad/malformed.xml": b"<rss><channel><item></channel>",
        "bad/allbad.jsonl": b"{oops\n{still not json\n",
        "bad/notes.yaml": b"a: 1\n",
    }
    paths = {}
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[name] = path
    archive = root / "archive.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner/hello.txt", "Hello from inside a zip archive, with enough words to count.")
        z.writestr("inner/logo.png", b"\x89PNG\r\n")
    paths["archive.zip"] = archive
    return paths


def by_source(result):
    out = {}
    for record in result.records:
        out.setdefault(record.source, []).append(record)
    return out
