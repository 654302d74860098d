"""As a learner uses it: JupyterLab in headless Chromium runs 04_compare and votes through the widgets.

Starts a token-free JupyterLab on loopback in a temporary folder, drives Debian's Chromium through
Playwright (the system browser: Playwright's own browser download does not work here), runs every
cell, reads the side-by-side view, votes blind on three items with a reason, then restarts the
kernel and checks the widget resumes at the first unvoted item with every vote still on disk.
Screenshots go to test-artifacts/browser/. Skips only where Chromium is not installed; with
BRANDKIT_REQUIRE_BROWSER=1 (CI) a missing browser fails the test instead.
"""

from __future__ import annotations

import json
import os
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


def widget(page, fresh: bool = False):
    """The comparison widget; `fresh` waits for the one drawn after a restart, not the old output."""
    view = page.locator(".bk-comparison:not([data-before-restart])" if fresh else ".bk-comparison").last
    view.wait_for(state="visible", timeout=300_000)
    view.scroll_into_view_if_needed()
    return view


def votes_on_disk(run_dir: Path) -> list[dict]:
    path = run_dir / "compare" / "votes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_learner_votes_through_the_widgets_and_resumes_after_a_restart(jupyterlab):
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

            # Side by side: both outputs and the metric badges are there.
            view = widget(page)
            expect(view.locator(".bk-left .bk-out")).not_to_have_text("", timeout=60_000)
            expect(view.locator(".bk-right .bk-out")).not_to_have_text("")
            assert view.locator(".bk-badge").count() >= 6
            expect(view.locator(".bk-badge").first).to_be_visible()
            expect(view.locator(".bk-position")).to_contain_text("1 /")
            view.screenshot(path=str(ARTIFACTS / "1-side-by-side.png"))

            # Blind mode: a name, then three votes with a reason on the first.
            view.locator(".bk-mode").get_by_text("Blind vote", exact=True).click()
            view.locator(".bk-rater input").fill(RATER)
            view.locator(".bk-rater input").press("Tab")
            expect(view.locator(".bk-position")).to_contain_text("item 1 /")
            expect(view.locator(".bk-reveal")).to_have_count(0)
            choices = [("a", "warmer, and it sounds like us"), ("b", ""), ("tie", "")]
            for number, (choice, reason) in enumerate(choices, 1):
                if reason:
                    view.locator(".bk-reason textarea").fill(reason)
                button = view.locator(f"button.bk-vote-{choice}")
                expect(button).to_be_enabled()
                button.click()
                expect(view.locator(".bk-status")).to_contain_text("Saved", timeout=30_000)
                expect(view.locator(".bk-reveal")).to_have_count(2)  # both sides revealed after the vote
                expect(button).to_be_disabled()
                assert len(votes_on_disk(run_dir)) == number  # written at once, not at the end
                if number == 1:
                    view.screenshot(path=str(ARTIFACTS / "2-after-first-vote.png"))
                view.locator("button.bk-next").click()
                expect(view.locator(".bk-position")).to_contain_text(f"item {number + 1} /")

            votes = votes_on_disk(run_dir)
            assert [v["choice"] for v in votes] == ["A", "B", "tie"]
            assert votes[0]["reason"] == "warmer, and it sounds like us" and {v["rater"] for v in votes} == {RATER}
            assert len({v["item_id"] for v in votes}) == 3

            # A kernel restart, then the same learner comes back: the first unvoted item, no vote lost.
            view.evaluate("node => node.setAttribute('data-before-restart', '')")
            run_all(page, restart=True)
            view = widget(page, fresh=True)
            expect(view.locator(".bk-position")).to_contain_text("1 /", timeout=120_000)
            view.locator(".bk-mode").get_by_text("Blind vote", exact=True).click()
            view.locator(".bk-rater input").fill(RATER)
            view.locator(".bk-rater input").press("Tab")
            expect(view.locator(".bk-position")).to_contain_text("item 4 /")
            expect(view.locator(".bk-position")).to_contain_text("3 voted")
            expect(view.locator(".bk-reveal")).to_have_count(0)
            expect(view.locator("button.bk-vote-a")).to_be_enabled()
            view.screenshot(path=str(ARTIFACTS / "3-resumed-after-restart.png"))
            assert votes_on_disk(run_dir) == votes
            page.screenshot(path=str(ARTIFACTS / "4-notebook.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))  # what the learner would have seen
            (ARTIFACTS / "failure-outputs.txt").write_text(  # every rendered cell output, errors included
                "\n----\n".join(page.locator(".jp-OutputArea-output").all_inner_texts()))
            raise
        finally:
            browser.close()
