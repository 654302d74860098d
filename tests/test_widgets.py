"""The notebook widgets, driven in process: the same tests run on ipywidgets 8 and on Colab's 7.7.1.

The last test runs this file again in a subprocess with ipywidgets 7.7.1 first on the path (`make
setup` puts that release, without its dependencies, in the virtual environment's ipywidgets-7.7.1
folder): Colab pins 7.7.1, JupyterLab brings 8.x, and both must work.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from brandkit.compare import EditStore, Generation, VoteStore, blind_sides

IPYWIDGETS_7 = Path(sys.prefix) / "ipywidgets-7.7.1"
PASSED = 13  # every test here but the one that runs the others on 7.7.1


def ipywidgets_major() -> int:
    import ipywidgets

    return int(ipywidgets.__version__.split(".")[0])


def test_runs_on_the_expected_ipywidgets():
    import ipywidgets

    expected = os.environ.get("BRANDKIT_EXPECT_IPYWIDGETS")
    if expected:
        assert ipywidgets.__version__ == expected
    assert ipywidgets_major() in (7, 8)


CODES = {"generic": "xq", "prompted": "yq", "tuned": "zq"}  # anonymous marks, to tell the answers apart
NAMES = re.compile(r"\b(tuned|untuned|generic|prompted|base|adapter)\b|brand prompt", re.I)


def generations(n: int = 4, models=("generic", "prompted", "tuned")) -> list[Generation]:
    return [Generation(f"item{i}", "email", "brand_kit", f"Prompt {i}", "", model, 0,
                       f"answer {i} {CODES[model]} <script>alert(1)</script>", 40 if model == "prompted" else 9)
            for i in range(n) for model in models]


def live_widgets() -> dict:
    import ipywidgets.widgets.widget as module

    instances = getattr(module, "_instances", None)
    return dict(instances if instances is not None else module.Widget.widgets)


def leaks(before: dict, ignore=()) -> list[str]:
    """Every contender name in the state of any widget made since `before` (what the front end holds)."""
    found = []
    for model_id, w in live_widgets().items():
        if model_id in before or any(w is other for other in ignore):
            continue
        state = repr({k: v for k, v in w.get_state().items()  # all but the framework's own module names
                      if not k.startswith(("_model_", "_view_"))})
        found += [f"{type(w).__name__}: {m.group(0)}" for m in NAMES.finditer(state)]
    return found


def code_of(text: str) -> str:
    return next(model for model, code in CODES.items() if code in text)


def test_blind_first_votes_reveal_only_when_every_item_is_voted(tmp_path):
    from brandkit.widgets import BLIND, EDIT, LABELLED, Comparison

    path = tmp_path / "votes.jsonl"
    view = Comparison(generations(2), path)
    assert view.mode.value == BLIND and list(view.mode.options) == [BLIND, EDIT]  # no labelled view offered
    assert all(b.disabled for b in view.vote_buttons.values())  # no name, no vote
    assert "&lt;script&gt;" in view.left.value and "<script>" not in view.left.value
    view.rater.value = "Ann"
    assert len(view.tasks) == 6 and view.index == 0 and not view.revealed
    assert {code_of(view.left.value), code_of(view.right.value)} == {"tuned", "prompted"}  # the pair that matters first
    a_model = blind_sides("item0", 0, "Ann", pair=("tuned", "prompted"))[0]
    assert code_of(view.left.value) == a_model
    view.reason.value = "sounds like us"
    view.vote_buttons["A"].click()
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert saved == [{**saved[0], "rater": "Ann", "item_id": "item0", "choice": "A", "winner": a_model,
                      "reason": "sounds like us", "seen_labelled": False}]
    assert view.reason.value == "" and all(b.disabled for b in view.vote_buttons.values())
    assert not view.revealed and view.results.value == "" and "%" not in view.status.value  # no running win rate
    assert LABELLED not in view.mode.options
    for _ in range(5):
        view.next.click()
        view.vote_buttons["B"].click()
    assert len(VoteStore(path).votes()) == 6
    assert view.revealed and LABELLED in view.mode.options and "over prompts" in view.results.value
    assert "voted on every item" in view.status.value
    view.mode.value = LABELLED
    assert "Tuned" in view.titles[2].value and "prompt 40 tokens" in view.titles[1].value
    assert [code_of(b.value) for b in view.bodies] == ["generic", "prompted", "tuned"]


def test_nothing_in_the_blind_views_state_names_a_contender(tmp_path):
    from brandkit.widgets import BLIND, EDIT, LABELLED, Comparison

    before = live_widgets()
    view = Comparison(generations(3), tmp_path / "votes.jsonl", rater="Ann",
                      measures=None)
    assert not leaks(before)
    for _ in range(3):
        view.vote_buttons["A"].click()
        view.next.click()
        assert not leaks(before), "after a vote"
    view.mode.value = EDIT
    view.draft.value += " edited"
    view.save_button.click()
    assert not leaks(before), "in the editing mode"
    view.reveal_button.click()  # the rater chooses to see the labels ...
    view.mode.value = LABELLED
    assert leaks(before)  # ... and the labelled view names them (the check is not vacuous)
    view.mode.value = BLIND  # back to blind: the labelled content is gone from every widget but the win rates
    assert view.results.value and not leaks(before, ignore=[view.results])


def test_items_seen_labelled_are_flagged(tmp_path):
    from brandkit.widgets import BLIND, EDIT, LABELLED, Comparison

    path = tmp_path / "votes.jsonl"
    view = Comparison(generations(3), path, rater="Ann")
    view.vote_buttons["tie"].click()  # item0, blind
    view.reveal_button.click()
    assert view.revealed and LABELLED in view.mode.options
    view.mode.value = LABELLED  # shows item0 labelled ...
    view.next.click()           # ... and item1
    view.mode.value = BLIND
    assert view.index == 1      # the first unvoted task: item1 for the first pair
    view.vote_buttons["A"].click()
    view.next.click()
    view.vote_buttons["A"].click()  # item2, never seen labelled
    votes = {v["item_id"]: v for v in VoteStore(path).votes()}
    assert (votes["item0"]["seen_labelled"], votes["item1"]["seen_labelled"], votes["item2"]["seen_labelled"]) == \
        (False, True, False)
    view.mode.value = EDIT
    while True:
        task = view.edit_tasks()[view.index]
        if view.edit_done(task):
            break
        view.save_button.click()
    edits = EditStore(tmp_path / "edits.jsonl").edits()
    assert len(edits) == 9 and {e["item_id"] for e in edits if e["seen_labelled"]} == {"item0", "item1"}
    again = Comparison(generations(3), path, rater="Ann")  # after a restart the reveal still stands
    assert again.revealed and LABELLED in again.mode.options
    assert not Comparison(generations(3), path, rater="Bob").revealed


def test_editing_mode_saves_resumes_and_hides_the_writer(tmp_path):
    from brandkit.widgets import EDIT, Comparison

    path = tmp_path / "votes.jsonl"
    view = Comparison(generations(2), path)
    view.mode.value = EDIT
    assert view.save_button.disabled  # no name yet
    view.rater.value = "Ann"
    assert view.mode.value == EDIT and "draft 1 / 6" in view.position.value and "0 saved" in view.position.value
    first = view.edit_tasks()[0]
    draft = view.draft.value
    assert draft == view.items[first[0]]["texts"][first[1]]
    order = [t[1] for t in view.edit_tasks()]
    assert order != sorted(order) and order != ["generic", "prompted", "tuned"] * 2  # shuffled, not by contender
    view.draft.value = draft.replace("answer", "Our answer, friends,")
    view.save_button.click()
    [record] = EditStore(tmp_path / "edits.jsonl").edits()
    assert record["contender"] == first[1] and record["draft"] == draft and record["sent"].startswith("answer") is False
    assert 0 < record["similarity"] < 1 and record["seconds"] >= 0 and record["rater"] == "Ann"
    assert "draft 2 / 6" in view.position.value and "kept" in view.status.value
    view.save_button.click()  # the second draft sent as it is
    # a kernel restart: a new widget resumes at the third draft, and the first two are not offered again
    again = Comparison(generations(2), path, rater="Ann")
    again.mode.value = EDIT
    assert again.index == 2 and "2 saved" in again.position.value and not again.save_button.disabled
    again.previous.click()
    assert again.save_button.disabled and again.draft.disabled  # saved already: shown as sent, not editable
    assert len(EditStore(tmp_path / "edits.jsonl").edits()) == 2


def test_old_two_model_generations_still_compare(tmp_path):
    from brandkit.widgets import Comparison

    old = [Generation(f"item{i}", "email", "brand_kit", f"P {i}", "", m, 0, f"{m} {i}") for i in range(2)
           for m in ("base", "tuned")]
    view = Comparison(old, tmp_path / "votes.jsonl", rater="Ann")
    assert view.pairs == [("tuned", "base")] and len(view.tasks) == 2
    view.vote_buttons["A"].click()
    assert len(VoteStore(tmp_path / "votes.jsonl").votes()) == 1


def test_playground_streams_each_contender_and_keeps_answers(tmp_path):
    """The tiny base model (no adapter: the switch is then a no-op), real streaming, real sliders."""
    from brandkit.compare import PromptBuilder
    from brandkit.config import BrandKit, TrainConfig
    from brandkit.models import load_base_model, load_tokenizer
    from brandkit.widgets import Playground

    tokenizer = load_tokenizer("brandkit-tiny")
    model = load_base_model("brandkit-tiny", TrainConfig(dtype="float32"), tokenizer)
    train = [{"id": f"t{i}", "kind": "email", "messages": [{"role": "user", "content": f"Write email {i}."},
                                                          {"role": "assistant", "content": f"Hi friends! News {i}."}]}
             for i in range(4)]
    builder = PromptBuilder(BrandKit(name="Ember", slug="ember", sign_off="Stay warm"), tokenizer,
                            "You write for Ember.", train, budget=400)
    play = Playground(model, tokenizer, builder, tmp_path / "compare" / "playground.jsonl")
    assert play.kind.options == ("email",) or list(play.kind.options) == ["email"]
    play.generate()
    assert "Type a request" in play.status.value and not play.answers
    play.request.value = "Write a promotional email for our new fall product line."
    play.max_new_tokens.value = 16
    play.temperature.value = 0.0  # greedy: the same answer every time
    redraws = []
    play.outputs["tuned"].observe(lambda change: redraws.append(change["new"]), names="value")
    answers = play.generate()
    assert set(answers) == {"generic", "prompted", "tuned"} and all(answers.values())
    assert len(redraws) > 3 and len(set(redraws)) > 3  # drawn piece by piece, not once at the end
    assert answers["generic"] == answers["tuned"]  # no adapter: the same model and prompt
    assert "prompt" in play.titles["prompted"].value and not play.keep_buttons["prompted"].disabled
    assert play.settings().do_sample is False and play.settings().max_new_tokens == 16
    play.keep_buttons["prompted"].click()
    [kept] = [json.loads(line) for line in (tmp_path / "compare" / "playground.jsonl").read_text().splitlines()]
    assert kept["contender"] == "prompted" and kept["text"] == answers["prompted"] and kept["max_new_tokens"] == 16
    assert kept["request"].startswith("Write a promotional email") and play.keep_buttons["prompted"].disabled


KERNEL_CODE = """
import sys
sys.path.insert(0, {repo!r})
from brandkit.compare import Generation
from brandkit.widgets import Comparison, EDIT
generations = [Generation(f"item{{i}}", "email", "brand_kit", f"Prompt {{i}}", "", m, 0, f"text {{i}} {{m[0]}}")
               for i in range(3) for m in ("generic", "prompted", "tuned")]
view = Comparison(generations, {votes!r}, rater="Ann")
"""


def test_votes_and_edits_survive_a_real_kernel_restart(tmp_path):
    from jupyter_client.manager import start_new_kernel

    def run(client, code):
        reply = client.execute_interactive(code, timeout=120, output_hook=lambda msg: outputs.append(msg))
        assert reply["content"]["status"] == "ok", reply["content"]

    outputs = []
    votes = tmp_path / "votes.jsonl"
    manager, client = start_new_kernel(kernel_name="python3", env={**os.environ, "PYTHONPATH": os.environ.get(
        "PYTHONPATH", "")})
    try:
        setup = KERNEL_CODE.format(repo=str(Path(__file__).resolve().parents[1]), votes=str(votes))
        run(client, setup + "view.vote('A'); view.advance(); view.vote('B')\n"
                            "view.mode.value = EDIT; view.draft.value += ' ok'; view.save_edit()")
        manager.restart_kernel(now=True)
        client.wait_for_ready(timeout=60)
        run(client, setup + "assert view.index == 2, view.index\n"
                            "view.mode.value = EDIT\nassert view.index == 1, view.index\n"
                            "print('resumed', len(view.store.votes()), len(view.edit_store.edits()))")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    printed = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert "resumed 2 1" in printed
    assert len(votes.read_text().splitlines()) == 2 and len((tmp_path / "edits.jsonl").read_text().splitlines()) == 1


def choose_files(upload, files: dict[str, bytes]) -> None:
    """What the browser does when someone picks files, in each major version's own terms."""
    if ipywidgets_major() >= 8:  # the front end sets value: a tuple of dicts, content a memoryview
        upload.value = tuple({"name": name, "type": "text/plain", "size": len(content),
                              "content": memoryview(content), "last_modified": datetime.now(timezone.utc)}
                             for name, content in files.items())
    else:  # 7.x: the front end sends metadata and data, then bumps a counter that rebuilds value
        upload.metadata = [{"name": name, "type": "text/plain", "size": len(content)} for name, content in files.items()]
        upload.data = list(files.values())
        upload._counter += 1


def test_upload_saves_copies(tmp_path):
    from brandkit.widgets import upload_widget

    upload, status = upload_widget(tmp_path / "uploads").children
    choose_files(upload, {"news.txt": b"hello", "menu.csv": b"name,price"})
    assert (tmp_path / "uploads" / "news.txt").read_bytes() == b"hello"
    assert (tmp_path / "uploads" / "menu.csv").read_bytes() == b"name,price"
    assert "Saved 2 file(s)" in status.value and "news.txt" in status.value


def test_upload_keeps_only_the_file_name(tmp_path):
    from brandkit.widgets import upload_widget

    upload, _ = upload_widget(tmp_path / "a" / "uploads").children
    choose_files(upload, {"../escape.txt": b"x"})
    assert (tmp_path / "a" / "uploads" / "escape.txt").exists() and not (tmp_path / "a" / "escape.txt").exists()


def test_diff_pager_shows_reasons_and_diffs():
    from brandkit.widgets import DiffPager

    records = [{"id": i, "title": f"Doc {i}", "source": "a.txt", "kind": "email", "locator": "", "text": text}
               for i, text in (("1", "Hello  there <b>friend</b>"), ("2", "gone"), ("3", "same"))]
    result = SimpleNamespace(dataset=[{"id": "1", "text": "Hello there friend"}, {"id": "3", "text": "same"}],
                             audit=[{"id": "1", "step": "strip_html", "reason": "HTML tags removed"},
                                    {"id": "2", "step": "too_short", "reason": "1 word"}])
    pager = DiffPager(records, result)
    assert [item[0] for item in pager.items] == ["1", "2"]
    assert "strip_html: HTML tags removed" in pager.view.value and "<del>" in pager.view.value
    assert "&lt;b&gt;" in pager.view.value  # the document's own markup is shown, not rendered
    pager.next.click()
    assert "too_short: 1 word" in pager.view.value and "<ins>" not in pager.view.value
    pager.next.click()
    assert pager.index == 0  # wraps round


def test_live_loss_plot_redraws_on_each_loss_log(monkeypatch):
    from brandkit.widgets import LiveLossPlot

    plot = LiveLossPlot()
    drawn = []
    monkeypatch.setattr(plot, "draw", lambda max_steps=None: drawn.append((len(plot.history), max_steps)))
    state = SimpleNamespace(global_step=0, max_steps=10)
    for step, logs in ((1, {"loss": 3.0}), (2, {"loss": 2.5}), (2, {"eval_loss": 2.7}), (3, {"learning_rate": 1e-3})):
        state.global_step = step
        plot.callback.on_log(None, state, None, logs=logs)
    assert [h["step"] for h in plot.history] == [1, 2, 2]  # logs without a loss are not plotted
    assert drawn == [(1, 10), (2, 10), (3, 10)]


def test_live_loss_plot_draws_both_curves():
    from brandkit.widgets import LiveLossPlot

    plot = LiveLossPlot()
    plot.history = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}, {"step": 2, "eval_loss": 2.7}]
    plot.draw(max_steps=10)  # outside a kernel the Output widget passes the figure through; it must not fail


def test_the_same_widget_tests_pass_on_ipywidgets_7_7_1():
    if not (IPYWIDGETS_7 / "ipywidgets").is_dir():
        pytest.fail(f"ipywidgets 7.7.1 is not in {IPYWIDGETS_7}: `make setup` installs it there")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(IPYWIDGETS_7), os.environ.get("PYTHONPATH", "")]),
           "BRANDKIT_EXPECT_IPYWIDGETS": "7.7.1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider",
         "-k", "not test_the_same_widget_tests_pass_on_ipywidgets_7_7_1"],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{PASSED} passed" in result.stdout
