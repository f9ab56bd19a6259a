"""SQLite-specific behaviour: persistence, error translation, schema versions."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from threadline.deltas import MessageDelta, ThreadCreate
from threadline.errors import StoreBusy, StoreCorrupt
from threadline.model import Message
from threadline.recorders import SqliteRecorder


async def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    first = SqliteRecorder(path)
    await first.append("T-1", 0, [ThreadCreate(id="T-1"), MessageDelta.of(Message(role="user"))])
    await first.close()
    second = SqliteRecorder(path)
    head = await second.head("T-1")
    assert head is not None
    assert (head.v, head.message_count) == (2, 1)
    assert await second.integrity_check() == "ok"
    await second.close()


async def test_wal_and_full_sync_are_the_defaults(tmp_path: Path) -> None:
    recorder = SqliteRecorder(tmp_path / "t.db")
    await recorder.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_file_that_is_not_a_database_raises_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not sqlite at all\n" * 200)
    with pytest.raises(StoreCorrupt, match="not a readable threadline database"):
        SqliteRecorder(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER)")
    conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupt, match="schema version 999"):
        SqliteRecorder(path)


async def test_a_locked_database_raises_store_busy(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    recorder = SqliteRecorder(path, busy_timeout_ms=50)
    await recorder.append("T-1", 0, [ThreadCreate(id="T-1")])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusy, match="locked"):
            await recorder.append("T-1", 1, [MessageDelta.of(Message(role="user"))])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    head = await recorder.append("T-1", 1, [MessageDelta.of(Message(role="user"))])
    assert head.v == 2
    await recorder.close()


async def test_a_cancelled_append_does_not_stop_the_writer_thread(tmp_path: Path) -> None:
    recorder = SqliteRecorder(tmp_path / "t.db")
    await recorder.append("T-1", 0, [ThreadCreate(id="T-1")])
    gate = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        gate.wait(5)

    blocker = asyncio.create_task(recorder._submit(hold, write=True))
    await asyncio.sleep(0.05)  # the writer thread is now inside ``hold``
    doomed = asyncio.create_task(
        recorder.append("T-1", 1, [MessageDelta.of(Message(role="user", content="never"))])
    )
    await asyncio.sleep(0.05)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    gate.set()
    await blocker
    head = await recorder.append("T-1", 1, [MessageDelta.of(Message(role="user", content="ok"))])
    assert (head.v, head.message_count) == (2, 1)
    await recorder.close()


async def test_a_conflict_in_a_group_commit_fails_only_its_own_append(tmp_path: Path) -> None:
    """Appends queued behind a busy writer thread commit together; the one that
    conflicts fails alone and leaves nothing behind, in the log, the pages or
    the search index."""
    recorder = SqliteRecorder(tmp_path / "t.db")
    for name in ("T-1", "T-2", "T-3"):
        await recorder.append(name, 0, [ThreadCreate(id=name)])
    gate = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        gate.wait(5)

    def said(word: str) -> list[MessageDelta]:
        return [MessageDelta.of(Message(role="user", content=f"{word} zebra"))]

    blocker = asyncio.create_task(recorder._submit(hold, write=True))
    await asyncio.sleep(0.05)  # the writer thread is now inside ``hold``
    queued = [
        asyncio.create_task(recorder.append("T-1", 1, said("first"))),
        asyncio.create_task(recorder.append("T-2", 1, said("second"))),
        asyncio.create_task(recorder.append("T-1", 1, said("stale"))),  # T-1 is at 2 by then
        asyncio.create_task(recorder.append("T-3", 1, said("third"))),
    ]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    outcomes = await asyncio.gather(*queued, return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == [
        "ThreadHead",
        "ThreadHead",
        "VersionConflict",
        "ThreadHead",
    ]
    for name, word in (("T-1", "first"), ("T-2", "second"), ("T-3", "third")):
        page = await recorder.page(name, limit=10)
        assert page is not None
        assert (page[0].v, [m.content for m in page[1]]) == (2, [f"{word} zebra"])
    hits = await recorder.search("zebra", limit=10)
    assert sorted(h.snippet for h in hits) == ["first zebra", "second zebra", "third zebra"]
    assert await recorder.search("stale", limit=10) == []

    def index_check(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO search_index (search_index) VALUES ('integrity-check')")

    await recorder._submit(index_check, write=True)
    await recorder.close()
