"""Edits: "how far is the draft from what I would send?", measured.

A rater edits a draft (not told which contender wrote it) until they would send it, and saves. Each
save is one durable JSON line beside the votes (brandkit.compare.journal), keyed by rater, item,
sample and contender, so a restart resumes at the next draft and never doubles one. Per contender
the report shows how much of the draft survived, by rapidfuzz's character-level measures:

- similarity: normalised Indel similarity of draft and sent text (rapidfuzz's `fuzz.ratio` / 100);
- kept: the share of the draft's characters still in the sent text, in order (longest common
  subsequence over the draft's length);

and how long the editing took.
"""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path
from typing import Any

from .journal import append_jsonl, first_by_key, read_jsonl
from .votes import now


def survival(draft: str, sent: str) -> dict[str, float]:
    """How much of the draft is in the sent version, character by character."""
    from rapidfuzz import fuzz
    from rapidfuzz.distance import LCSseq, Levenshtein

    draft, sent = draft.strip(), sent.strip()
    return {"similarity": fuzz.ratio(draft, sent) / 100.0,
            "kept": LCSseq.similarity(draft, sent) / len(draft) if draft else float(not sent),
            "edit_distance": float(Levenshtein.distance(draft, sent))}


def edit_key(rater: str, item_id: str, sample: int, contender: str) -> str:
    return f"{rater.strip()}|{item_id}|{sample}|{contender}"


def edit_order(rater: str, item_id: str, sample: int, contender: str, seed: int = 3407) -> int:
    """A rater's drafts come in an order fixed by a hash, so the order says nothing about who wrote them."""
    return int(hashlib.sha256(f"{seed}|edit|{rater.strip()}|{item_id}|{sample}|{contender}".encode())
               .hexdigest()[:12], 16)


class EditStore:
    """Edited drafts, one JSON line each, fsync'ed before `add` returns."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def add(self, rater: str, item_id: str, sample: int, contender: str, draft: str, sent: str,
            seconds: float, seen_labelled: bool = False) -> dict[str, Any]:
        from ..config import BrandkitError

        if not rater.strip():
            raise BrandkitError("an edit needs the rater's name")
        record = {"key": edit_key(rater, item_id, sample, contender), "time": now(), "rater": rater.strip(),
                  "item_id": item_id, "sample": sample, "contender": contender, "draft": draft, "sent": sent,
                  "seconds": round(float(seconds), 2), "seen_labelled": bool(seen_labelled),
                  **survival(draft, sent)}
        return append_jsonl(self.path, record)

    def edits(self) -> list[dict[str, Any]]:
        return first_by_key(read_jsonl(self.path))

    def done(self, rater: str) -> set[str]:
        return {e["key"] for e in self.edits() if e["rater"] == rater.strip()}


def edit_summary(edits: list[dict[str, Any]], order: tuple[str, ...] = ("tuned", "prompted", "generic")):
    """Per contender: drafts edited, mean and median similarity, share kept, unchanged drafts, editing time."""
    by: dict[str, list[dict[str, Any]]] = {}
    for e in edits:
        by.setdefault(e["contender"], []).append(e)
    rows = []
    for contender in [c for c in order if c in by] + sorted(set(by) - set(order)):
        rows_ = by[contender]
        rows.append({"contender": contender, "drafts": len(rows_),
                     "similarity": statistics.fmean(e["similarity"] for e in rows_),
                     "median_similarity": statistics.median(e["similarity"] for e in rows_),
                     "kept": statistics.fmean(e["kept"] for e in rows_),
                     "sent_unchanged": sum(e["draft"].strip() == e["sent"].strip() for e in rows_) / len(rows_),
                     "median_seconds": statistics.median(e["seconds"] for e in rows_),
                     "seen_labelled": sum(bool(e.get("seen_labelled")) for e in rows_)})
    return rows
