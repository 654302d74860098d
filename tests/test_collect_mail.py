"""Collect mail: .eml and .mbox messages, their MIME parts, charsets and headers."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import by_source


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
