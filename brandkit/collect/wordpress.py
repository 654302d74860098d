"""WordPress: a WXR export's published posts and pages."""

from __future__ import annotations

import re

from .base import FileContext, Record, SkipFile, importer

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
