"""The data-readiness report and the before/after diff pager."""

from __future__ import annotations

from brandkit.config import BrandKit, TrainConfig
from brandkit.readiness import check


def test_readiness_on_the_demo_brand(ember_cleaned):
    report = check(ember_cleaned, BrandKit.load("ember-coffee"), TrainConfig(max_seq_length=300))
    summary = report.summary()
    assert summary["examples"] > 90 and set(summary["by_kind"]) >= {"email", "blog", "chat", "product"}
    assert len(report.token_lengths) == len(ember_cleaned.dataset)
    assert all(a < t for a, t in zip(report.answer_lengths, report.token_lengths, strict=True))
    assert summary["over_max_seq_length"] == sum(length > 300 for length in report.token_lengths) > 0
    assert any("longer than max_seq_length=300" in w for w in report.warnings)
    assert 0 < summary["redacted_share"] < 0.05
    assert summary["preset"] == "cpu" and 0 < summary["estimate_minutes"] < 60
    page = report.to_html()
    assert "data:image/png;base64," in page and "training examples" in page


def test_readiness_says_how_much_received_mail_was_set_aside(ember_cleaned, tmp_path):
    import json

    brand = BrandKit.load("ember-coffee")
    report = check(ember_cleaned, brand, collected={"set_aside": 7})
    assert report.summary()["received_mail_set_aside"] == 7
    assert "7 received messages were set aside" in report.to_html()
    (tmp_path / "collect_report.json").write_text(json.dumps({"set_aside": 2}))
    assert check(ember_cleaned, brand, collected=tmp_path / "collect_report.json").set_aside == 2
    assert check(ember_cleaned, brand).summary()["received_mail_set_aside"] == 0


def test_small_and_lopsided_data_gets_advice(ember_collected):
    from datasets import Dataset

    from brandkit.clean import clean
    from brandkit.collect import record_features

    emails = [r.to_row() for r in ember_collected.records if r.kind == "email"][:30]
    others = [r.to_row() for r in ember_collected.records if r.kind == "blog"][:3]
    result = clean(Dataset.from_list(emails + others, features=record_features()), brand=BrandKit.load("ember-coffee"))
    warnings = " ".join(check(result, BrandKit.load("ember-coffee")).warnings)
    assert "at least about 100" in warnings and "of the examples are emails" in warnings


def test_diff_pager_pages_through_changes(ember_collected, ember_cleaned):
    from brandkit.widgets import DiffPager

    pager = DiffPager(ember_collected.to_dataset(), ember_cleaned)
    assert len(pager.items) == len({e["id"] for e in ember_cleaned.audit})
    first = pager.view.value
    assert "<ins>" in first or "<del>" in first
    pager.next.click()
    assert pager.index == 1 and pager.view.value != first
    pager.previous.click()
    assert pager.index == 0
    dropped = next(i for i, item in enumerate(pager.items) if item[2] is None)
    pager.show(dropped)
    assert pager.view.value.count("<del>") == 1 and "<ins>" not in pager.view.value
