"""Concurrency through HTTP on PostgreSQL: the database decides, whichever server
process a request reaches. 100 pushes on the same base version: exactly one is
accepted, 99 answered 409, nothing else; and a follower of /v1/changes that
reads while writers commit ends with exactly the database's changes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.pg import make_token, new_workspace
from threadline.recorders.postgres import PostgresRecorder
from threadline.testing import free_port

PUSHES = 100


def title_push(n: int) -> dict[str, object]:
    return {"base_version": 1, "deltas": [{"type": "title", "value": f"writer {n}"}]}


async def race(urls: list[str], token: str, thread_id: str) -> list[int]:
    """Create the thread, then fire PUSHES pushes on version 1 at once, spread over
    ``urls``; the status of each."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=PUSHES)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        created = await client.post(f"{urls[0]}/v1/threads", json={"id": thread_id})
        assert created.status_code == 201
        start = asyncio.Event()

        async def one(n: int) -> int:
            await start.wait()
            url = f"{urls[n % len(urls)]}/v1/threads/{thread_id}/deltas"
            return (await client.post(url, json=title_push(n))).status_code

        tasks = [asyncio.create_task(one(n)) for n in range(PUSHES)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


async def test_same_base_pushes_one_wins_on_one_server(live_server: str, postgres_dsn: str) -> None:
    workspace = new_workspace()
    statuses = await race([live_server], await make_token(postgres_dsn, workspace), "T-race")
    assert (statuses.count(200), statuses.count(409), len(statuses)) == (1, 99, PUSHES)
    recorder = await PostgresRecorder.connect(postgres_dsn, workspace=workspace)
    try:
        assert [r.v for r in await recorder.deltas("T-race")] == [1, 2]
    finally:
        await recorder.close()


@pytest.fixture
def two_servers(postgres_dsn: str) -> Iterator[list[str]]:
    """Two `threadline serve` processes on the same PostgreSQL database."""
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "threadline",
                        "serve",
                        "--db",
                        postgres_dsn,
                        "--port",
                        str(port),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "THREADLINE_HOME": "/nonexistent-threadline-home"},
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "a server process did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()


async def test_same_base_pushes_one_wins_across_two_server_processes(
    two_servers: list[str], postgres_dsn: str
) -> None:
    token = await make_token(postgres_dsn, new_workspace())
    statuses = await race(two_servers, token, "T-race")
    assert (statuses.count(200), statuses.count(409), len(statuses)) == (1, 99, PUSHES)


WRITERS = 8
PUSHES_EACH = 25


async def test_follower_sees_every_change_once(live_server: str, postgres_dsn: str) -> None:
    """Writers append (and some delete) while a follower tails /v1/changes; at the
    end the follower holds exactly the feed in the database: every thread at its
    last version, no cursor twice, cursors only growing."""
    workspace = new_workspace()
    headers = {"Authorization": f"Bearer {await make_token(postgres_dsn, workspace)}"}
    done = asyncio.Event()
    received: list[dict[str, object]] = []

    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=60) as client:

        async def writer(w: int) -> None:
            thread_id = f"T-{w}"
            assert (await client.post("/v1/threads", json={"id": thread_id})).status_code == 201
            for n in range(PUSHES_EACH):
                body = {"base_version": n + 1, "deltas": [{"type": "title", "value": str(n)}]}
                response = await client.post(f"/v1/threads/{thread_id}/deltas", json=body)
                assert response.status_code == 200
            if w % 3 == 0:
                assert (await client.delete(f"/v1/threads/{thread_id}")).status_code == 204

        async def follower() -> None:
            cursor = 0
            while True:
                finished = done.is_set()
                page = (await client.get("/v1/changes", params={"since": cursor})).json()
                received.extend(page["changes"])
                cursor = page["cursor"]
                if finished and not page["has_more"]:
                    return
                if not page["changes"]:
                    await asyncio.sleep(0.01)

        following = asyncio.create_task(follower())
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        done.set()
        await following

    cursors = [int(str(c["cursor"])) for c in received]
    assert cursors == sorted(set(cursors))
    latest = {str(c["thread_id"]): (c["v"], c["deleted"]) for c in received}
    recorder = await PostgresRecorder.connect(postgres_dsn, workspace=workspace)
    try:
        stored = await recorder.changes_since(0, limit=1000)
    finally:
        await recorder.close()
    assert latest == {c.thread_id: (c.v, c.deleted) for c in stored}
    assert latest == {f"T-{w}": (PUSHES_EACH + 1, w % 3 == 0) for w in range(WRITERS)}
    assert max(cursors) == stored[-1].cursor
