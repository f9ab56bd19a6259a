"""The viewer end to end, in headless Chromium (Debian's ``chromium``, driven by
Playwright) against the real server: ``python -m threadline serve`` on
127.0.0.1 and a free port, on embedded SQLite seeded beforehand.

Chromium missing fails these tests (CI installs it, see ``.ci/run``); only
``THREADLINE_SKIP_BROWSER=1`` turns them into skips, for local development.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest

from tests.viewer.seeding import LONG, MAIN, OTHER, XSS, Seeded, seed
from threadline.deltas import MessageDelta
from threadline.model import Message, ToolCall, ToolResult
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.testing import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page
    from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WAIT_MS = 15_000


@dataclass
class Served:
    url: str
    seeded: Seeded

    def api(self, token: str | None = None) -> httpx.Client:
        bearer = token or self.seeded.token_a
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10
        )


def _start_server(directory: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "THREADLINE_HOME": str(directory / "home")}
    env.pop("THREADLINE_DB", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "threadline",
                "serve",
                "--db",
                str(directory / "server"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium: missing, the tests fail (skip only when asked to)."""
    if os.environ.get("THREADLINE_SKIP_BROWSER") == "1":
        pytest.skip("THREADLINE_SKIP_BROWSER=1: browser tests are skipped")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    return CHROMIUM


@pytest.fixture(scope="module")
def served(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real server on seeded storage (written before it starts)."""
    directory = tmp_path_factory.mktemp("viewer-e2e")

    async def fill() -> Seeded:
        storage = SqliteWorkspaces(directory / "server")
        try:
            return await seed(storage, directory / "work")
        finally:
            await storage.close()

    seeded = asyncio.run(fill())
    process, url = _start_server(directory, directory / "server.log")
    try:
        yield Served(url, seeded)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser(chromium: Path, served: Served) -> Iterator[Browser]:
    """One headless Chromium for the module (closed before the server stops)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs or throws (a Content-Security-Policy violation is one)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_error(error: PlaywrightError) -> None:
        errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_error)
    return errors


def sign_in(page: Page, served: Served, path: str = "/", token: str | None = None) -> None:
    page.goto(served.url + path)
    assert page.url.startswith(served.url + "/login?next=")
    page.fill("#token", token or served.seeded.token_a)
    page.click("form.login button[type=submit]")
    page.wait_for_url(served.url + path)


# -- the tests --------------------------------------------------------------------


def test_sign_in_open_a_thread_expand_a_tool_call_and_follow_a_sub_agent(
    page: Page, served: Served, console_errors: list[str]
) -> None:
    sign_in(page, served)
    assert page.locator("span.who").inner_text() == "team-a · alice"
    page.click("a.thread-link:text-is('Fix the login bug')")
    page.wait_for_url(f"{served.url}/threads/{MAIN}")
    assert page.locator("#thread-title").inner_text() == "Fix the login bug"
    assert page.locator("article.msg").count() == 6

    # A tool call reads as the agent shows it: the edit as a diff, its result beneath.
    call = page.locator("#c-toolu_edit")
    assert call.locator(".tool-head strong").inner_text() == "Edit"
    assert call.locator("pre.diff .dl-add").inner_text() == "+return user.password_ok"
    assert call.locator("details.tool-result pre").inner_text() == "edited auth.py"
    assert not page.locator("#m-m-edit-result").is_visible()
    read = page.locator("#c-toolu_read")
    read.locator("details.tool-input-box > summary").click()  # fold the input away
    read.locator("pre.tool-input").wait_for(state="hidden")

    operation = page.locator("details.op").first
    operation.locator("summary").click()
    page.locator("details.op .dl-add").wait_for()
    assert page.locator("details.op .dl-add").inner_text() == "+    return user.password_ok"
    assert page.locator("details.op .op-files").count() == 0

    page.wait_for_selector("#live[data-state=on]")
    page.locator("#costs dt:text-is('Total cost')").first.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "thread-page.png"), full_page=True)

    page.click("a.tree-link:text-is('Task: find every caller of login')")
    page.wait_for_url(f"{served.url}/threads/{served.seeded.sub}")
    assert page.locator("#thread-title").inner_text() == "Task: find every caller of login"
    assert page.locator("a.up").get_attribute("href") == f"/threads/{MAIN}"
    assert console_errors == []


def test_search_from_the_thread_list(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.fill("input[name=q]", "password")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"{served.url}/?q=password*")
    hits = page.locator("li.hit a.hit-thread")
    assert "Fix the login bug" in hits.all_inner_texts()
    assert page.locator("li.hit mark").first.inner_text().lower() == "password"
    hits.filter(has_text="Fix the login bug").first.click()
    page.wait_for_url(f"{served.url}/threads/{MAIN}#m-*")
    assert page.locator("#thread-title").inner_text() == "Fix the login bug"


def test_a_message_appended_through_the_api_appears_live(
    page: Page, served: Served, console_errors: list[str]
) -> None:
    watched = served.seeded.sub
    sign_in(page, served, f"/threads/{watched}")
    page.wait_for_selector("#live[data-state=on]")
    before = int(page.locator("[data-stat=messages]").inner_text())
    with served.api() as api:
        head = api.get(f"/v1/threads/{watched}", params={"limit": 0}).json()["head"]
        message = Message(
            id="m-live",
            role="assistant",
            content="Appended **elsewhere**.",
            tool_calls=(ToolCall(id="toolu_live", name="Bash", input={"command": "pytest"}),),
        )
        body = {
            "base_version": head["v"],
            "deltas": [orjson.loads(MessageDelta.of(message).model_dump_json())],
        }
        assert api.post(f"/v1/threads/{watched}/deltas", json=body).status_code == 200
    appeared = page.locator("#m-m-live")
    appeared.wait_for(state="visible")
    assert appeared.locator(".content strong").inner_text() == "elsewhere"
    assert appeared.locator("section.tool-call .tool-head strong").inner_text() == "Bash"
    assert appeared.locator("pre.tool-shell").inner_text() == "$ pytest"
    page.wait_for_function(
        "n => document.querySelector('[data-stat=messages]').textContent === String(n)",
        arg=before + 1,
    )
    assert page.locator("[data-stat=v]").inner_text() == str(head["v"] + 1)
    assert page.locator("article.msg").last.get_attribute("id") == "m-m-live"

    # The result arrives later, in a message of its own: it joins its call's block.
    with served.api() as api:
        answer = Message(
            id="m-live-result",
            role="user",
            tool_results=(ToolResult(tool_call_id="toolu_live", output="3 passed"),),
        )
        body = {
            "base_version": head["v"] + 1,
            "deltas": [orjson.loads(MessageDelta.of(answer).model_dump_json())],
        }
        assert api.post(f"/v1/threads/{watched}/deltas", json=body).status_code == 200
    joined = page.locator("#c-toolu_live #r-toolu_live")
    joined.wait_for(state="visible")
    assert joined.locator("pre").inner_text() == "3 passed"
    assert not page.locator("#m-m-live-result").is_visible()
    assert console_errors == []


def test_older_messages_load_when_scrolling_up(page: Page, served: Served) -> None:
    sign_in(page, served, f"/threads/{LONG}")
    articles = page.locator("article.msg")
    assert articles.count() == 50
    assert articles.first.get_attribute("data-index") == "70"
    page.eval_on_selector("#messages", "pane => { pane.scrollTop = 0; }")
    page.wait_for_selector("article.msg[data-index='20']", state="attached")
    assert articles.first.get_attribute("data-index") == "20"
    page.eval_on_selector("#messages", "pane => { pane.scrollTop = 0; }")
    page.wait_for_selector("article.msg[data-index='0']", state="attached")
    assert articles.count() == 120
    page.locator("#older .start").wait_for()
    indices = [
        int(i) for i in page.eval_on_selector_all("article.msg", "a => a.map(e => e.dataset.index)")
    ]
    assert indices == list(range(120))


def test_a_link_to_an_older_message_pages_back_to_it(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.goto(f"{served.url}/threads/{LONG}#m-m-long-005")
    target = page.locator("#m-m-long-005")
    target.wait_for(state="visible")
    assert target.get_attribute("data-index") == "5"
    assert page.locator("article.msg").first.get_attribute("data-index") == "0"
    assert target.evaluate(
        """el => {
            const pane = document.getElementById('messages').getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return box.bottom > pane.top && box.top < pane.bottom;
        }"""
    )


def test_script_and_javascript_links_in_messages_render_as_text(
    page: Page, served: Served, console_errors: list[str]
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, served, f"/threads/{XSS}")
    page.locator("#m-m-hostile-0 .content").wait_for()
    assert page.locator("#m-m-hostile-0 .content").inner_text() == "<script>alert(1)</script>"
    click_me = page.locator("#m-m-hostile-1 .content")
    assert click_me.inner_text() == "[click me](javascript:alert(1))"
    click_me.click()
    assert page.locator("#r-toolu_hostile").get_attribute("open") == ""  # short: shown
    assert page.locator("#r-toolu_hostile pre").inner_text() == "<script>alert(10)</script>"
    found = page.evaluate(
        """() => ({
            scripts: [...document.scripts].map(s => s.getAttribute('src')),
            unsafeLinks: [...document.querySelectorAll('[href]')]
                .map(e => e.getAttribute('href').replace(/[\\x00-\\x20]/g, '').toLowerCase())
                .filter(h => !/^(https?:|\\/|#)/.test(h)),
            handlers: [...document.querySelectorAll('*')]
                .filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            images: document.images.length,
        })"""
    )
    assert found == {
        "scripts": ["/static/viewer.js"],
        "unsafeLinks": [],
        "handlers": 0,
        "images": 0,
    }
    page.wait_for_timeout(300)  # a dialog would have opened by now
    assert dialogs == []
    assert console_errors == []


def test_another_workspaces_thread_is_not_reachable(page: Page, served: Served) -> None:
    sign_in(page, served)
    response = page.goto(f"{served.url}/threads/{OTHER}")
    assert response is not None
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "secret" not in page.content()


def test_sign_out_ends_the_session(page: Page, served: Served) -> None:
    sign_in(page, served)
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["secure"], c["sameSite"]) for c in cookies] == [
        ("__Host-threadline", True, True, "Lax")
    ]
    assert page.evaluate("document.cookie") == ""
    page.click("form.logout button")
    page.wait_for_url(f"{served.url}/login")
    assert page.context.cookies() == []
    page.goto(served.url + "/")
    assert page.url.startswith(f"{served.url}/login?next=")


def test_pages_fit_a_phone_screen(browser: Browser, served: Served) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(WAIT_MS)
    try:
        phone = context.new_page()
        sign_in(phone, served)
        overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
        assert phone.evaluate(overflow) <= 0
        assert phone.locator("table.threads thead").is_hidden()
        phone.goto(f"{served.url}/threads/{MAIN}")
        phone.locator("#c-toolu_edit pre.diff").wait_for()  # the diff is shown, and fits
        assert phone.evaluate(overflow) <= 0
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "thread-page-phone.png"))
    finally:
        context.close()
