"""Collect tables: generic CSV and JSON rows with a text column, malformed JSON lines counted."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import by_source


def test_generic_tables_and_malformed_json_lines(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)
    posts = records["data/posts.jsonl"]
    assert [r.title for r in posts] == ["Hello", "Again"]
    notes = next(f for f in result.files if f.path == "data/posts.jsonl").notes
    assert any("malformed JSON line 2" in k for k in notes)
    assert records["data/table.csv"][0].text.startswith("Semicolons")  # sniffed delimiter
