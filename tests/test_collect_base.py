"""Collect's shared room: records get ids that are stable from run to run and unique."""

from __future__ import annotations

from brandkit.collect import collect


def test_record_ids_are_stable_and_unique(fixture_dir):
    first = [r.id for r in collect(fixture_dir, progress=False).records]
    second = [r.id for r in collect(fixture_dir, progress=False).records]
    assert first == second and len(set(first)) == len(first)
