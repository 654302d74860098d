"""Votes: blind pairwise votes, what each rater saw labelled, win rates with intervals clustered by prompt.

A vote is one JSON line appended durably (brandkit.compare.journal); its key (rater, item, sample,
pair) makes a repeated vote a no-op. A rater stays blind until they have voted on every item or
choose to reveal the labels; every item they then see labelled is logged, and a later vote or edit
on it carries `seen_labelled: true`.

A prompt's several votes (raters, samples, pairs) are not independent, so the interval is a
bootstrap over prompts: resample prompts with replacement, keep all of each prompt's votes.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import BrandkitError
from .contenders import PAIRS
from .journal import append_jsonl, first_by_key, read_jsonl

VOTE_CHOICES = {"A": "A better", "B": "B better", "tie": "Tie", "both_bad": "Both bad"}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


def blind_sides(item_id: str, sample: int, rater: str, seed: int = 3407,
                pair: tuple[str, str] = ("generic", "tuned")) -> tuple[str, str]:
    """Which contender is shown as A and which as B: random per item, pair and rater, the same after a restart."""
    first, second = sorted(pair)
    digest = hashlib.sha256(f"{seed}|{rater}|{item_id}|{sample}|{first}|{second}".encode()).digest()
    return (second, first) if digest[0] % 2 else (first, second)


def vote_key(rater: str, item_id: str, sample: int, a: str, b: str) -> str:
    return f"{rater.strip()}|{item_id}|{sample}|{pair_key(a, b)}"


class LabelLog:
    """Which rater chose to reveal the labels, and which items each saw labelled (durable JSONL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def reveal(self, rater: str, reason: str = "chose to reveal") -> dict[str, Any]:
        return append_jsonl(self.path, {"key": f"reveal|{rater.strip()}", "event": "reveal", "rater": rater.strip(),
                                        "reason": reason, "time": now()})

    def saw(self, rater: str, item_id: str, sample: int) -> dict[str, Any]:
        return append_jsonl(self.path, {"key": f"seen|{rater.strip()}|{item_id}|{sample}", "event": "seen",
                                        "rater": rater.strip(), "item_id": item_id, "sample": sample, "time": now()})

    def revealed(self, rater: str) -> bool:
        return any(r["event"] == "reveal" and r["rater"] == rater.strip() for r in read_jsonl(self.path))

    def seen(self, rater: str) -> set[tuple[str, int]]:
        return {(r["item_id"], r["sample"]) for r in read_jsonl(self.path)
                if r["event"] == "seen" and r["rater"] == rater.strip()}


class VoteStore:
    """Blind votes, one JSON line each, appended and fsync'ed the moment they are cast."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def add(self, rater: str, item_id: str, sample: int, choice: str, sides: tuple[str, str],
            reason: str = "", seen_labelled: bool = False) -> dict[str, Any]:
        """Record a vote; a second vote by the same rater on the same item and pair returns the first."""
        if choice not in VOTE_CHOICES:
            raise BrandkitError(f"unknown vote {choice!r} (one of {', '.join(VOTE_CHOICES)})")
        if not rater.strip():
            raise BrandkitError("a vote needs the rater's name")
        winner = {"A": sides[0], "B": sides[1]}.get(choice, choice)
        vote = {"key": vote_key(rater, item_id, sample, *sides), "time": now(), "rater": rater.strip(),
                "item_id": item_id, "sample": sample, "A": sides[0], "B": sides[1], "choice": choice,
                "winner": winner, "reason": reason.strip(), "seen_labelled": bool(seen_labelled)}
        return append_jsonl(self.path, vote)

    def votes(self) -> list[dict[str, Any]]:
        rows = read_jsonl(self.path)
        for row in rows:  # votes written before keys existed
            row.setdefault("key", vote_key(row["rater"], row["item_id"], row.get("sample", 0), row["A"], row["B"]))
        return first_by_key(rows)

    def voted(self, rater: str) -> set[tuple[str, int, str]]:
        """(item, sample, pair) of every vote the rater cast."""
        return {(v["item_id"], v.get("sample", 0), pair_key(v["A"], v["B"])) for v in self.votes()
                if v["rater"] == rater.strip()}


@dataclass
class WinRate:
    """One contender's win rate over another; the interval is a bootstrap over prompts."""

    model: str
    other: str
    rate: float
    low: float
    high: float
    votes: int
    prompts: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    wilson_low: float
    wilson_high: float
    seen_labelled: int = 0


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion, as if every vote were independent."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def vote_score(vote: dict[str, Any], model: str) -> float:
    """1 for a win, 0 for a loss, half for a tie or "both bad"."""
    return 1.0 if vote["winner"] == model else 0.5 if vote["winner"] in ("tie", "both_bad") else 0.0


def cluster_bootstrap(votes: list[dict[str, Any]], model: str, resamples: int = 2000, seed: int = 3407,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the win rate, resampling prompts (each with all its votes) with replacement."""
    clusters: dict[str, list[float]] = {}
    for v in votes:
        clusters.setdefault(v["item_id"], []).append(vote_score(v, model))
    if not clusters:
        return 0.0, 1.0
    sums = [(sum(s), len(s)) for s in clusters.values()]
    rng = random.Random(seed)
    rates = []
    for _ in range(resamples):
        picked = [sums[rng.randrange(len(sums))] for _ in sums]
        rates.append(sum(s for s, _ in picked) / sum(n for _, n in picked))
    rates.sort()
    tail = (1 - level) / 2
    return rates[int(tail * (resamples - 1))], rates[int(math.ceil((1 - tail) * (resamples - 1)))]


def win_rate(votes: list[dict[str, Any]], model: str = "tuned", other: str = "prompted") -> WinRate:
    """The model's win rate over the other: a win counts 1, a tie or "both bad" counts half."""
    relevant = [v for v in votes if {v["A"], v["B"]} == {model, other}]
    wins = sum(v["winner"] == model for v in relevant)
    losses = sum(v["winner"] == other for v in relevant)
    ties = sum(v["winner"] == "tie" for v in relevant)
    both_bad = sum(v["winner"] == "both_bad" for v in relevant)
    n = len(relevant)
    score = wins + 0.5 * (ties + both_bad)
    low, high = cluster_bootstrap(relevant, model)
    wilson_low, wilson_high = wilson_interval(score, n)
    return WinRate(model, other, score / n if n else float("nan"), low, high, n,
                   len({v["item_id"] for v in relevant}), wins, losses, ties, both_bad, wilson_low, wilson_high,
                   sum(bool(v.get("seen_labelled")) for v in relevant))


def pair_results(votes: list[dict[str, Any]]) -> list[WinRate]:
    """A win rate for every pair that has votes; tuned versus prompted generic first."""
    present = {pair_key(v["A"], v["B"]) for v in votes}
    ordered = [pair for pair in PAIRS if pair_key(*pair) in present]
    known = {pair_key(*p) for p in ordered}
    for v in votes:  # pairs outside the three contenders (older runs: base / tuned)
        if pair_key(v["A"], v["B"]) not in known:
            a, b = sorted((v["A"], v["B"]), key=lambda m: (m != "tuned", m))
            ordered.append((a, b))
            known.add(pair_key(a, b))
    return [win_rate(votes, a, b) for a, b in ordered]


def votes_by_prompt(votes: list[dict[str, Any]]):
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for v in votes:
        row = rows.setdefault(v["item_id"], {"item_id": v["item_id"], "votes": 0, "tie": 0, "both_bad": 0,
                                             "reasons": []})
        row["votes"] += 1
        row[v["winner"]] = row.get(v["winner"], 0) + 1
        if v.get("reason"):
            row["reasons"].append(f"{v['rater']}: {v['reason']}")
    frame = pd.DataFrame(list(rows.values()))
    if len(frame):
        frame["reasons"] = frame["reasons"].map("; ".join)
        frame = frame.fillna(0)
    return frame


def rater_agreement(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Pairwise agreement (and Cohen's kappa) on the verdicts of raters who voted on the same items."""
    latest: dict[tuple[str, str, int, str], str] = {}
    for v in votes:
        latest[(v["rater"], v["item_id"], v.get("sample", 0), pair_key(v["A"], v["B"]))] = v["winner"]
    raters = sorted({key[0] for key in latest})
    pairs = []
    for i, a in enumerate(raters):
        for b in raters[i + 1:]:
            shared = [(latest[key], latest[(b, *key[1:])]) for key in latest
                      if key[0] == a and (b, *key[1:]) in latest]
            if shared:
                pairs.append({"raters": f"{a} / {b}", "items": len(shared),
                              "agreement": sum(x == y for x, y in shared) / len(shared),
                              "kappa": cohen_kappa(shared)})
    mean = sum(p["agreement"] for p in pairs) / len(pairs) if pairs else float("nan")
    return {"raters": raters, "pairs": pairs, "mean_agreement": mean}


def cohen_kappa(pairs: list[tuple[str, str]]) -> float:
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    labels = {x for pair in pairs for x in pair}
    expected = sum((sum(a == l for a, _ in pairs) / n) * (sum(b == l for _, b in pairs) / n) for l in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def bradley_terry(votes: list[dict[str, Any]], iterations: int = 500) -> list[tuple[str, float]]:
    """Bradley-Terry strengths from pairwise votes (ties half a win each), by Hunter's MM algorithm.

    Returned best first, as log-strengths scaled like Elo (400 / ln 10 per unit), centred on 1000.
    """
    models = sorted({v["A"] for v in votes} | {v["B"] for v in votes})
    wins = {m: 0.0 for m in models}
    games: Counter = Counter()
    for v in votes:
        a, b = v["A"], v["B"]
        games[frozenset((a, b))] += 1
        if v["winner"] in (a, b):
            wins[v["winner"]] += 1
        else:
            wins[a] += 0.5
            wins[b] += 0.5
    strength = {m: 1.0 for m in models}
    for _ in range(iterations):
        updated = {}
        for m in models:
            denominator = sum(n / (strength[m] + strength[o]) for pair, n in games.items() if m in pair
                              for o in pair - {m})
            updated[m] = max(wins[m], 1e-9) / denominator if denominator else strength[m]
        total = sum(updated.values())
        strength = {m: s * len(models) / total for m, s in updated.items()}
    logs = {m: math.log(s) for m, s in strength.items()}
    centre = sum(logs.values()) / len(logs) if logs else 0.0
    return sorted(((m, 1000 + 400 / math.log(10) * (x - centre)) for m, x in logs.items()),
                  key=lambda pair: -pair[1])


def vote_results(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Every pair's win rate (tuned vs prompted generic first), rater agreement, and a ranking of three or more."""
    models = {v["A"] for v in votes} | {v["B"] for v in votes}
    return {"pairs": [asdict(r) for r in pair_results(votes)], "agreement": rater_agreement(votes),
            "bradley_terry": bradley_terry(votes) if len(models) > 2 else []}
