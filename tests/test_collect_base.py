"""Collect's shared room: records get ids that are stable from run to run and unique."""

from __future__ import annotations

from brandkit.collect import collect


def test_record_ids_are_stable_and_unique(fixture_dir):
    first = [r.id for r in collect(fixture_dir, progress=False).records]
    second = [r.id for r in collect(fixture_dir, progress=False).records]
    assert first == second and len(set(first)) == len(first)


def test_utf16_and_utf32_text_with_a_byte_order_mark_is_decoded(tmp_path):
    import codecs

    from brandkit.collect import decode_text

    text = "Café news: our crème brûlée latte is back — see you Saturday! ☕"
    (tmp_path / "le.txt").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    (tmp_path / "be.md").write_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    (tmp_path / "notepad.txt").write_bytes(text.encode("utf-16"))          # Python writes the mark itself
    (tmp_path / "wide.txt").write_bytes(text.encode("utf-32"))
    (tmp_path / "export.csv").write_bytes(("title,text\nNews," + text + "\n").encode("utf-16"))
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 4)
    result = collect(tmp_path, progress=False)
    skipped = {f.path: f.reason for f in result.skipped}
    assert skipped == {"binary.txt": "binary data, not text"}
    texts = {r.source: r.text for r in result.records}
    assert set(texts) == {"le.txt", "be.md", "notepad.txt", "wide.txt", "export.csv"}
    assert all(text in t for t in texts.values()), texts
    assert decode_text(codecs.BOM_UTF8 + b"plain") == "plain"
