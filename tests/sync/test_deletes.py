"""Deletes travel: a local delete is pushed as a delete on the version it saw and
pulled by the other replicas; a delete that did not see a change made elsewhere
does not win silently. And a pulled change raises the events a local one does."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.sync.conftest import FakeClock, Server, replica
from tests.test_cli import run_cli, succeeds, succeeds_json
from threadline.deltas import MessageDelta, ThreadCreate
from threadline.errors import VersionConflict
from threadline.events import ThreadEvent
from threadline.model import Message
from threadline.store import ThreadStore
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore


def message(n: int) -> Message:
    return Message(id=f"M-{n}", role="user", content=f"message {n}", timestamp=n)


async def grow(store: TieredStore, thread_id: str, n: int) -> None:
    head = await store.head(thread_id)
    assert head is not None
    await store.append(thread_id, head.v, [MessageDelta.of(message(n))])


def make(server: Server, token: str, seed: int) -> TieredStore:
    return replica(server.url, token, clock=FakeClock(), rng=random.Random(seed))


async def test_a_delete_travels_to_the_server_and_the_other_replicas(sync_server: Server) -> None:
    token = await sync_server.token()
    a, b = make(sync_server, token, 1), make(sync_server, token, 2)
    server = RemoteRecorder(sync_server.url, token)
    assert a.sync is not None
    assert b.sync is not None
    try:
        for thread_id in ("T-1", "T-2"):
            await a.append(thread_id, 0, [ThreadCreate(id=thread_id, created=0)])
        await grow(a, "T-1", 1)
        await a.sync.sync_once()
        await b.sync.sync_once()
        assert await b.head("T-1") is not None
        assert await a.delete("T-1")
        assert [d.thread_id for d in await a.local.sync_deletes()] == ["T-1"]
        report = await a.sync.sync_once()
        assert (report.deleted, report.conflicts, report.failed) == (1, [], {})
        assert await a.local.sync_deletes() == []
        assert await server.head("T-1") is None
        assert await server.head("T-2") is not None
        report = await b.sync.sync_once()
        assert await b.head("T-1") is None
        assert await b.head("T-2") is not None
        report = await a.sync.sync_once()  # the server's tombstone does not bring it back
        assert await a.head("T-1") is None
    finally:
        await server.close()
        await a.close()
        await b.close()


async def test_a_delete_that_missed_an_append_elsewhere_is_refused_and_shown(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    a, b = make(sync_server, token, 1), make(sync_server, token, 2)
    server = RemoteRecorder(sync_server.url, token)
    assert a.sync is not None
    assert b.sync is not None
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        await a.sync.sync_once()
        await b.sync.sync_once()
        await grow(b, "T", 2)  # B appends and pushes before A's delete arrives
        await b.sync.sync_once()
        assert await a.delete("T")
        report = await a.sync.sync_once()
        # The pull saw v3 but A had deleted T: the delete, pushed on v2, loses.
        assert report.conflicts == ["T"]
        assert report.deleted == 0
        kept = await server.load("T")
        assert kept is not None
        assert [m.id for m in kept.messages] == ["M-1", "M-2"]
        back = await a.load("T")  # fetched back whole, never lost
        assert back is not None
        assert [m.id for m in back.messages] == ["M-1", "M-2"]
        status = (await a.sync_states(["T"]))["T"].status
        assert status.startswith("conflict: the delete of v2 lost to a change on the server")
        assert await a.local.sync_deletes() == []
        # Nothing to push: the conflict is settled, the mark stays until T changes.
        report = await a.sync.sync_once()
        assert (report.pushed, report.deleted, report.conflicts) == (0, 0, [])
        assert (await a.sync_states(["T"]))["T"].status.startswith("conflict:")
        await grow(a, "T", 3)
        await a.sync.sync_once()
        assert (await a.sync_states(["T"]))["T"].status == "synced"
    finally:
        await server.close()
        await a.close()
        await b.close()


async def test_an_append_racing_a_pushed_delete_keeps_the_thread_everywhere(
    sync_server: Server,
) -> None:
    token = await sync_server.token()
    a, b = make(sync_server, token, 1), make(sync_server, token, 2)
    assert a.sync is not None
    assert b.sync is not None
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        await a.sync.sync_once()
        await b.sync.sync_once()
        assert await a.delete("T")
        assert (await a.sync.sync_once()).deleted == 1
        await grow(b, "T", 2)  # B had not heard of the delete
        report = await b.sync.sync_once()
        assert report.conflicts == ["T"]
        kept = await b.load("T")
        assert kept is not None
        assert [m.id for m in kept.messages] == ["M-1", "M-2"]
        assert (await b.sync_states(["T"]))["T"].status == (
            "conflict: deleted on the server while changed here: kept and pushed again"
        )
        await a.sync.sync_once()
        back = await a.load("T")
        assert back is not None
        assert [m.id for m in back.messages] == ["M-1", "M-2"]
    finally:
        await a.close()
        await b.close()


async def test_the_server_deletes_only_at_the_version_given(sync_server: Server) -> None:
    token = await sync_server.token()
    server = RemoteRecorder(sync_server.url, token)
    try:
        await server.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        with pytest.raises(VersionConflict) as refused:
            await server.delete("T", version=1)
        assert refused.value.actual == 2
        assert await server.head("T") is not None
        assert await server.delete("T", version=2)
        assert not await server.delete("T", version=2)
    finally:
        await server.close()


async def test_a_pulled_thread_raises_the_events_of_a_local_change(sync_server: Server) -> None:
    token = await sync_server.token()
    a, b = make(sync_server, token, 1), make(sync_server, token, 2)
    assert a.sync is not None
    assert b.sync is not None
    store = ThreadStore(b)
    seen: list[ThreadEvent] = []
    store.events.subscribe(seen.append)
    try:
        await a.append("T", 0, [ThreadCreate(id="T", created=0), MessageDelta.of(message(1))])
        await a.sync.sync_once()
        await b.sync.sync_once()
        await grow(a, "T", 2)
        await a.sync.sync_once()
        await b.sync.sync_once()
        assert await a.delete("T")
        await a.sync.sync_once()
        await b.sync.sync_once()
        assert [(e.type, e.thread_id, e.v) for e in seen] == [
            ("thread:created", "T", 2),
            ("thread:updated", "T", 3),
            ("thread:deleted", "T", 3),
        ]
    finally:
        await a.close()
        await store.close()


def test_cli_delete_of_a_tree_travels_with_the_next_sync(
    tmp_path: Path, sync_server: Server
) -> None:
    token = asyncio.run(sync_server.token())
    remote = ["--remote", sync_server.url, "--token", token]
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    root = succeeds_json(run_cli(laptop, "new", "--title", "root", "--json"))["id"]
    child = succeeds_json(run_cli(laptop, "spawn", root, "look around", "--json"))["id"]
    summary = succeeds_json(run_cli(laptop, "summarize", root, "short", "--json"))["id"]
    succeeds(run_cli(laptop, "sync", "--once", *remote))
    succeeds(run_cli(desktop, "sync", "--once", *remote))
    listed = {t["id"] for t in succeeds_json(run_cli(desktop, "list", "--json"))["threads"]}
    assert {root, child, summary} <= listed
    deleted = succeeds_json(run_cli(laptop, "delete", root, "--tree", "--json"))["deleted"]
    assert sorted(deleted[:2]) == sorted([child, summary])
    assert deleted[2] == root
    succeeds(run_cli(laptop, "sync", "--once", *remote))
    succeeds(run_cli(desktop, "sync", "--once", *remote))
    listed = {t["id"] for t in succeeds_json(run_cli(desktop, "list", "--json"))["threads"]}
    assert not listed & {root, child, summary}
