"""Concurrent writes racing for one version: the storage decides, exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from threadline import (
    Message,
    MessageDelta,
    Thread,
    ThreadHead,
    ThreadStore,
    ThreadWriter,
    VersionConflict,
    WriterBusy,
)

RACERS = 100
WRITERS = 32
MESSAGES_PER_WRITER = 50


def appending(message: Message) -> Callable[[Thread], Thread]:
    """The spec's modifier that appends ``message``."""
    return lambda thread: thread.with_message(message)


async def thread_with_one_message(store: ThreadStore) -> Thread:
    thread = await store.create_thread(title="race", capture_environment=False)
    return await store.modify_thread(
        thread.id, appending(Message(role="user", content="before the race"))
    )


def contenders() -> list[Message]:
    return [Message(role="assistant", content=f"attempt {i}") for i in range(RACERS)]


async def assert_only_winner_added(store: ThreadStore, base: Thread, winner: Message) -> None:
    stored = await store.get_thread(base.id)
    assert stored.v == base.v + 1
    assert stored.messages == (*base.messages, winner)
    assert [r.v for r in await store.history(base.id)] == list(range(1, base.v + 2))


async def test_100_concurrent_modifies_from_one_version_commit_exactly_one(
    store: ThreadStore,
) -> None:
    base = await thread_with_one_message(store)
    attempts = contenders()

    results = await asyncio.gather(
        *(store.modify_thread(base.id, appending(m), expected_version=base.v) for m in attempts),
        return_exceptions=True,
    )

    won = [i for i, r in enumerate(results) if isinstance(r, Thread)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert (len(won), len(conflicts)) == (1, RACERS - 1)
    assert {(c.thread_id, c.expected, c.actual) for c in conflicts} == {
        (base.id, base.v, base.v + 1)
    }
    winner = attempts[won[0]]
    committed = results[won[0]]
    assert isinstance(committed, Thread)
    assert (committed.v, committed.messages[-1]) == (base.v + 1, winner)
    await assert_only_winner_added(store, base, winner)


async def test_100_concurrent_raw_appends_at_one_version_commit_exactly_one(
    store: ThreadStore,
) -> None:
    base = await thread_with_one_message(store)
    attempts = contenders()

    results = await asyncio.gather(
        *(store.recorder.append(base.id, base.v, [MessageDelta.of(m)]) for m in attempts),
        return_exceptions=True,
    )

    won = [i for i, r in enumerate(results) if isinstance(r, ThreadHead)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert (len(won), len(conflicts)) == (1, RACERS - 1)
    assert {(c.thread_id, c.expected, c.actual) for c in conflicts} == {
        (base.id, base.v, base.v + 1)
    }
    head = results[won[0]]
    assert isinstance(head, ThreadHead)
    assert (head.v, head.message_count) == (base.v + 1, len(base.messages) + 1)
    await assert_only_winner_added(store, base, attempts[won[0]])


async def test_100_concurrent_acquire_writer_calls_grant_exactly_one_writer(
    store: ThreadStore,
) -> None:
    thread = await store.create_thread(title="race", capture_environment=False)

    results = await asyncio.gather(
        *(store.acquire_writer(thread.id) for _ in range(RACERS)), return_exceptions=True
    )

    writers = [r for r in results if isinstance(r, ThreadWriter)]
    busy = [r for r in results if isinstance(r, WriterBusy)]
    assert (len(writers), len(busy)) == (1, RACERS - 1)
    assert {str(e) for e in busy} == {f"Thread {thread.id} is already being modified"}
    await writers[0].dispose()


async def test_32_concurrent_writers_each_keep_their_50_messages_in_order(
    store: ThreadStore,
) -> None:
    threads = [
        await store.create_thread(title=f"sub-agent {i}", capture_environment=False)
        for i in range(WRITERS)
    ]
    writers = [await store.acquire_writer(t.id) for t in threads]
    sent = [
        [
            Message(role="assistant", content=f"agent {i} step {n}")
            for n in range(MESSAGES_PER_WRITER)
        ]
        for i in range(WRITERS)
    ]

    async def write(writer: ThreadWriter, messages: list[Message]) -> list[int]:
        return [(await writer.append(m)).v for m in messages]

    versions = await asyncio.gather(*(write(w, m) for w, m in zip(writers, sent, strict=True)))
    for writer in writers:
        await writer.dispose()

    expected_versions = list(range(2, MESSAGES_PER_WRITER + 2))
    assert versions == [expected_versions] * WRITERS
    for thread, messages in zip(threads, sent, strict=True):
        stored = await store.get_thread(thread.id)
        assert stored.messages == tuple(messages)
        assert stored.v == MESSAGES_PER_WRITER + 1
        assert [r.v for r in await store.history(thread.id)] == [1, *expected_versions]
