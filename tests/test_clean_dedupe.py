"""Clean, duplicates: exact and near copies dropped, the earliest kept, each with its original named."""

from __future__ import annotations

from brandkit.clean import clean
from tests.test_clean import audit_for, only, rec, records


def test_exact_and_near_duplicates_keep_the_earliest_copy():
    base = ("Our spring newsletter: new single origins from Ethiopia and Colombia, a latte art class on "
            "Saturday, and ten percent off every brewer until the end of the month. The Ethiopian lot is "
            "washed, bright and floral, with notes of jasmine and lemon; the Colombian is a honey process "
            "with plenty of caramel sweetness. Both are roasted twice a week in small batches, so every bag "
            "reaches you fresh. The class is free for club members and there are only eight places, so book "
            "early. See you at the roastery.")
    near = base.replace("See you at the roastery.", "Just a quick reminder. See you at the roastery.")
    docs = [rec(base, "email", 1, date="2025-03-02"), rec(base, "email", 2, date="2025-03-01"),
            rec(near, "email", 3, date="2025-03-05"),
            rec("A completely different text about cleaning your grinder every week with rice.", "email", 4)]
    result = clean(records(*docs), only(dedupe_exact=True, dedupe_near=True))
    kept = result.dataset
    assert [r["locator"] for r in kept] == ["2", "4"]  # the copy dated earlier wins
    exact, = audit_for(result, "dedupe_exact")
    near_entry, = audit_for(result, "dedupe_near")
    assert exact["duplicate_of"] == kept[0]["id"] and near_entry["duplicate_of"] == kept[0]["id"]
    assert "estimated similarity" in near_entry["reason"]
