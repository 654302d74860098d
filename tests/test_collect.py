"""Collect as a package: every family module registers its importers, and the sample brands import whole."""

from __future__ import annotations

import pytest

from brandkit.collect import IMPORTERS, collect


def test_importers_are_registered_in_one_place():
    for suffix in (".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".eml", ".mbox", ".csv", ".json", ".jsonl",
                   ".xml", ".zip"):
        assert suffix in IMPORTERS


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
