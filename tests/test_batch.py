"""batch_read and batch_write (issue 3), counted in SQL statements where it matters."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import (
    Message,
    StoreBusy,
    StoreClosed,
    ThreadEvent,
    ThreadExists,
    ThreadNotFound,
    ThreadStore,
    VersionConflict,
    WriterBusy,
)
from threadline.batch import DEFAULT_WINDOW, CreateOp, DeleteOp, UpdateOp, WriteOp
from threadline.deltas import MessageDelta, ThreadCreate, TitleDelta
from threadline.recorders import SqliteRecorder


class Statements:
    """Every SQL statement a recorder runs, from any of its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[str] = []

    def __call__(self, statement: str) -> None:
        with self._lock:
            self.seen.append(" ".join(statement.split()))

    def starting(self, word: str) -> list[str]:
        return [s for s in self.seen if s.upper().startswith(word)]


@pytest.fixture(params=["file", ":memory:"])
async def sqlite_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[ThreadStore, SqliteRecorder]]:
    recorder = SqliteRecorder(tmp_path / "t.db" if request.param == "file" else ":memory:")
    async with ThreadStore(recorder) as store:
        yield store, recorder


async def many_threads(recorder: SqliteRecorder, count: int) -> list[str]:
    ids = [f"T-{n:05d}" for n in range(count)]
    results = await recorder.append_each(
        [
            (
                i,
                0,
                [
                    ThreadCreate(id=i, title=i),
                    MessageDelta.of(Message(id=f"M-{i}-a", role="user", content="q")),
                    MessageDelta.of(Message(id=f"M-{i}-b", role="assistant", content="a")),
                ],
            )
            for i in ids
        ]
    )
    assert all(not isinstance(r, Exception) for r in results)
    return ids


# -- batch_read ------------------------------------------------------------------------


async def test_batch_read_of_1000_ids_is_one_query(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, recorder = sqlite_store
    ids = await many_threads(recorder, 1000)
    statements = Statements()
    recorder.set_statement_trace(statements)
    found = await store.batch_read([*ids, "T-missing"])
    recorder.set_statement_trace(None)
    # One SELECT (in a read transaction of its own on a file database).
    assert len(statements.starting("SELECT")) == 1
    assert set(statements.seen) - set(statements.starting("SELECT")) <= {"BEGIN", "COMMIT"}
    assert len(statements.seen) <= 3
    assert len(found) == 1001
    assert found["T-missing"] is None
    assert found["T-00500"] == await store.get_thread("T-00500")
    assert [m.id for m in found["T-00999"].messages] == ["M-T-00999-a", "M-T-00999-b"]  # type: ignore[union-attr]


async def test_single_reads_issue_a_query_each(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    """The counter the batch test relies on does count per-thread reads."""
    store, recorder = sqlite_store
    ids = await many_threads(recorder, 20)
    statements = Statements()
    recorder.set_statement_trace(statements)
    for thread_id in ids:
        await store.get_thread(thread_id)
    recorder.set_statement_trace(None)
    assert len(statements.starting("SELECT")) >= 20


async def test_concurrent_reads_of_the_same_ids_share_one_load(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, recorder = sqlite_store
    await many_threads(recorder, 3)
    statements = Statements()
    recorder.set_statement_trace(statements)
    first, second, third = await asyncio.gather(
        store.batch_read(["T-00000", "T-00001"]),
        store.batch_read(["T-00001", "T-00002"]),
        store.batch_read(["T-00000", "T-00001", "T-00002"]),
    )
    recorder.set_statement_trace(None)
    # Two loads: [0, 1], then [2]; everything else was already in flight.
    assert len(statements.starting("SELECT")) == 2
    stats = store.batch_reader.stats
    assert (stats.loads, stats.loaded, stats.shared) == (2, 3, 4)
    assert second["T-00001"] is first["T-00001"]
    assert third["T-00002"] is second["T-00002"]
    again = await store.batch_read(["T-00000"])  # nothing in flight any more: a new load
    assert again["T-00000"] == first["T-00000"]
    assert again["T-00000"] is not first["T-00000"]
    assert store.batch_reader.stats.loads == 3


async def test_a_failed_load_fails_every_caller_sharing_it(tmp_path: Path) -> None:
    recorder = SqliteRecorder(tmp_path / "t.db")
    store = ThreadStore(recorder)
    await store.create_thread(id="T-1", capture_environment=False)
    await recorder.close()  # the load will find the recorder closed
    results = await asyncio.gather(
        store.batch_read(["T-1"]), store.batch_read(["T-1"]), return_exceptions=True
    )
    assert [type(r) for r in results] == [StoreClosed, StoreClosed]
    assert store.batch_reader.stats.shared == 1


# -- batch_write -----------------------------------------------------------------------


async def test_default_window_is_100_ms(tmp_path: Path) -> None:
    async with await ThreadStore.open(":memory:") as store:
        assert store.batch_writer.window == DEFAULT_WINDOW == 0.1


async def test_a_window_commits_one_transaction_per_kind_and_answers_each_caller(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, recorder = sqlite_store
    await store.create_thread(id="T-old", capture_environment=False)
    await store.create_thread(id="T-held", capture_environment=False)
    writer = await store.acquire_writer("T-held")
    events: list[ThreadEvent] = []
    store.events.subscribe(events.append)
    store.batch_writer.window = 0.05
    operations: list[WriteOp] = [
        CreateOp(id="T-a", title="a", messages=[Message(role="user", content="hi")]),
        DeleteOp("T-old"),
        UpdateOp("T-a", 2, [TitleDelta(value="a2")]),  # follows the create of its window
        CreateOp(id="T-a", title="duplicate"),
        UpdateOp("T-old", 9, [TitleDelta(value="stale")]),
        DeleteOp("T-nope"),
        DeleteOp("T-held"),
        CreateOp(id="T-b"),
    ]
    statements = Statements()
    recorder.set_statement_trace(statements)
    results = await asyncio.gather(
        *(store.batch_writer.submit(op) for op in operations), return_exceptions=True
    )
    recorder.set_statement_trace(None)
    outcome = [
        type(r).__name__ if isinstance(r, BaseException) else r and (r.id, r.v) for r in results
    ]
    assert outcome == [
        ("T-a", 2),
        None,
        ("T-a", 3),
        "ThreadExists",
        "VersionConflict",
        "ThreadNotFound",
        "WriterBusy",
        ("T-b", 1),
    ]
    assert len(statements.starting("BEGIN IMMEDIATE")) == 3  # creates, updates, deletes
    assert store.batch_writer.transactions == 3
    assert (await store.get_thread("T-a")).title == "a2"
    assert await store.recorder.head("T-old") is None
    assert await store.recorder.head("T-held") is not None
    assert sorted((e.type, e.thread_id, e.v) for e in events) == [
        ("thread:created", "T-a", 2),
        ("thread:created", "T-b", 1),
        ("thread:deleted", "T-old", 1),
        ("thread:updated", "T-a", 3),
    ]
    await writer.dispose()


async def test_batch_write_returns_an_outcome_per_operation(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, _ = sqlite_store
    store.batch_writer.window = 0.01
    outcomes = await store.batch_write(
        [CreateOp(id="T-x"), CreateOp(id="T-x"), UpdateOp("T-x", 1, [TitleDelta(value="t")])]
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, ThreadExists)
    with pytest.raises(ThreadExists):
        outcomes[1].result()
    head = outcomes[2].result()
    assert head is not None
    assert (head.v, head.title) == (2, "t")
    assert outcomes[0].operation == CreateOp(id="T-x", created=outcomes[0].operation.created)  # type: ignore[union-attr]


async def test_separate_windows_commit_separately(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, _ = sqlite_store
    store.batch_writer.window = 0.01
    await store.batch_write([CreateOp(id="T-1")])
    await store.batch_write([CreateOp(id="T-2")])
    assert store.batch_writer.transactions == 2


async def test_a_full_window_closes_at_once(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, _ = sqlite_store
    store.batch_writer.window = 3600.0
    store.batch_writer.max_operations = 3
    outcomes = await asyncio.wait_for(
        store.batch_write([CreateOp(id=f"T-{n}") for n in range(3)]), timeout=30
    )
    assert [o.ok for o in outcomes] == [True, True, True]


async def test_a_caller_cancelled_in_the_window_writes_nothing(
    sqlite_store: tuple[ThreadStore, SqliteRecorder],
) -> None:
    store, _ = sqlite_store
    store.batch_writer.window = 0.05
    cancelled = asyncio.create_task(store.batch_writer.submit(CreateOp(id="T-cancelled")))
    kept = asyncio.create_task(store.batch_writer.submit(CreateOp(id="T-kept")))
    await asyncio.sleep(0)  # both are queued
    cancelled.cancel()
    assert (await kept) is not None
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await store.recorder.head("T-cancelled") is None


async def test_closing_the_store_commits_what_batch_write_holds(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = await ThreadStore.open(path)
    store.batch_writer.window = 3600.0
    pending = asyncio.create_task(store.batch_writer.submit(CreateOp(id="T-late")))
    await asyncio.sleep(0)
    await store.close()
    head = await pending
    assert head is not None
    assert head.id == "T-late"
    async with await ThreadStore.open(path) as reopened:
        assert (await reopened.get_thread("T-late")).v == 1


async def test_errors_are_threadline_errors_that_name_the_thread() -> None:
    async with await ThreadStore.open(":memory:") as store:
        store.batch_writer.window = 0.01
        outcomes = await store.batch_write([UpdateOp("T-gone", 1, [TitleDelta(value="x")])])
        assert isinstance(outcomes[0].error, ThreadNotFound)
        assert "T-gone" in str(outcomes[0].error)
        await store.create_thread(id="T-1", capture_environment=False)
        [conflict] = await store.batch_write([UpdateOp("T-1", 3, [TitleDelta(value="x")])])
        assert isinstance(conflict.error, VersionConflict)
        assert "reload it" in str(conflict.error)
        writer = await store.acquire_writer("T-1")
        [busy] = await store.batch_write([DeleteOp("T-1")])
        assert isinstance(busy.error, WriterBusy)
        await writer.dispose()


async def test_a_locked_database_fails_every_caller_of_the_window(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with await ThreadStore.open(path, busy_timeout_ms=20) as store:
        store.batch_writer.window = 0.01
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            outcomes = await store.batch_write([CreateOp(id="T-1"), CreateOp(id="T-2")])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert [type(o.error) for o in outcomes] == [StoreBusy, StoreBusy]
        assert all(o.error is not None and o.error.retryable for o in outcomes)
        assert [o.ok for o in await store.batch_write([CreateOp(id="T-1")])] == [True]
