"""Compare votes: blind sides, win rates with an interval clustered by prompt, agreement, Bradley-Terry."""

from __future__ import annotations

import pytest

from brandkit.compare import (LabelLog, VoteStore, blind_sides, bradley_terry, cluster_bootstrap, cohen_kappa,
                              pair_results, rater_agreement, vote_results, votes_by_prompt, wilson_interval,
                              win_rate)


def test_wilson_interval_matches_the_hand_computed_values():
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def vote(winner, a="prompted", b="tuned", rater="ann", item="i1", sample=0):
    choice = "A" if winner == a else "B" if winner == b else winner
    return {"A": a, "B": b, "winner": winner, "choice": choice, "rater": rater, "item_id": item, "sample": sample}


def test_win_rate_counts_ties_half():
    votes = [vote("tuned", item=f"t{i}") for i in range(6)] + [vote("prompted", item=f"b{i}") for i in range(2)] + \
            [vote("tie", item="x1"), vote("both_bad", item="x2")]
    rate = win_rate(votes)
    assert (rate.model, rate.other) == ("tuned", "prompted")
    assert rate.rate == pytest.approx(0.7) and (rate.wins, rate.losses, rate.ties, rate.both_bad) == (6, 2, 1, 1)
    assert (round(rate.wilson_low, 4), round(rate.wilson_high, 4)) == (0.3968, 0.8922)
    assert rate.prompts == 10 and rate.low <= 0.7 <= rate.high
    table = votes_by_prompt(votes)
    assert table["votes"].sum() == 10


def test_the_interval_treats_a_prompts_votes_as_one_cluster():
    """Two prompts, ten votes each: one always won, one always lost. Twenty independent votes would give a
    narrow interval around 50%; resampling prompts can draw the won prompt twice or the lost one twice,
    so the honest 95% interval runs from 0 to 1."""
    votes = [vote("tuned", item="won", rater=f"r{i}") for i in range(10)] + \
            [vote("prompted", item="lost", rater=f"r{i}") for i in range(10)]
    rate = win_rate(votes)
    assert rate.rate == pytest.approx(0.5) and rate.votes == 20 and rate.prompts == 2
    assert (round(rate.wilson_low, 3), round(rate.wilson_high, 3)) == (0.299, 0.701)
    assert (rate.low, rate.high) == (0.0, 1.0)
    # twenty prompts with one vote each, the same 50%: the clustered interval is close to Wilson's again
    spread = [vote("tuned", item=f"w{i}") for i in range(10)] + [vote("prompted", item=f"l{i}") for i in range(10)]
    low, high = cluster_bootstrap(spread, "tuned")
    assert 0.25 <= low <= 0.35 and 0.65 <= high <= 0.75


def test_uneven_clusters_weigh_by_votes():
    """A prompt with more votes weighs more in each resample, as it does in the rate itself."""
    votes = [vote("tuned", item="big", rater=f"r{i}") for i in range(8)] + [vote("prompted", item="small")] * 2
    low, high = cluster_bootstrap(votes, "tuned", resamples=4000)
    assert win_rate(votes).rate == pytest.approx(0.8)
    assert low == 0.0 and high == 1.0 and 0.3 < cluster_bootstrap(votes, "tuned", level=0.5)[0] < 0.9


def test_pairs_report_tuned_versus_prompted_first():
    votes = [vote("generic", a="generic", b="tuned", item="1"), vote("tuned", a="generic", b="tuned", item="2"),
             vote("tuned", a="tuned", b="prompted", item="1"), vote("prompted", a="prompted", b="generic", item="3")]
    pairs = [(r.model, r.other) for r in pair_results(votes)]
    assert pairs == [("tuned", "prompted"), ("tuned", "generic"), ("prompted", "generic")]
    results = vote_results(votes)
    assert results["pairs"][0]["model"] == "tuned" and results["pairs"][0]["other"] == "prompted"
    assert [m for m, _ in results["bradley_terry"]][0] == "tuned"


def test_rater_agreement_and_kappa():
    votes = [vote("tuned", rater="ann", item="1"), vote("tuned", rater="bob", item="1"),
             vote("prompted", rater="ann", item="2"), vote("tuned", rater="bob", item="2"),
             vote("tuned", rater="ann", item="3"), vote("tuned", rater="bob", item="3"),
             vote("prompted", rater="ann", item="4"), vote("prompted", rater="bob", item="4")]
    result = rater_agreement(votes)
    assert result["pairs"][0]["agreement"] == pytest.approx(0.75)
    assert result["pairs"][0]["kappa"] == pytest.approx(0.5)
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)


def test_bradley_terry_ranks_three_models():
    votes = ([vote("tuned", "generic", "tuned")] * 8 + [vote("generic", "generic", "tuned")] * 2 +
             [vote("v2", "tuned", "v2")] * 7 + [vote("tuned", "tuned", "v2")] * 3 +
             [vote("v2", "generic", "v2")] * 9 + [vote("generic", "generic", "v2")] * 1)
    ranking = bradley_terry(votes)
    assert [m for m, _ in ranking] == ["v2", "tuned", "generic"]
    assert sum(score for _, score in ranking) == pytest.approx(3000)


def test_blind_sides_are_random_per_pair_but_stable():
    sides = {blind_sides(f"item{i}", 0, "ann", pair=("tuned", "prompted")) for i in range(20)}
    assert sides == {("prompted", "tuned"), ("tuned", "prompted")}
    assert blind_sides("item1", 0, "ann", pair=("tuned", "prompted")) == \
        blind_sides("item1", 0, "ann", pair=("prompted", "tuned"))


def test_votes_are_appended_once_and_survive_a_torn_line(tmp_path):
    store = VoteStore(tmp_path / "votes.jsonl")
    store.add("ann", "i1", 0, "A", ("tuned", "prompted"), "warmer")
    with open(tmp_path / "votes.jsonl", "a") as handle:
        handle.write('{"rater": "ann", "item_')  # a crash in the middle of a write
    store.add("ann", "i2", 0, "tie", ("prompted", "tuned"))
    again = store.add("ann", "i1", 0, "B", ("prompted", "tuned"))  # the same rater, item and pair again
    votes = store.votes()
    assert [v["winner"] for v in votes] == ["tuned", "tie"] and votes[0]["reason"] == "warmer"
    assert again["winner"] == "tuned" and len((tmp_path / "votes.jsonl").read_text().splitlines()) == 3
    assert store.voted("ann") == {("i1", 0, "prompted|tuned"), ("i2", 0, "prompted|tuned")}
    store.add("ann", "i1", 0, "A", ("generic", "tuned"))  # another pair on the same item is another vote
    assert len(store.votes()) == 3


def test_label_log_records_reveals_and_items_seen(tmp_path):
    log = LabelLog(tmp_path / "labels_seen.jsonl")
    assert not log.revealed("ann")
    log.reveal("ann")
    log.saw("ann", "i1", 0)
    log.saw("ann", "i1", 0)
    assert log.revealed("ann") and not log.revealed("bob") and log.seen("ann") == {("i1", 0)}
    assert len((tmp_path / "labels_seen.jsonl").read_text().splitlines()) == 2
