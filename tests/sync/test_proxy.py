"""The sync service through a fault-injecting TCP proxy on loopback: added
latency, a black hole, connections reset after the request was sent (the
server committed, the client never heard), a server restart. The service
keeps working, waits out its back-off (the proxy counts the requests made
during an outage) and converges once the fault clears."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from tests.sync.conftest import FakeClock, Server, replica, start_server
from threadline.deltas import MessageDelta, ThreadCreate
from threadline.ids import now_ms
from threadline.model import Message
from threadline.sync.client import RemoteRecorder
from threadline.sync.service import Backoff, SyncSettings
from threadline.tiered import TieredStore

Mode = Literal["pass", "blackhole", "reset"]
_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE) (/[^ ?]*)[^ ]* HTTP/1\.1\r\n")


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of the server. ``mode``: ``pass``
    (after ``latency`` seconds per chunk), ``blackhole`` (requests are read and
    never answered), ``reset`` (requests reach the server, then the client's
    connection is reset before it gets the answer). ``requests`` counts the
    requests clients sent, by method and path."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.requests: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.gather(*self._serving, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        self._open.add(writer)
        try:
            # The request is counted as soon as it arrives, before the server is reached.
            first = await reader.read(65536)
            self._count(first)
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
            except OSError:  # the server is down: the client's connection is reset
                return
            self._open.add(up_writer)
            if first and self.mode != "blackhole":
                up_writer.write(first)
            # Whichever side ends (a client gone, a server stopped), both connections go.
            directions = [
                asyncio.create_task(self._upstream(reader, up_writer)),
                asyncio.create_task(self._downstream(up_reader, writer)),
            ]
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
            up_writer.transport.abort()
            writer.transport.abort()
            for direction in directions:
                with contextlib.suppress(OSError, ConnectionError):
                    await direction
            self._open.discard(up_writer)
        finally:
            writer.transport.abort()
            self._open.discard(writer)
            self._serving.discard(task)

    def _count(self, chunk: bytes) -> None:
        for method, path in _REQUEST_LINE.findall(chunk):
            self.requests[f"{method.decode()} {path.decode()}"] += 1

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            self._count(chunk)
            if self.mode == "blackhole":
                continue  # swallowed: the client waits for an answer that never comes
            await asyncio.sleep(self.latency)
            writer.write(chunk)
            await writer.drain()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            if self.mode == "reset":
                writer.transport.abort()  # the server answered; the client never hears
                return
            await asyncio.sleep(self.latency)
            writer.write(chunk)
            await writer.drain()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    running = await asyncio.to_thread(start_server, tmp_path / "server")
    yield running
    await asyncio.to_thread(running.thread.stop)
    await running.storage.close()


async def proxy_for(server: Server) -> FaultProxy:
    proxy = FaultProxy(server.thread.port)
    await proxy.start()
    return proxy


def message(n: int) -> Message:
    return Message(id=f"M-{n:03d}", role="user", content=f"message {n}", timestamp=n)


async def append(store: TieredStore, thread_id: str, n: int) -> None:
    head = await store.head(thread_id)
    assert head is not None
    await store.append(thread_id, head.v, [MessageDelta.of(message(n))])


SYNC = "POST /v1/sync/batch"
FEED = "GET /v1/changes"


async def test_sync_waits_out_its_backoff_through_faults_and_converges(
    server: Server, tmp_path: Path
) -> None:
    token = await server.token()
    faulty, clean = await proxy_for(server), await proxy_for(server)
    clock = FakeClock()
    settings = SyncSettings(
        request_attempts=2,
        request_backoff=0.0,
        fetch_concurrency=1,
        backoff=Backoff(base=60.0, factor=2.0, cap=600.0, jitter=0.2),
    )
    a = replica(
        faulty.url,
        token,
        clock=clock,
        rng=random.Random(1),
        path=tmp_path / "a.db",
        settings=settings,
        timeout=1.0,  # a black-holed request gives up quickly
    )
    b = replica(clean.url, token, clock=clock, rng=random.Random(2), path=tmp_path / "b.db")
    assert a.sync is not None
    assert b.sync is not None
    try:
        await a.append("T-1", 0, [ThreadCreate(id="T-1", created=0)])
        for n in range(3):
            await append(a, "T-1", n)

        # Latency: slower, same outcome.
        faulty.latency = 0.02
        report = await a.sync.sync_once()
        assert (report.pushed, report.deltas_pushed, report.failed) == (1, 4, {})
        await b.sync.sync_once()
        assert await b.load("T-1") == await a.load("T-1")
        faulty.latency = 0.0

        # Black hole: one round of attempts, then silence until the back-off ends.
        await append(a, "T-1", 3)
        faulty.mode = "blackhole"
        faulty.requests.clear()
        start = clock.now
        report = await a.sync.sync_once()
        assert set(report.failed) == {"T-1"}
        assert report.pull_error is not None
        assert faulty.requests == Counter({FEED: 2, SYNC: 2})
        state = (await a.sync_states(["T-1"]))["T-1"]
        assert state.status.startswith("failing: The sync server")
        assert state.next_attempt is not None
        assert start + 48_000 <= state.next_attempt <= start + 72_000
        for _ in range(4):
            clock.advance(11)  # 44 s: inside the shortest possible back-off
            report = await a.sync.sync_once()
            assert (report.waiting, report.failed) == (1, {})
        assert faulty.requests == Counter({FEED: 2, SYNC: 2})
        clock.advance(36)  # 80 s: past the longest possible first back-off
        await a.sync.sync_once()
        assert faulty.requests == Counter({FEED: 4, SYNC: 4})
        state = (await a.sync_states(["T-1"]))["T-1"]
        assert state.failures == 2
        assert state.next_attempt is not None
        assert clock.now + 96_000 <= state.next_attempt <= clock.now + 144_000

        # Reset after the request: the server commits, the client never hears.
        faulty.mode = "reset"
        clock.advance(600)
        report = await a.sync.sync_once()
        assert set(report.failed) == {"T-1"}
        direct = RemoteRecorder(server.url, token)
        try:
            on_server = await direct.load("T-1")
        finally:
            await direct.close()
        assert on_server is not None
        assert [m.id for m in on_server.messages] == ["M-000", "M-001", "M-002", "M-003"]

        # A restart: down (connections reset), then up on another port.
        faulty.mode = "pass"
        await append(a, "T-1", 4)
        await asyncio.to_thread(server.thread.stop)
        await server.storage.close()
        clock.advance(1200)
        report = await a.sync.sync_once()
        assert set(report.failed) == {"T-1"}
        restarted = await asyncio.to_thread(start_server, tmp_path / "server")
        server.thread, server.storage = restarted.thread, restarted.storage
        faulty.upstream_port = clean.upstream_port = restarted.thread.port

        # The fault clears: the push that was in already is recognised, the rest follows.
        clock.advance(1200)
        report = await a.sync.sync_once()
        assert (report.pushed, report.failed) == (1, {})
        assert (await a.sync_states(["T-1"]))["T-1"].status == "synced"
        await b.sync.sync_once()
        thread = await b.load("T-1")
        assert thread == await a.load("T-1")
        assert thread is not None
        assert [m.id for m in thread.messages] == [f"M-{n:03d}" for n in range(5)]
    finally:
        await a.close()
        await b.close()
        await faulty.stop()
        await clean.stop()


async def test_the_sync_loop_keeps_running_through_resets_and_converges(
    server: Server, tmp_path: Path
) -> None:
    token = await server.token()
    proxy = await proxy_for(server)
    settings = SyncSettings(
        interval=0.02,
        request_attempts=1,
        request_backoff=0.0,
        backoff=Backoff(base=0.05, factor=2.0, cap=0.2),
    )
    # A real clock for the loop: its back-offs are a few tens of milliseconds.
    a = replica(proxy.url, token, clock=now_ms, rng=random.Random(3), settings=settings)
    assert a.sync is not None
    try:
        await a.append("T-1", 0, [ThreadCreate(id="T-1", created=0)])
        proxy.mode = "reset"
        a.start_sync()
        for n in range(5):
            await append(a, "T-1", n)
            await asyncio.sleep(0.03)
        for _ in range(500):  # the loop goes on retrying
            if proxy.requests[SYNC] >= 3:
                break
            await asyncio.sleep(0.02)
        assert proxy.requests[SYNC] >= 3
        proxy.mode = "pass"
        for _ in range(500):
            state = (await a.sync_states(["T-1"]))["T-1"]
            if state.status == "synced":
                break
            await asyncio.sleep(0.02)
        assert state.status == "synced"
        await a.sync.stop()
        direct = RemoteRecorder(server.url, token)
        try:
            assert await direct.load("T-1") == await a.load("T-1")
        finally:
            await direct.close()
    finally:
        await a.close()
        await proxy.stop()
