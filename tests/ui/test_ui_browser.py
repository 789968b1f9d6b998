"""The dashboard in a real browser: Debian's Chromium driven by Playwright (its own browser
download is never used), against a real ``arangotasks serve``. Each step saves a screenshot to
``test-artifacts/ui/`` (the CI keeps that folder)."""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT_PASSWORD
from tests.e2e.http import Http

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
# The flags a closed network and a root user need (see the machine notes in the README).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser is a failure there
            pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def follow(page, selector: str) -> None:
    """Click a link or a form's button and wait until the page it leads to has loaded.

    A bare click returns once its navigation has begun; a reload or goto sent before the
    redirect's page commits races Chromium's frame swap and fails with "Not attached to an
    active page" (seen in CI, and in about one of ten tries of a submit then a reload here).
    """
    with page.expect_navigation():
        page.click(selector)


def log_in(page, server, user: str, password: str) -> None:
    page.goto(server.url + "/ui/")
    page.fill("#username", user)
    page.fill("#password", password)
    follow(page, "button[type=submit]")
    page.wait_for_selector("table#tasks")


def test_operator_flow(browser, server):
    root = Http(server.url, ("root", ROOT_PASSWORD))
    task = root.ok(
        "POST",
        "/_api/tasks",
        {
            "name": "nightly-report",
            "command": "// report\nprint('report for', params.team); return {rows: 3};",
            "params": {"team": "blue"},
            "period": 3600,
            "offset": 3600,
        },
    )
    root.ok(
        "POST",
        "/_api/tasks",
        {"name": "breaks", "command": "throw new Error('no rows')", "offset": 3600},
    )
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/ui/")
    shot(page, "01-login")
    log_in(page, server, "root", ROOT_PASSWORD)
    assert page.locator("table#tasks").get_by_text("nightly-report").is_visible()
    page.fill("input[name=q]", "nightly")
    follow(page, "text=Filter")
    assert page.locator("table#tasks tbody tr").count() == 1
    shot(page, "02-tasks")

    follow(page, "text=nightly-report")
    page.wait_for_selector("h1:has-text('nightly-report')")
    assert "every 1 h" in page.inner_text(".facts")
    follow(page, "text=Run now")
    # The new run appears with its output (the page is reloaded until the run finished).
    for _ in range(100):
        page.reload()
        if page.locator("table.runs .status-succeeded").count():
            break
        page.wait_for_timeout(100)
    assert "report for blue" in page.inner_text("table.runs")
    shot(page, "03-task")
    follow(page, "table.runs tbody tr >> nth=0 >> a")
    assert "report for blue" in page.inner_text("#output")
    shot(page, "04-run")

    page.goto(server.url + "/ui/")
    follow(page, "text=breaks")
    follow(page, "text=Run now")
    for _ in range(100):
        page.goto(server.url + "/ui/failures")
        if "no rows" in page.inner_text("main"):
            break
        page.wait_for_timeout(100)
    assert "Error: no rows" in page.inner_text("main")
    shot(page, "05-failures")

    page.goto(server.url + f"/ui/tasks/{task['id']}")
    follow(page, "button:has-text('Pause')")
    page.wait_for_selector("button:has-text('Resume')")
    assert "(paused)" in page.inner_text(".facts")
    assert root.ok("GET", f"/_api/tasks/{task['id']}?details=true")["enabled"] is False
    shot(page, "06-paused")
    follow(page, "button:has-text('Resume')")
    page.wait_for_selector("button:has-text('Pause')")
    page.once("dialog", lambda dialog: dialog.accept())
    follow(page, "button.danger")
    page.wait_for_selector("table#tasks")
    assert "nightly-report" not in page.inner_text("table#tasks")
    status, _ = root.call("GET", f"/_api/tasks/{task['id']}")
    assert status == 404
    shot(page, "07-after-delete")
    page.close()


def test_second_user_sees_only_their_tasks(browser, server):
    Http(server.url, ("root", ROOT_PASSWORD)).ok(
        "POST", "/_api/tasks", {"name": "root-only", "command": "1", "offset": 3600}
    )
    Http(server.url, ("alice", "alice-pw")).ok(
        "POST", "/_api/tasks", {"name": "alice-job", "command": "1", "offset": 3600}
    )
    page = browser.new_page()
    log_in(page, server, "alice", "alice-pw")
    text = page.inner_text("table#tasks")
    assert "alice-job" in text and "root-only" not in text
    shot(page, "08-other-user")
    page.close()


def test_submit_then_reload(browser, server):
    """The race ``follow`` closes: a form post, then at once a reload, many times over."""
    task = Http(server.url, ("root", ROOT_PASSWORD)).ok(
        "POST", "/_api/tasks", {"name": "again", "command": "1", "period": 3600, "offset": 3600}
    )
    page = browser.new_page()
    log_in(page, server, "root", ROOT_PASSWORD)
    page.goto(server.url + f"/ui/tasks/{task['id']}")
    for _ in range(25):
        follow(page, "text=Run now")
        page.reload()
    assert page.locator("table.runs tbody tr").count() >= 25
    page.close()
