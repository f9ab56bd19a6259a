"""TieredStore's memory tier and policies (no server: see tests/sync for sync)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.deltas import MessageDelta, ThreadCreate
from threadline.errors import ThreadExists
from threadline.model import Message
from threadline.recorders.sqlite import SqliteRecorder
from threadline.sync.service import RemoteSync
from threadline.tiered import (
    DEFAULT_POLICIES,
    MemoryLimits,
    PersistencePolicy,
    TieredStore,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(n: int, size: int = 10) -> Message:
    return Message(id=f"M-{n}", role="user", content="x" * size, timestamp=n)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[TieredStore]:
    tiers = TieredStore(SqliteRecorder(tmp_path / "threads.db"), clock=clock)
    yield tiers
    await tiers.close()


async def create(store: TieredStore, thread_id: str, parent: str | None = None) -> None:
    create = ThreadCreate(id=thread_id, created=1, parent_thread_id=parent)
    await store.append(thread_id, 0, [create, MessageDelta.of(message(1))])


def test_the_default_policies_are_the_specs() -> None:
    assert DEFAULT_POLICIES["subagent"] == PersistencePolicy(60.0, local=False, remote=None)
    assert DEFAULT_POLICIES["summary"] == PersistencePolicy(
        3600.0, local=True, remote=RemoteSync(priority="low", compress=True)
    )
    assert DEFAULT_POLICIES["main"] == PersistencePolicy(
        300.0, local=True, remote=RemoteSync(priority="high", compress=False)
    )


def test_a_policy_must_keep_threads_somewhere_and_sync_only_local_ones() -> None:
    with pytest.raises(ValueError, match="memory or locally"):
        PersistencePolicy(None, local=False, remote=None)
    with pytest.raises(ValueError, match="Only threads kept locally can sync"):
        PersistencePolicy(60.0, local=False, remote=RemoteSync())


async def test_a_subagent_thread_lives_in_memory_only_until_its_ttl(
    store: TieredStore, clock: Clock
) -> None:
    await create(store, "P")
    await create(store, "C", parent="P")
    assert await store.local.head("C") is None  # never written locally
    head = await store.head("C")
    assert head is not None
    assert head.parent_thread_id == "P"
    assert [h.id for h in await store.list_heads(limit=10)] == ["P", "C"]  # both tiers
    clock.now += 50
    assert await store.load("C") is not None  # a use renews the TTL
    clock.now += 59
    assert await store.head("C") is not None
    clock.now += 61
    assert await store.head("C") is None
    assert (store.stats.lost, await store.head("P") is not None) == (1, True)


async def test_a_memory_only_id_cannot_be_taken_by_a_local_thread_nor_the_reverse(
    store: TieredStore,
) -> None:
    await create(store, "P")
    await create(store, "C", parent="P")
    with pytest.raises(ThreadExists):
        await store.append("C", 0, [ThreadCreate(id="C")])
    with pytest.raises(ThreadExists):
        await store.append("P", 0, [ThreadCreate(id="P", parent_thread_id="X")])


async def test_reads_are_served_from_memory_while_the_local_head_is_unchanged(
    store: TieredStore,
) -> None:
    await create(store, "T")
    first = await store.load("T")
    assert (store.stats.memory_hits, store.stats.local_hits) == (1, 0)  # filled by the write
    # Another writer of the same database: the cached copy is stale and not used.
    assert first is not None
    await store.local.append("T", first.v, [MessageDelta.of(message(2))])
    second = await store.load("T")
    assert second is not None
    assert [m.id for m in second.messages] == ["M-1", "M-2"]
    assert (store.stats.memory_hits, store.stats.local_hits) == (1, 1)
    found = await store.page("T", limit=1)
    assert found is not None
    assert [m.id for m in found[1]] == ["M-2"]
    assert store.stats.memory_hits == 2


async def test_the_least_recently_used_thread_goes_first_past_the_entry_limit(
    tmp_path: Path, clock: Clock
) -> None:
    store = TieredStore(
        SqliteRecorder(tmp_path / "t.db"), clock=clock, memory=MemoryLimits(max_entries=2)
    )
    try:
        for thread_id in ("A", "B", "C"):
            await create(store, thread_id)
        assert ("A" in store.memory, "B" in store.memory, "C" in store.memory) == (
            False,
            True,
            True,
        )
        await store.load("B")  # B is now the most recently used
        await store.load("A")  # from local, into memory: C goes
        assert ("A" in store.memory, "B" in store.memory, "C" in store.memory) == (
            True,
            True,
            False,
        )
        assert store.stats.evicted == 2
    finally:
        await store.close()


async def test_past_the_byte_limit_cached_copies_go_before_memory_only_threads(
    tmp_path: Path, clock: Clock
) -> None:
    store = TieredStore(
        SqliteRecorder(tmp_path / "t.db"), clock=clock, memory=MemoryLimits(max_bytes=5_000)
    )
    try:
        await create(store, "P")
        await create(store, "C", parent="P")
        head = await store.head("C")
        assert head is not None
        big = MessageDelta.of(message(9, size=3_000))
        await store.append("C", head.v, [big])
        assert "P" in store.memory
        head = await store.head("P")
        assert head is not None
        await store.append("P", head.v, [MessageDelta.of(message(8, size=3_000))])
        # Over the limit: the cached copy of P goes, the memory-only C stays.
        assert ("P" in store.memory, "C" in store.memory) == (False, True)
        assert store.stats.lost == 0
        assert await store.load("P") is not None  # still local
    finally:
        await store.close()
