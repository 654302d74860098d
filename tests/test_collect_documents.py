"""Collect documents: text, Markdown, HTML, Word and PDF files, split into sections where they have them."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import by_source


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
