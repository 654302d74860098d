"""Documents: plain text, Markdown, Word (.docx), PDF and saved web pages (.html)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from .base import (
    FileContext,
    Record,
    SkipFile,
    decode_text,
    guess_kind,
    html_to_text,
    importer,
    looks_like_html,
)


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
