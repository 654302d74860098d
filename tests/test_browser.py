"""As a learner uses it: JupyterLab in headless Chromium runs 04_compare: votes, edits, plays, restarts.

Starts a token-free JupyterLab on loopback in a temporary folder, drives Debian's Chromium through
Playwright (the system browser: Playwright's own browser download does not work here), runs every
cell, then: votes blind on three items with a reason (no contender named anywhere in the widget's
DOM), edits two drafts until it would send them and saves them, types a request into the
playground and watches the three answers stream in, keeps one, restarts the kernel and checks the
widget resumes at the first unvoted item and the next unedited draft with nothing lost or doubled,
and finally reveals the labels.
Screenshots go to test-artifacts/browser/. Skips only where Chromium is not installed; with
BRANDKIT_REQUIRE_BROWSER=1 (CI) a missing browser fails the test instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
RATER = "Robin"

pytestmark = pytest.mark.browser


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("BRANDKIT_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required here (BRANDKIT_REQUIRE_BROWSER=1) but is not installed: "
                    "`make test` installs Debian's chromium package")
    pytest.skip("Chromium is not installed (make test installs it with apt-get where it can)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def jupyterlab(tmp_path, small_run):
    """A token-free JupyterLab on loopback, rooted in a temporary folder holding 04_compare and a trained run."""
    browser_path = chromium()
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "04_compare.ipynb", root)
    run_dir = root / "run"
    for stage in ("collect", "clean", "examples", "train"):  # the earlier notebooks' work, done already
        shutil.copytree(small_run.path(stage), run_dir / stage)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}  # plots inline, as learners see them
    env = {**env, "BRANDKIT_MODE": "smoke", "BRANDKIT_RUN": str(run_dir), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    # start the notebook's own kernel without asking which one, and keep every cell in the page
    # (JupyterLab otherwise drops cells scrolled out of view, and the widget with them)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True, "windowingMode": "none"}))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"), start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield url, run_dir, browser_path
    finally:
        # stop the server and the kernels it started (one process group), by id
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)


def run_all(page, restart: bool = False) -> None:
    page.get_by_role("menuitem", name="Kernel" if restart else "Run").click()
    if restart:
        page.get_by_text("Restart Kernel and Run All Cells…", exact=True).click()
        page.locator(".jp-Dialog").get_by_role("button", name="Confirm Kernel Restart").click()
        page.locator(".jp-Dialog").wait_for(state="detached")
    else:
        page.get_by_text("Run All Cells", exact=True).click()


def run_finished(page) -> None:
    """Wait until Run All has reached the last cell (the last exercise's answer printed).

    Until then the kernel is running the cells after the widget and queues the widget's clicks,
    as it would for a learner; outputs from before a restart are marked and do not count.
    """
    page.locator(".jp-OutputArea-output:not([data-before-restart])", has_text="Answer 3: ").first.wait_for(
        state="visible", timeout=600_000)


NAMES = re.compile(r"\b(tuned|untuned|generic|prompted|base|adapter)\b|brand prompt", re.I)


def widget(page, fresh: bool = False, name: str = "bk-comparison"):
    """A brandkit widget; `fresh` waits for the one drawn after a restart, not the old output."""
    view = page.locator(f".{name}:not([data-before-restart])" if fresh else f".{name}").last
    view.wait_for(state="visible", timeout=300_000)
    view.scroll_into_view_if_needed()
    return view


def lines_on_disk(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / "compare" / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def votes_on_disk(run_dir: Path) -> list[dict]:
    return lines_on_disk(run_dir, "votes.jsonl")


def assert_blind(view) -> None:
    """Nothing in the comparison widget's DOM names a contender (text, attributes, hidden parts)."""
    found = NAMES.findall(view.evaluate("node => node.outerHTML"))
    assert not found, found


def sign_in(view) -> None:
    view.locator(".bk-rater input").fill(RATER)
    view.locator(".bk-rater input").press("Tab")


def test_learner_votes_edits_plays_and_resumes_after_a_restart(jupyterlab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, run_dir, browser_path = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/04_compare.ipynb")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            select_kernel = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
            try:  # JupyterLab may still ask which kernel when its kernel list arrives late
                select_kernel.click(timeout=5_000)
            except PlaywrightTimeout:
                pass
            expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute(
                "data-status", "idle", timeout=120_000)
            run_all(page)

            # Blind first: no labelled view on offer, nothing names a contender.
            view = widget(page)
            run_finished(page)
            expect(view.locator(".bk-left .bk-out")).not_to_have_text("", timeout=60_000)
            expect(view.locator(".bk-right .bk-out")).not_to_have_text("")
            expect(view.locator(".bk-mode")).not_to_contain_text("Labelled")
            sign_in(view)
            expect(view.locator(".bk-position")).to_contain_text("item 1 /")
            assert_blind(view)
            choices = [("a", "warmer, and it sounds like us"), ("b", ""), ("tie", "")]
            for number, (choice, reason) in enumerate(choices, 1):
                if reason:
                    view.locator(".bk-reason textarea").fill(reason)
                button = view.locator(f"button.bk-vote-{choice}")
                expect(button).to_be_enabled()
                button.click()
                expect(view.locator(".bk-status")).to_contain_text(f"{number} of", timeout=30_000)
                expect(button).to_be_disabled()
                assert len(votes_on_disk(run_dir)) == number  # written at once, not at the end
                assert_blind(view)  # no reveal after a vote, no running win rate
                expect(view.locator(".bk-winrate")).to_have_text("")
                if number == 1:
                    view.screenshot(path=str(ARTIFACTS / "1-blind-vote.png"))
                view.locator("button.bk-next").click()
                expect(view.locator(".bk-position")).to_contain_text(f"item {number + 1} /")
            votes = votes_on_disk(run_dir)
            assert [v["choice"] for v in votes] == ["A", "B", "tie"]
            assert votes[0]["reason"] == "warmer, and it sounds like us" and {v["rater"] for v in votes} == {RATER}
            assert {(v["A"], v["B"]) for v in votes} <= {("tuned", "prompted"), ("prompted", "tuned")}

            # Editing mode: one anonymous draft at a time, edited until it would be sent, saved.
            view.locator(".bk-mode").get_by_text("Edit a draft", exact=True).click()
            expect(view.locator(".bk-position")).to_contain_text("draft 1 /")
            draft = view.locator(".bk-edit textarea")
            for number in (1, 2):
                original = draft.input_value()
                assert original.strip()
                draft.fill(f"Hi friends! {original} Stay warm, the Ember crew ☕")
                view.locator("button.bk-edit-save").click()
                expect(view.locator(".bk-status")).to_contain_text(f"Saved draft {number}", timeout=30_000)
                expect(view.locator(".bk-position")).to_contain_text(f"draft {number + 1} /")
                assert len(lines_on_disk(run_dir, "edits.jsonl")) == number
                assert_blind(view)
                if number == 1:
                    view.screenshot(path=str(ARTIFACTS / "2-editing-a-draft.png"))
            edits = lines_on_disk(run_dir, "edits.jsonl")
            assert all(e["sent"].startswith("Hi friends! ") and 0 < e["kept"] <= 1 for e in edits)
            assert len({e["contender"] for e in edits} | {"tuned", "prompted", "generic"}) == 3

            # The playground: type a request, watch the answers stream in, keep one.
            play = widget(page, name="bk-playground")
            play.locator(".bk-play-request textarea").fill("Write a promotional email for our new fall product line.")
            play.locator(".bk-play-request textarea").press("Tab")
            play.evaluate("""node => {  // every text the tuned answer shows on its way, as the page draws it
                window.bkStream = [];
                const pane = node.querySelector('.bk-play-out-tuned');
                new MutationObserver(() => window.bkStream.push(pane.innerText)).observe(
                    pane, {childList: true, subtree: true, characterData: true});
            }""")
            play.locator("button.bk-play-go").click()
            expect(play.locator(".bk-play-out-tuned .bk-done")).to_be_attached(timeout=180_000)
            for contender in ("generic", "prompted", "tuned"):
                expect(play.locator(f".bk-play-out-{contender} .bk-play-out")).not_to_have_text("")
            shown = page.evaluate("window.bkStream.filter(t => t.trim())")
            assert len(set(shown)) >= 3, shown  # the answer grew in the page piece by piece
            assert all(len(a) <= len(b) for a, b in zip(shown, shown[1:])) or len(set(shown)) >= 3
            expect(play.locator(".bk-play-title-prompted")).to_contain_text("prompt")
            play.locator("button.bk-play-keep-tuned").click()
            expect(play.locator(".bk-play-status")).to_contain_text("Kept", timeout=30_000)
            [kept] = lines_on_disk(run_dir, "playground.jsonl")
            assert kept["contender"] == "tuned" and kept["request"].startswith("Write a promotional email")
            assert kept["text"] and kept["text"] in play.locator(".bk-play-out-tuned").inner_text()
            play.screenshot(path=str(ARTIFACTS / "3-playground.png"))

            # A kernel restart, then the same learner comes back: nothing lost, nothing doubled, resumed.
            view.evaluate("node => node.setAttribute('data-before-restart', '')")
            play.evaluate("node => node.setAttribute('data-before-restart', '')")
            page.evaluate("() => document.querySelectorAll('.jp-OutputArea-output').forEach("
                          "node => node.setAttribute('data-before-restart', ''))")
            run_all(page, restart=True)
            view = widget(page, fresh=True)
            run_finished(page)
            expect(view.locator(".bk-position")).to_contain_text("item 1 /", timeout=120_000)
            sign_in(view)
            expect(view.locator(".bk-position")).to_contain_text("item 4 /")
            expect(view.locator(".bk-position")).to_contain_text("3 voted")
            expect(view.locator("button.bk-vote-a")).to_be_enabled()
            assert_blind(view)
            view.locator(".bk-mode").get_by_text("Edit a draft", exact=True).click()
            expect(view.locator(".bk-position")).to_contain_text("draft 3 /")
            expect(view.locator(".bk-position")).to_contain_text("2 saved")
            expect(view.locator("button.bk-edit-save")).to_be_enabled()
            view.screenshot(path=str(ARTIFACTS / "4-resumed-after-restart.png"))
            assert votes_on_disk(run_dir) == votes and lines_on_disk(run_dir, "edits.jsonl") == edits

            # Revealing early: the labelled view appears, and what is seen there is flagged.
            view.locator("button.bk-reveal-labels").click()
            view.locator(".bk-mode").get_by_text("Labelled view", exact=True).click()
            expect(view.locator(".bk-third .bk-out")).not_to_have_text("")
            expect(view).to_contain_text("Tuned")
            expect(view.locator(".bk-winrate")).to_contain_text("over prompts")
            assert view.locator(".bk-badge").count() >= 9
            view.screenshot(path=str(ARTIFACTS / "5-labels-revealed.png"))
            seen = lines_on_disk(run_dir, "labels_seen.jsonl")
            assert [r["event"] for r in seen][:2] == ["reveal", "seen"] and seen[0]["rater"] == RATER
            page.screenshot(path=str(ARTIFACTS / "6-notebook.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))  # what the learner would have seen
            (ARTIFACTS / "failure-outputs.txt").write_text(  # every rendered cell output, errors included
                "\n----\n".join(page.locator(".jp-OutputArea-output").all_inner_texts()))
            raise
        finally:
            browser.close()
