"""The notebook widgets, driven in process: the same tests run on ipywidgets 8 and on Colab's 7.7.1.

The last test runs this file again in a subprocess with ipywidgets 7.7.1 first on the path (`make
setup` puts that release, without its dependencies, in the virtual environment's ipywidgets-7.7.1
folder): Colab pins 7.7.1, JupyterLab brings 8.x, and both must work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from brandkit.compare import Generation, VoteStore, blind_sides

IPYWIDGETS_7 = Path(sys.prefix) / "ipywidgets-7.7.1"


def ipywidgets_major() -> int:
    import ipywidgets

    return int(ipywidgets.__version__.split(".")[0])


def test_runs_on_the_expected_ipywidgets():
    import ipywidgets

    expected = os.environ.get("BRANDKIT_EXPECT_IPYWIDGETS")
    if expected:
        assert ipywidgets.__version__ == expected
    assert ipywidgets_major() in (7, 8)


def generations(n: int = 4) -> list[Generation]:
    out = []
    for i in range(n):
        for model in ("base", "tuned"):
            out.append(Generation(f"item{i}", "email", "brand_kit", f"Prompt {i}", "", model, 0,
                                  f"{model} answer {i} <script>alert(1)</script>"))
    return out


def test_comparison_side_by_side_and_blind_votes(tmp_path):
    from brandkit.widgets import Comparison

    path = tmp_path / "votes.jsonl"
    view = Comparison(generations(), path)
    assert "base answer 0" in view.left.value and "tuned answer 0" in view.right.value
    assert "&lt;script&gt;" in view.left.value and "<script>" not in view.left.value
    view.next.click()
    assert "answer 1" in view.left.value
    view.mode.value = "Blind vote"
    assert all(b.disabled for b in view.vote_buttons.values())  # no name, no vote
    view.rater.value = "Ann"
    assert view.index == 0 and not view.revealed
    a_model = blind_sides("item0", 0, "Ann")[0]
    assert f"{a_model} answer 0" in view.left.value
    view.reason.value = "sounds like us"
    view.vote_buttons["A"].click()
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert saved == [{**saved[0], "rater": "Ann", "item_id": "item0", "choice": "A", "winner": a_model,
                      "reason": "sounds like us"}]
    assert view.revealed and "bk-reveal" in view.left_title.value and view.reason.value == ""
    assert all(b.disabled for b in view.vote_buttons.values())
    view.next.click()
    view.vote_buttons["tie"].click()
    assert len(path.read_text().splitlines()) == 2

    # a kernel restart: a new widget over the same file resumes at the first unvoted item
    again = Comparison(generations(), path, rater="Ann")
    again.mode.value = "Blind vote"
    assert again.index == 2 and not again.revealed
    assert len(VoteStore(path).votes()) == 2
    other = Comparison(generations(), path, rater="Bob")
    other.mode.value = "Blind vote"
    assert other.index == 0


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
    assert "7 passed" in result.stdout
