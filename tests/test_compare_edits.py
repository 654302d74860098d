"""Compare edits and durability: how much of a draft survived, and nothing lost or doubled when a process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from brandkit.compare import EditStore, edit_summary, read_jsonl, survival

REPO = Path(__file__).resolve().parents[1]


def test_survival_is_rapidfuzz_character_similarity():
    from rapidfuzz import fuzz

    draft = "Hi friends! Copper Leaf is here. Stay warm, the Ember crew"
    assert survival(draft, draft) == {"similarity": 1.0, "kept": 1.0, "edit_distance": 0.0}
    sent = "Hi friends! Copper Leaf is back. Stay warm, the Ember crew"
    s = survival(draft, sent)
    assert s["similarity"] == pytest.approx(fuzz.ratio(draft, sent) / 100) and 0.85 < s["similarity"] < 1
    assert s["edit_distance"] == 4.0  # "here" -> "back"
    rewritten = survival(draft, "Completely different text, written from scratch.")
    assert rewritten["kept"] < 0.5 and rewritten["similarity"] < 0.5
    assert survival(draft, draft[:len(draft) // 2])["kept"] == pytest.approx(0.5, abs=0.02)  # half deleted


def test_edit_store_keys_and_summary(tmp_path):
    store = EditStore(tmp_path / "edits.jsonl")
    store.add("ann", "i1", 0, "tuned", "Draft one.", "Draft one.", 4.0)
    store.add("ann", "i1", 0, "tuned", "Draft one.", "Changed!", 9.0)  # the same draft saved again: ignored
    store.add("ann", "i1", 0, "generic", "A dull text about things.", "A warm text, friends!", 30.0)
    store.add("bob", "i1", 0, "tuned", "Draft one.", "Draft one, friends.", 6.0)
    edits = store.edits()
    assert len(edits) == 3 and store.done("ann") == {"ann|i1|0|tuned", "ann|i1|0|generic"}
    rows = {r["contender"]: r for r in edit_summary(edits)}
    assert list(rows) == ["tuned", "generic"]
    assert rows["tuned"]["drafts"] == 2 and rows["tuned"]["sent_unchanged"] == 0.5
    assert rows["tuned"]["median_seconds"] == 5.0 and rows["tuned"]["kept"] > rows["generic"]["kept"]


# A rater working through the widget in a separate process: every vote and every edit it saves is
# printed after the call returns, so the parent knows what the rater saw saved when it kills it.
RATER = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {repo!r})
    from brandkit.compare import Generation
    from brandkit.widgets import Comparison, EDIT

    generations = [Generation(f"item{{i}}", "email", "brand_kit", f"Prompt {{i}}", "", model, 0,
                              f"draft {{i}} from {{model}}") for i in range(8) for model in ("generic", "prompted", "tuned")]
    view = Comparison(generations, {votes!r}, rater="Ann")
    while True:  # blind votes until done, then edits
        task = view.tasks[view.index]
        if view.task_done(task):
            break
        view.vote("A")
        print("vote", view.items[task[0]]["item_id"], "|".join(sorted(task[1])), flush=True)
        view.advance()
        time.sleep({pause})
    view.mode.value = EDIT
    while True:
        tasks = view.edit_tasks()
        task = tasks[view.index]
        if view.edit_done(task):
            break
        view.draft.value = view.draft.value + " Stay warm!"
        view.save_edit()
        print("edit", view.items[task[0]]["item_id"], task[1], flush=True)
        time.sleep({pause})
    print("finished", flush=True)
''')


def rater_process(tmp_path: Path, pause: float) -> subprocess.Popen:
    script = RATER.format(repo=str(REPO), votes=str(tmp_path / "votes.jsonl"), pause=pause)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_killed_process_loses_nothing_and_a_resumed_one_doubles_nothing(tmp_path):
    worker = rater_process(tmp_path, pause=0.05)
    saved = []
    deadline = time.time() + 120
    while len([s for s in saved if s.startswith("edit")]) < 5 and time.time() < deadline:
        line = worker.stdout.readline()
        assert line, "the rater process ended early"
        saved.append(line.strip())
    worker.send_signal(signal.SIGKILL)  # no clean-up, no flush, no atexit
    worker.wait(timeout=30)
    votes, edits = read_jsonl(tmp_path / "votes.jsonl"), read_jsonl(tmp_path / "edits.jsonl")
    on_disk = {f"vote {v['item_id']} {'|'.join(sorted((v['A'], v['B'])))}" for v in votes} | \
              {f"edit {e['item_id']} {e['contender']}" for e in edits}
    assert set(saved) <= on_disk, "something the rater saw saved is not on disk"
    assert len(votes) == 24  # 8 items x 3 pairs, all voted before editing began

    # the same rater comes back in a new process: it resumes and finishes, with nothing doubled
    resumed = rater_process(tmp_path, pause=0)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and out.strip().endswith("finished")
    assert not [line for line in out.splitlines() if line.startswith("vote")]  # no vote cast twice
    votes, edits = read_jsonl(tmp_path / "votes.jsonl"), read_jsonl(tmp_path / "edits.jsonl")
    assert len(votes) == 24 and len({v["key"] for v in votes}) == 24
    assert len(edits) == 24 and len({e["key"] for e in edits}) == 24  # 8 items x 3 contenders, each once
    assert all(e["sent"].endswith(" Stay warm!") and not e["sent"].endswith("Stay warm! Stay warm!") for e in edits)
    assert json.loads((tmp_path / "labels_seen.jsonl").read_text().splitlines()[0])["reason"] == "voted on every item"
