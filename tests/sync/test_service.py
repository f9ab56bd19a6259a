"""The sync service against a real server: the queue's order and batches,
compression, reconciling instead of pushing blindly, read-through, deletes,
conflict statuses and the pull cursor."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import orjson
import zstandard

from tests.sync.conftest import FakeClock, Server, replica
from threadline.deltas import MessageDelta, ThreadCreate, TitleDelta
from threadline.model import Message
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore


class Recorder(httpx.AsyncBaseTransport):
    """Loopback HTTP that keeps every batch push's decoded body and encoding."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.batches: list[tuple[str | None, list[dict[str, object]]]] = []
        self.requests: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/sync/batch":
            body = request.read()
            encoding = request.headers.get("content-encoding")
            if encoding == "zstd":
                body = zstandard.ZstdDecompressor().decompress(body)
            self.batches.append((encoding, orjson.loads(body)["pushes"]))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def message(n: int, size: int = 10) -> Message:
    return Message(id=f"M-{n}", role="user", content="x" * size, timestamp=n)


async def grow(store: TieredStore, thread_id: str, *messages: Message) -> None:
    head = await store.head(thread_id)
    assert head is not None
    await store.append(thread_id, head.v, [MessageDelta.of(m) for m in messages])


def make(server: Server, token: str, clock: FakeClock, seed: int, **extra: object) -> TieredStore:
    return replica(server.url, token, clock=clock, rng=random.Random(seed), **extra)  # type: ignore[arg-type]


async def test_pushes_go_high_priority_first_oldest_first_fifty_a_request(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    transport = Recorder()
    a = make(sync_server, token, clock, 1, transport=transport)
    assert a.sync is not None
    try:
        await a.append("S-0", 0, [ThreadCreate(id="S-0", created=0, origin_thread_id="M-00")])
        for i in range(55):
            await a.append(f"M-{i:02d}", 0, [ThreadCreate(id=f"M-{i:02d}", created=0)])
        report = await a.sync.sync_once()
        assert (report.pushed, report.failed) == (56, {})
        order = [[p["thread_id"] for p in pushes] for _, pushes in transport.batches]
        # The summary was pending first, but main threads go first; 50 a request.
        assert order == [
            [f"M-{i:02d}" for i in range(50)],
            [*(f"M-{i:02d}" for i in range(50, 55)), "S-0"],
        ]
        # A body carrying a summary thread is always compressed; a small one otherwise not.
        assert [encoding for encoding, _ in transport.batches] == ["zstd", "zstd"]
        transport.batches.clear()
        await grow(a, "M-00", message(1))
        await a.sync.sync_once()
        assert transport.batches == [
            (
                None,
                [
                    {
                        "thread_id": "M-00",
                        "base_version": 1,
                        "deltas": [MessageDelta.of(message(1)).model_dump(mode="json")],
                    }
                ],
            )
        ]
        assert (await a.sync_states(["M-00"]))["M-00"].status == "synced"
    finally:
        await a.close()


async def test_a_thread_the_server_moved_past_is_reconciled_not_pushed_blindly(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    transport = Recorder()
    a = make(sync_server, token, clock, 1, transport=transport)
    b = make(sync_server, token, clock, 2)
    assert a.sync is not None
    assert b.sync is not None
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0)])
        await a.sync.sync_once()
        await b.sync.sync_once()
        await grow(b, "T", message(1), message(2))
        await b.sync.sync_once()
        await grow(a, "T", message(3))
        await a.append("T", 2, [TitleDelta(value="from a")])
        transport.batches.clear()
        report = await a.sync.sync_once()
        # The pull learned the server's version: the merge went up, not a stale push.
        assert report.merged == ["T"]
        assert [p["base_version"] for _, pushes in transport.batches for p in pushes] == [3]
        state = (await a.sync_states(["T"]))["T"]
        assert state.status == "conflict-merged"
        await b.sync.sync_once()
        thread = await b.load("T")
        assert thread is not None
        assert [m.id for m in thread.messages] == ["M-1", "M-2", "M-3"]
        assert thread.title == "from a"
        assert thread == await a.load("T")
        log = [r.delta for r in await b.deltas("T")]
        # The server's versions, then the merge: its record, what it changed, and
        # the record again until the merged version passes both (3 here, and 3).
        assert [d.type for d in log] == [
            "thread:create",
            "user:message",
            "user:message",
            "thread:merge",
            "user:message",
            "title",
        ]
    finally:
        await a.close()
        await b.close()


async def test_a_read_missing_locally_is_fetched_from_the_server_into_every_tier(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    a = make(sync_server, token, clock, 1)
    b = make(sync_server, token, clock, 2)
    assert a.sync is not None
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        await a.sync.sync_once()
        thread = await b.load("T")
        assert thread == await a.load("T")
        assert b.stats.remote_hits == 1
        assert await b.local.head("T") is not None
        assert (await b.sync_states(["T"]))["T"].status == "synced"  # not pushed back
        assert await b.load("T") == thread
        assert (b.stats.remote_hits, b.stats.memory_hits) == (1, 1)
        assert await b.head("T-none") is None
    finally:
        await a.close()
        await b.close()


async def test_a_thread_deleted_on_the_server_goes_here_unless_it_changed_here(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    a = make(sync_server, token, clock, 1)
    assert a.sync is not None
    server = RemoteRecorder(sync_server.url, token)
    try:
        for thread_id in ("T-1", "T-2"):
            await a.append(thread_id, 0, [ThreadCreate(id=thread_id, created=0)])
        await a.sync.sync_once()
        assert await server.delete("T-1")
        assert await server.delete("T-2")
        await grow(a, "T-2", message(1))  # a change the server never had
        report = await a.sync.sync_once()
        assert report.failed == {}
        assert await a.head("T-1") is None
        kept = await server.load("T-2")  # pushed again whole
        assert kept is not None
        assert [m.id for m in kept.messages] == ["M-1"]
        # Kept, not silently: the status says the delete and the change crossed.
        assert (await a.sync_states(["T-2"]))["T-2"].status == (
            "conflict: deleted on the server while changed here: kept and pushed again"
        )
        assert report.conflicts == ["T-2"]
    finally:
        await server.close()
        await a.close()


async def test_the_pull_cursor_is_kept_with_the_data_and_nothing_is_pulled_twice(
    sync_server: Server, tmp_path: Path
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    a = make(sync_server, token, clock, 1)
    assert a.sync is not None
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        await a.sync.sync_once()
    finally:
        await a.close()
    path = tmp_path / "b.db"
    b = make(sync_server, token, clock, 2, path=path)
    assert b.sync is not None
    try:
        report = await b.sync.sync_once()
        assert (report.pulled, report.deltas_pulled) == (1, 2)
        cursor = await b.local.sync_cursor(sync_server.url)
        feed = RemoteRecorder(sync_server.url, token)
        try:
            changes = await feed.changes_since(0, limit=10)
        finally:
            await feed.close()
        assert cursor == changes[-1].cursor
    finally:
        await b.close()
    b = make(sync_server, token, clock, 2, path=path)  # reopened: the cursor was durable
    assert b.sync is not None
    try:
        report = await b.sync.sync_once()
        assert (report.pulled, report.pushed, report.changed) == (0, 0, False)
        assert len(await b.deltas("T")) == 2
    finally:
        await b.close()


async def test_a_push_refused_for_good_fails_alone_and_waits_for_a_change(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    clock = FakeClock()
    transport = Recorder()
    a = make(sync_server, token, clock, 1, transport=transport)
    assert a.sync is not None
    try:
        for thread_id in ("T-big", "T-ok"):
            await a.append(thread_id, 0, [ThreadCreate(id=thread_id, created=0)])
        await grow(a, "T-big", message(1, size=2 * 1024 * 1024))  # over the server's limit
        report = await a.sync.sync_once()
        # The batch was refused whole (413), so each thread was pushed alone.
        assert [[p["thread_id"] for p in pushes] for _, pushes in transport.batches] == [
            ["T-big", "T-ok"],
            ["T-big"],
            ["T-ok"],
        ]
        assert (list(report.failed), report.pushed) == (["T-big"], 1)
        state = (await a.sync_states(["T-big"]))["T-big"]
        assert state.status.startswith("failing: The sync server")
        assert "413" in state.status
        assert state.next_attempt is not None
        assert clock.now + 24_000 <= state.next_attempt <= clock.now + 36_000
        clock.advance(10)
        assert (await a.sync.sync_once()).waiting == 1  # backing off
        clock.advance(3600)
        transport.batches.clear()
        report = await a.sync.sync_once()  # past the back-off, but unchanged: not retried
        assert (report.failed, transport.batches) == ({}, [])
        await grow(a, "T-big", message(2))
        report = await a.sync.sync_once()  # changed: tried again (and refused again)
        assert list(report.failed) == ["T-big"]
        assert (await a.sync_states(["T-big"]))["T-big"].failures == 2
    finally:
        await a.close()
