"""Collect WordPress: published posts and pages kept, everything else counted."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import by_source


def test_wordpress_keeps_published_and_counts_the_rest(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)["blog/site.WordPress.xml"]
    assert [(r.kind, r.title) for r in records] == [("blog", "Spring is here"), ("page", "Delivery")]
    assert records[0].tags == ["News", "spring"] and records[0].format == "html"
    notes = next(f for f in result.files if f.path == "blog/site.WordPress.xml").notes
    assert notes == {"draft posts skipped": 1, "attachment items skipped": 1, "revision items skipped": 1}
