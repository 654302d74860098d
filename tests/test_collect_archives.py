"""Collect archives: every member of a zip file is reported as a file of its own."""

from __future__ import annotations

from brandkit.collect import collect


def test_zip_members_are_reported_one_by_one(fixture_dir):
    result = collect(fixture_dir, progress=False)
    members = {f.path: f for f in result.files if f.path.startswith("archive.zip!")}
    assert members["archive.zip!inner/hello.txt"].status == "imported"
    assert members["archive.zip!inner/logo.png"].status == "skipped"
