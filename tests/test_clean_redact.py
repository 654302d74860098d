"""Clean, personal data: the labelled PII set, typed placeholders, staff kept, every export format."""

from __future__ import annotations

import json
from pathlib import Path

from brandkit.clean import clean
from brandkit.clean.redact import Redactor
from brandkit.collect import collect, render_turns
from brandkit.config import BrandKit, CleanConfig
from tests.test_clean import FIXTURES, audit_for, only, rec, records


def load_labelled():
    return [json.loads(line) for line in (FIXTURES / "pii_labelled.jsonl").read_text().splitlines()]


def test_pii_recall_and_precision_on_the_labelled_set():
    redactor = Redactor(keep=["Mara", "Jonah", "Helen Marsh", "Dev", "3 Kiln Yard, Larkfield LK1 4RB"])
    true_pos = found_total = labelled_total = 0
    misses, false = [], []
    for case in load_labelled():
        findings = redactor.find(case["text"], case["names"])
        labelled = {(e["entity"], e["text"]) for e in case["entities"]}
        got = {(f.entity, f.text) for f in findings}
        true_pos += len(labelled & got)
        found_total += len(got)
        labelled_total += len(labelled)
        misses += sorted(labelled - got)
        false += sorted(got - labelled)
    recall, precision = true_pos / labelled_total, true_pos / found_total
    assert recall >= 0.95, misses
    assert precision >= 0.95, false
    assert labelled_total >= 25


def test_redaction_uses_typed_placeholders_and_keeps_staff():
    turns = [{"role": "customer", "author": "Tom Ellery", "time": "1", "text": "Hi, I'm Tom Ellery, card 4242 4242 4242 4242"},
             {"role": "staff", "author": "Mara", "time": "2", "text": "Thanks Tom! Mara here, call (555) 010-7788."}]
    chat = rec(render_turns(turns), "chat", 1, turns=turns, extra={"customer": "Tom Ellery"})
    result = clean(records(chat), only(redact_pii=True), brand=BrandKit(name="Ember", slug="e", staff=["Mara"]))
    out = result.dataset[0]
    assert out["turns"][0]["text"] == "Hi, I'm [PERSON], card [CARD]"
    assert out["turns"][1]["text"] == "Thanks [PERSON]! Mara here, call [PHONE]."
    assert out["turns"][0]["author"] == "[PERSON]" and out["turns"][1]["author"] == "Mara"
    [entry] = audit_for(result, "redact_pii")
    assert entry["details"]["entities"] == {"PERSON": 2, "CARD": 1, "PHONE": 1}
    assert 0 < result.redaction()["share"] < 1


PLANTED = "Reach Alex Doe at alex.doe@example.com or +1 555-0142; card 4242 4242 4242 4242."


def planted_exports(root: Path) -> None:
    """The same personal data planted in every export format collect reads."""
    from tests.collect_fixtures import build_email, mbox

    long = " We love hearing from you and will always answer within a day or two."
    files = {
        "a.txt": PLANTED + long,
        "b.md": f"# Note\n\n{PLANTED}{long}\n",
        "c.html": f"<html><head><title>Contact</title></head><body><main><p>{PLANTED}{long}</p></main></body></html>",
        "d.csv": f'title,text\nHello,"{PLANTED}{long}"\n',
        "e.jsonl": json.dumps({"title": "Hi", "text": PLANTED + long}) + "\n",
        "f.xml": ('<rss xmlns:content="http://purl.org/rss/1.0/modules/content/" '
                  'xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><title>Post</title>'
                  f"<content:encoded><![CDATA[<p>{PLANTED}{long}</p>]]></content:encoded><wp:status>publish"
                  "</wp:status><wp:post_type>post</wp:post_type></item></channel></rss>"),
        "g_products.csv": ("Handle,Title,Body (HTML),Vendor,Type,Tags,Variant SKU\n"
                           f'mug,Mug,"<p>{PLANTED}{long}</p>",Shop,Mugs,mug,M1\n'),
        "h_chat.csv": ("conversation_id,timestamp,author_role,author_name,message\n"
                       f"c1,2025-01-01T10:00,customer,Alex Doe,{PLANTED}\n"
                       "c1,2025-01-01T10:01,agent,Sam,Thanks Alex! We will sort that out for you today.\n"),
    }
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "i.eml").write_bytes(build_email("Hello", PLANTED + long))
    (root / "j.mbox").write_bytes(mbox(build_email("Hello", PLANTED + long, cte="base64")))
    from docx import Document
    import io

    doc = Document()
    doc.add_heading("Guide", level=1)
    doc.add_paragraph(PLANTED + long)
    buffer = io.BytesIO()
    doc.save(buffer)
    (root / "k.docx").write_bytes(buffer.getvalue())
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, PLANTED + long)
    (root / "l.pdf").write_bytes(bytes(pdf.output()))


def test_planted_personal_data_is_redacted_in_every_format(tmp_path):
    planted_exports(tmp_path / "in")
    collected = collect(tmp_path / "in", progress=False)
    assert len(collected.imported) == 12 and not collected.skipped
    result = clean(collected.to_dataset(), CleanConfig(dedupe_exact=False, dedupe_near=False))
    assert len(result.dataset) == 12
    for row in result.dataset:
        for secret in ("alex.doe@example.com", "555-0142", "4242 4242"):
            assert secret not in row["text"], (row["source"], row["text"])
        if row["kind"] == "chat":  # names are known where the export names the customer
            assert "Alex" not in row["text"] and "[PERSON]" in row["text"]
        assert "[EMAIL]" in row["text"] and "[PHONE]" in row["text"] and "[CARD]" in row["text"], row["source"]
