"""Collect: every format imports, every bad file is skipped with a reason, originals stay untouched."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path

import pytest

from brandkit.collect import IMPORTERS, collect, import_bytes, load_records, render_turns
from brandkit.config import BrandkitError, CollectConfig


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


@pytest.fixture()
def fixture_dir(tmp_path):
    write_fixtures(tmp_path / "exports")
    return tmp_path / "exports"


def by_source(result):
    out = {}
    for record in result.records:
        out.setdefault(record.source, []).append(record)
    return out


def test_every_file_is_imported_or_skipped_with_a_reason(fixture_dir):
    result = collect(fixture_dir, progress=False)
    walked = sorted(p.relative_to(fixture_dir).as_posix() for p in fixture_dir.rglob("*") if p.is_file())
    reported = sorted(f.path for f in result.files if "!" not in f.path)
    assert reported == walked
    assert len(result.files) == len(result.imported) + len(result.skipped)
    assert all(f.reason for f in result.skipped)
    assert all(f.records > 0 or f.importer == "zip" for f in result.imported)


def test_bad_inputs_are_skipped_with_their_reasons(fixture_dir):
    files = {f.path: f for f in collect(fixture_dir, progress=False).files}
    expected = {
        "bad/corrupt.docx": "not a valid .docx",
        "bad/corrupt.pdf": "corrupt PDF",
        "bad/corrupt.zip": "corrupt zip",
        "bad/binary.txt": "binary",
        "bad/empty.txt": "empty file",
        "bad/nocolumn.csv": "no text column among the columns: id, price",
        "bad/malformed.xml": "malformed XML",
        "bad/allbad.jsonl": "no valid JSON line",
        "bad/notes.yaml": "unsupported file type .yaml",
        "archive.zip!inner/logo.png": "unsupported file type .png",
    }
    for path, reason in expected.items():
        assert files[path].status == "skipped", path
        assert reason in files[path].reason, (path, files[path].reason)


def test_text_markdown_html(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))
    assert records["notes/welcome.txt"][0].text.startswith("Welcome to the shop")
    assert "Café crème" in records["notes/latin1.txt"][0].text  # detected encoding, not UTF-8
    faq = records["docs/faq.md"]
    assert [r.title for r in faq] == ["Returns", "Shipping"] and {r.kind for r in faq} == {"manual"}
    page = records["site/about.html"][0]
    assert page.kind == "page" and page.title == "About us"
    assert "hand-thrown mugs" in page.text
    assert "Shop all products" not in page.text and "All rights reserved" not in page.text


def test_docx_and_pdf_split_into_sections(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))
    docx = records["docs/care-guide.docx"]
    assert [r.title for r in docx] == ["Cleaning", "Storage"]
    assert "- Use a soft brush\n- Never use bleach" in docx[0].text
    pdf = records["docs/policies.pdf"]
    assert [r.title for r in pdf] == ["Returns", "Shipping"]
    assert "thirty days" in pdf[0].text and "noon" in pdf[1].text
    pages = records["docs/no-outline.pdf"]
    assert len(pages) == 1 and "thirty days" in pages[0].text


def test_email_mime_walking(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)
    one = records["mail/one.eml"][0]
    assert one.kind == "email" and one.title == "Café news" and "opens on Monday" in one.text
    assert one.date.startswith("2025-03-04")
    box = {r.title: r for r in records["mail/Sent.mbox"]}
    assert set(box) == {"Plain QP", "Base64 body", "Latin-1", "Both parts", "HTML only"}
    assert "From here on" in box["Plain QP"].text  # mbox ">From " escaping undone
    assert box["Base64 body"].text.strip() == "A message sent as base64."
    assert "Crème brûlée" in box["Latin-1"].text
    assert box["Both parts"].text.strip() == "The plain version."  # plain part preferred
    assert "Our spring sale starts Monday." in box["HTML only"].text and "<b>" not in box["HTML only"].text
    mbox_report = next(f for f in result.files if f.path == "mail/Sent.mbox")
    assert mbox_report.notes["attachments ignored"] == 1
    assert [r.locator for r in records["mail/Sent.mbox"]] == [f"message {n}" for n in range(1, 6)]


def test_wordpress_keeps_published_and_counts_the_rest(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)["blog/site.WordPress.xml"]
    assert [(r.kind, r.title) for r in records] == [("blog", "Spring is here"), ("page", "Delivery")]
    assert records[0].tags == ["News", "spring"] and records[0].format == "html"
    notes = next(f for f in result.files if f.path == "blog/site.WordPress.xml").notes
    assert notes == {"draft posts skipped": 1, "attachment items skipped": 1, "revision items skipped": 1}


def test_shopify_variants_fold_into_one_product(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))["shop/products_export.csv"]
    assert [r.title for r in records] == ["Stoneware Mug", "Serving Bowl"]
    mug = records[0]
    assert mug.kind == "product" and mug.importer == "shopify" and mug.tags == ["mug", "gift"]
    assert [v["option"] for v in mug.extra["variants"]] == ["Blue", "Green", "Sand"]
    assert mug.extra["vendor"] == "The Shop" and mug.extra["type"] == "Mugs"


def test_chat_rows_rebuilt_in_order_with_roles(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))
    chats = {r.locator: r for r in records["support/chats.csv"]}
    t1 = chats["conversation t1"]
    assert [t["role"] for t in t1.turns] == ["customer", "staff", "customer"]
    assert t1.turns[0]["text"] == "Where is my order?"  # re-ordered by time
    assert t1.extra["customer"] == "Alex Doe"
    assert t1.text == render_turns(t1.turns)
    nested = records["support/chats.json"][0]
    assert [t["role"] for t in nested.turns] == ["customer", "staff"]


def test_chat_column_mapping_can_be_set(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("thread,said_by,words\n1,Ann,Is the shop open on Sunday?\n1,Bo,Yes, ten till four.\n")
    default = collect(path, progress=False)
    assert not default.records and "no text column" in default.files[0].reason  # columns not recognised
    mapped = collect(path, CollectConfig(chat_columns={"conversation": "thread", "author": "said_by",
                                                       "text": "words"}), progress=False)
    chat = mapped.records[0]
    assert chat.kind == "chat" and [t["role"] for t in chat.turns] == ["customer", "staff"]


def test_generic_tables_and_malformed_json_lines(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)
    posts = records["data/posts.jsonl"]
    assert [r.title for r in posts] == ["Hello", "Again"]
    notes = next(f for f in result.files if f.path == "data/posts.jsonl").notes
    assert any("malformed JSON line 2" in k for k in notes)
    assert records["data/table.csv"][0].text.startswith("Semicolons")  # sniffed delimiter


def test_zip_members_are_reported_one_by_one(fixture_dir):
    result = collect(fixture_dir, progress=False)
    members = {f.path: f for f in result.files if f.path.startswith("archive.zip!")}
    assert members["archive.zip!inner/hello.txt"].status == "imported"
    assert members["archive.zip!inner/logo.png"].status == "skipped"


def test_size_limit_and_symlink_loop(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "big.txt").write_text("word " * 300_000)
    (root / "ok.txt").write_text("A perfectly ordinary little text file with a few words.")
    os.symlink(root, root / "sub" / "loop")
    result = collect(root, CollectConfig(max_file_mb=1), progress=False)
    files = {f.path: f for f in result.files}
    assert files["big.txt"].status == "skipped" and "too large" in files["big.txt"].reason
    assert "symlink loop" in files["sub/loop"].reason
    assert files["ok.txt"].status == "imported"


def test_originals_are_never_modified(fixture_dir, tmp_path):
    def snapshot():
        return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(fixture_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    for path in fixture_dir.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # read-only: any attempt to open for writing would fail the import
    result = collect(fixture_dir, progress=False)
    result.save(tmp_path / "out")
    assert snapshot() == before
    assert len(result.records) > 20


def test_record_ids_are_stable_and_unique(fixture_dir):
    first = [r.id for r in collect(fixture_dir, progress=False).records]
    second = [r.id for r in collect(fixture_dir, progress=False).records]
    assert first == second and len(set(first)) == len(first)


def test_saved_records_round_trip(fixture_dir, tmp_path):
    result = collect(fixture_dir, progress=False)
    paths = result.save(tmp_path / "collect")
    assert json.loads(paths["report"].read_text())["summary"] == result.summary()
    dataset = load_records(tmp_path / "collect")
    assert len(dataset) == len(result.records)
    from_jsonl = load_records(paths["records_jsonl"])
    assert from_jsonl[0]["id"] == dataset[0]["id"]
    chat = next(r for r in dataset if r["kind"] == "chat")
    assert chat["turns"][0]["role"] == "customer"


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(BrandkitError, match="not found"):
        collect(tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrandkitError, match="empty"):
        collect(tmp_path / "empty", progress=False)


def test_importers_are_registered_in_one_place():
    for suffix in (".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".eml", ".mbox", ".csv", ".json", ".jsonl",
                   ".xml", ".zip"):
        assert suffix in IMPORTERS


def test_a_crashing_importer_only_skips_its_file(monkeypatch):
    def explode(data, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(IMPORTERS, ".txt", ("text", explode))
    records, report, _ = import_bytes(b"hello", "a.txt", CollectConfig())
    assert records == [] and report.status == "skipped" and "RuntimeError: boom" in report.reason


@pytest.mark.parametrize("brand", ["ember-coffee", "ledgerline", "spoke-sprocket"])
def test_sample_brands_import_with_every_file_accounted_for(samples, brand):
    result = collect(samples / brand / "exports", progress=False)
    walked = sorted(p.relative_to(samples / brand / "exports").as_posix()
                    for p in (samples / brand / "exports").rglob("*") if p.is_file())
    assert sorted(f.path for f in result.files if "!" not in f.path) == walked
    assert all(f.status in ("imported", "skipped") and (f.status == "imported" or f.reason) for f in result.files)
    minimum = 120 if brand == "ember-coffee" else 60
    assert len(result.records) >= minimum
    assert {"email", "blog", "product", "chat", "manual", "page"} <= set(result.kind_counts())
