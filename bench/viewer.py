"""The web viewer's benchmarks (issue 9).

Run: ``.venv/bin/python bench/viewer.py [--quick]`` (needs ``/usr/bin/chromium``
and the ``playwright`` package of the ``dev`` extra).

The real server (``python -m threadline serve``) runs on embedded SQLite that
holds a 10,000-message thread and a 100-message thread of the realistic mix
of ``_common.message_stream`` (tool calls, results, usage), written before it
starts.

1. Server time of the thread page's HTML: a ``GET /threads/{id}`` of the
   10,000-message thread, against two baselines measured in the same rounds:
   the same page of the 100-message thread, and the raw JSON API page
   (``GET /v1/threads/{id}``, the newest 50 messages) of the 10,000 one.
2. Browser time to first render of that page in headless Chromium: the
   navigation's ``load`` event and the first message visible, against the
   100-message thread (and, as the browser's floor, the load of a static file
   of the same server).
3. Live delay: from just before an append through the HTTP API to the
   message appearing in an open page (a ``MutationObserver`` in the page
   stamps it), p50 over 20 appends; the baseline is the append request alone.

Rounds alternate subject and baseline so a noisy neighbour slows both; figures
are medians (and p90) over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Outcome, heading, line, message_stream, ms, percentile, summary, take
from threadline.auth import create_token
from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.model import Message
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.testing import free_port

BIG = "T-bench-10k"
SMALL = "T-bench-100"
CHROMIUM = "/usr/bin/chromium"
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


async def fill(directory: Path, big: int) -> str:
    """Write both threads and a token; returns the token."""
    storage = SqliteWorkspaces(directory)
    try:
        token = await create_token(storage, "bench", "bench")
        recorder = await storage.recorder("bench")
        for thread_id, count, seed in ((BIG, big, 11), (SMALL, 100, 12)):
            messages = take(message_stream(seed), count)
            version = 0
            first: list[Delta] = [ThreadCreate(id=thread_id, title=f"{count:,} messages")]
            for start in range(0, count, 500):
                deltas = [MessageDelta.of(m) for m in messages[start : start + 500]]
                head = await recorder.append(thread_id, version, [*first, *deltas])
                version, first = head.v, []
        return token
    finally:
        await storage.close()


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "THREADLINE_HOME": str(directory / "home")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "threadline", "serve", "--db", str(directory / "server")),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            raise SystemExit("the server did not start")
        time.sleep(0.1)


def p90(values: list[float]) -> float:
    return percentile(values, 0.9)


def figure(values: list[float]) -> str:
    return f"{ms(statistics.median(values))} (p90 {ms(p90(values))})"


def server_times(url: str, token: str, rounds: int) -> dict[str, list[float]]:
    paths = {
        "html 10k": f"/threads/{BIG}",
        "html 100": f"/threads/{SMALL}",
        "json 10k": f"/v1/threads/{BIG}?limit=50",
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for path in paths.values():  # warm up: imports, price list, caches
            client.get(path).raise_for_status()
        for _ in range(rounds):
            for name, path in paths.items():
                start = time.perf_counter()
                response = client.get(path)
                times[name].append(time.perf_counter() - start)
                response.raise_for_status()
    return times


_NAVIGATION = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return [nav.loadEventEnd, paint ? paint.startTime : -1];
}"""

_STAMP_NEW = """() => {
  window.__seen = {};
  new MutationObserver(records => {
    const now = Date.now();
    for (const record of records)
      for (const node of record.addedNodes)
        if (node.nodeType === 1 && node.id && !(node.id in window.__seen))
          window.__seen[node.id] = now;
  }).observe(document.getElementById('message-list'), { childList: true });
}"""


def browser_figures(url: str, token: str, rounds: int, appends: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {
        "load 10k": [],
        "load 100": [],
        "visible 10k": [],
        "visible 100": [],
        "paint 10k": [],
        "paint 100": [],
        "load floor": [],
        "live": [],
        "append": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/login")  # sign in as a person does: the cookie is HttpOnly
        page.fill("#token", token)
        page.click("form.login button[type=submit]")
        page.wait_for_url(f"{url}/")
        for thread_id in (BIG, SMALL):  # warm up
            page.goto(f"{url}/threads/{thread_id}", wait_until="load")
        for _ in range(rounds):
            # Between pages, a tiny same-origin page: the renderer stays warm, as
            # when a person follows a link from the thread list. Its own load is
            # the floor of what the browser needs to show any page of this server.
            page.goto(f"{url}/static/viewer.css", wait_until="load")
            found["load floor"].append(page.evaluate(_NAVIGATION)[0] / 1000)
            for thread_id, name in ((BIG, "10k"), (SMALL, "100")):
                page.goto(f"{url}/healthz", wait_until="load")
                start = time.perf_counter()
                page.goto(f"{url}/threads/{thread_id}", wait_until="commit")
                page.locator("article.msg").last.wait_for(state="visible")
                found[f"visible {name}"].append(time.perf_counter() - start)
                page.wait_for_load_state("load")
                load, paint = page.evaluate(_NAVIGATION)
                found[f"load {name}"].append(load / 1000)
                if paint >= 0:
                    found[f"paint {name}"].append(paint / 1000)

        page.goto(f"{url}/threads/{SMALL}", wait_until="load")
        page.wait_for_selector("#live[data-state=on]")
        page.evaluate(_STAMP_NEW)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            version = api.get(f"/v1/threads/{SMALL}", params={"limit": 0}).json()["head"]["v"]
            for number in range(appends):
                message = Message(id=f"m-live-{number}", role="assistant", content=f"live {number}")
                body = {
                    "base_version": version,
                    "deltas": [orjson.loads(MessageDelta.of(message).model_dump_json())],
                }
                sent = time.time() * 1000
                start = time.perf_counter()
                response = api.post(f"/v1/threads/{SMALL}/deltas", json=body)
                found["append"].append(time.perf_counter() - start)
                response.raise_for_status()
                version = response.json()["version"]
                page.locator(f"#m-{message.id}").wait_for(state="attached")
                seen = page.evaluate("id => window.__seen[id]", f"m-{message.id}")
                found["live"].append((seen - sent) / 1000)
                time.sleep(0.05)
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 5 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="threadline-bench-viewer-") as temp:
        directory = Path(temp)
        start = time.perf_counter()
        token = asyncio.run(fill(directory / "server", 10_000))
        print(f"seeded 10,000 + 100 messages in {time.perf_counter() - start:.1f} s", flush=True)
        process, url = start_server(directory)
        try:
            served = server_times(url, token, rounds)
            seen = browser_figures(url, token, rounds, appends=20)
        finally:
            process.terminate()
            process.wait(timeout=15)

    outcomes: list[Outcome] = []
    heading(1, "Server time of the thread page's HTML (HTTP GET, whole response)")
    line("10,000-message thread", figure(served["html 10k"]))
    line("baseline: 100-message thread", figure(served["html 100"]))
    line("baseline: JSON API page of the 10,000 one", figure(served["json 10k"]))
    html = statistics.median(served["html 10k"])
    small = statistics.median(served["html 100"])
    raw = statistics.median(served["json 10k"])
    outcomes.append(
        Outcome(1, "HTML 10k vs 100 msgs", ms(html), ms(small), html / small, "-", None)
    )
    outcomes.append(Outcome(1, "HTML 10k vs JSON page", ms(html), ms(raw), html / raw, "-", None))

    heading(2, "Browser time to first render (headless Chromium)")
    for name in ("10k", "100"):
        label = "10,000-message thread" if name == "10k" else "baseline: 100-message thread"
        line(f"{label}: load event", figure(seen[f"load {name}"]))
        line(f"{label}: first contentful paint", figure(seen[f"paint {name}"]))
        line(f"{label}: newest message visible", figure(seen[f"visible {name}"]))
    line("floor: a static file's load event", figure(seen["load floor"]))
    load = statistics.median(seen["load 10k"])
    load_small = statistics.median(seen["load 100"])
    outcomes.append(
        Outcome(2, "load event 10k vs 100", ms(load), ms(load_small), load / load_small, "-", None)
    )

    heading(3, "Live: append through the API → message in the open page (20 appends)")
    line("append to appearance", figure(seen["live"]))
    line("baseline: the append request alone", figure(seen["append"]))
    live = statistics.median(seen["live"])
    append = statistics.median(seen["append"])
    outcomes.append(
        Outcome(3, "append → visible p50", ms(live), ms(append), live / append, "-", None)
    )
    summary(outcomes)


if __name__ == "__main__":
    main()
