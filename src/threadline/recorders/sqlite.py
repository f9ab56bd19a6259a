"""SQLite recorder: the embedded default.

Layout (see ``_MIGRATIONS``): ``threads`` holds one row per thread with the
folded head as JSON; ``deltas`` is the log, unique on ``(tid, v)`` so a stale
append fails in the database, not in a check-then-write, and numbered by
``seq`` in commit order (AUTOINCREMENT: a number is never reused, even after a
delete, so a cursor over ``seq`` never skips); ``messages`` maps a
thread's message positions to the delta that carries each message, so a page
is an index range scan whose cost does not grow with the thread and a message
body is stored once.

Durability: WAL with ``synchronous=FULL`` by default; an append returns only
after its transaction committed. All writes of this process go through one
writer thread, which commits every append queued while the previous commit
was syncing in one transaction (group commit), each append in a savepoint of
its own so that one conflict does not fail its neighbours. Reads use their own
connections and see a consistent snapshot (one read transaction each).

Writer leases are ``flock`` locks on files beside the database: the operating
system drops them when the holding process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from threadline.deltas import (
    Delta,
    MessageDelta,
    ThreadCreate,
    TruncateDelta,
    apply_head,
    delta_from_json,
    delta_to_json,
)
from threadline.errors import (
    InvalidDelta,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.ids import now_ms
from threadline.model import Message, Thread, ThreadHead
from threadline.recorders.base import RecordedDelta, ThreadRecorder, WriterLease

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_R = TypeVar("_R")

# Numbered schema migrations, applied in order on open, each in the same
# transaction as its row in schema_migrations. Never edit a released one: add
# the next number.
_MIGRATIONS: dict[int, str] = {
    # 1: threads, their delta logs and the message projection.
    1: """
    CREATE TABLE threads (
        tid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        v INTEGER NOT NULL,
        last_activity INTEGER NOT NULL,
        head BLOB NOT NULL
    );
    CREATE INDEX threads_by_activity ON threads (last_activity DESC, id DESC);
    CREATE TABLE deltas (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tid INTEGER NOT NULL,
        v INTEGER NOT NULL,
        at INTEGER NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (tid, v)
    );
    CREATE TABLE messages (
        tid INTEGER NOT NULL,
        pos INTEGER NOT NULL,
        delta_seq INTEGER NOT NULL,
        PRIMARY KEY (tid, pos)
    ) WITHOUT ROWID;
    """,
}


@contextlib.contextmanager
def _translated(location: str) -> Iterator[None]:
    """The one place where sqlite3 errors become threadline errors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreBusy(location, text) from exc
        raise StoreCorrupt(location, text) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(location, str(exc)) from exc


def _connect(path: str, synchronous: Synchronous, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if path != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreCorrupt(path, f"cannot switch to WAL journal mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, location: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for number, script in sorted(_MIGRATIONS.items()):
            if number in done:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, now_ms()))
        newest = max(done, default=0)
        if newest > max(_MIGRATIONS):
            raise StoreCorrupt(
                location, f"schema version {newest} is newer than this threadline understands"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _head_from_row(body: bytes) -> ThreadHead:
    return ThreadHead.model_validate_json(body)


def _message_of(body: bytes) -> Message:
    delta = delta_from_json(body)
    if not isinstance(delta, MessageDelta):
        raise InvalidDelta(f"message projection points at a {delta.type} delta")
    return delta.message


class _FlockLease(WriterLease):
    def __init__(self, recorder: SqliteRecorder, thread_id: str, fd: int) -> None:
        self._recorder = recorder
        self.thread_id = thread_id
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
            self._recorder._leases.discard(self.thread_id)


class _MemoryLease(WriterLease):
    def __init__(self, recorder: SqliteRecorder, thread_id: str) -> None:
        self._recorder = recorder
        self.thread_id = thread_id

    def release(self) -> None:
        self._recorder._leases.discard(self.thread_id)


class _Job:
    __slots__ = ("fn", "future", "write")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], object], future: Future[object], write: bool
    ) -> None:
        self.fn = fn
        self.future = future
        self.write = write


class SqliteRecorder(ThreadRecorder):
    """Threads in one SQLite file (or ``":memory:"``, which lives and dies with the recorder)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
        read_threads: int = 2,
        max_batch: int = 256,
    ) -> None:
        self._path = str(path)
        self._in_memory = self._path == ":memory:"
        if not self._in_memory:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        with _translated(self._path):
            self._writer_conn = _connect(self._path, synchronous, busy_timeout_ms)
            try:
                _migrate(self._writer_conn, self._path)
            except BaseException:
                self._writer_conn.close()
                raise
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._leases: set[str] = set()
        self._closed = False
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_conns_lock = threading.Lock()
        self._readers = (
            None
            if self._in_memory
            else ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="threadline-read")
        )
        self._thread = threading.Thread(
            target=self._run_writer, name="threadline-writer", daemon=True
        )
        self._thread.start()

    @property
    def location(self) -> str:
        return self._path

    # -- plumbing ---------------------------------------------------------

    def _run_writer(self) -> None:
        conn = self._writer_conn
        job = self._jobs.get()
        while job is not None:
            if not job.write:
                self._run_read(conn, job)
                job = self._jobs.get()
                continue
            # Group commit: every write queued meanwhile joins this transaction.
            batch = [job]
            following: _Job | Literal["empty"] | None = "empty"
            while len(batch) < self._max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None or not more.write:
                    following = more
                    break
                batch.append(more)
            self._commit_batch(conn, batch)
            job = self._jobs.get() if following == "empty" else following

    def _run_read(self, conn: sqlite3.Connection, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # the caller gave up before the job started
        try:
            with _translated(self._path):
                job.future.set_result(job.fn(conn))
        except BaseException as exc:
            job.future.set_exception(exc)

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        # A job whose caller was cancelled before it started is dropped; once
        # running it cannot be cancelled, so setting its result is safe.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        results: list[tuple[_Job, object, BaseException | None]] = []
        single = len(batch) == 1
        try:
            with _translated(self._path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for job in batch:
                        if not single:
                            conn.execute("SAVEPOINT append")
                        try:
                            results.append((job, job.fn(conn), None))
                        except ThreadlineError as exc:
                            if single:
                                raise
                            conn.execute("ROLLBACK TO append")
                            results.append((job, None, exc))
                        if not single:
                            conn.execute("RELEASE append")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except BaseException as exc:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path, self._synchronous, self._busy_timeout_ms)
            self._local.conn = conn
            with self._read_conns_lock:
                self._read_conns.append(conn)
        return conn

    def _read_in_pool(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        with _translated(self._path):
            conn = self._reader_conn()
            conn.execute("BEGIN")  # one snapshot for every query of fn
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

    async def _submit(self, fn: Callable[[sqlite3.Connection], _R], *, write: bool) -> _R:
        if self._closed:
            raise StoreClosed()
        if not write and self._readers is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._readers, self._read_in_pool, fn)
        future: Future[object] = Future()
        self._jobs.put(_Job(fn, future, write))
        result = await asyncio.wrap_future(future)
        return result  # type: ignore[return-value]

    # -- writes -----------------------------------------------------------

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        if not deltas:
            raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        bodies = [delta_to_json(d) for d in deltas]
        return await self._submit(
            lambda conn: self._append(conn, thread_id, expected_version, deltas, bodies),
            write=True,
        )

    def _append(
        self,
        conn: sqlite3.Connection,
        thread_id: str,
        expected_version: int,
        deltas: Sequence[Delta],
        bodies: list[bytes],
    ) -> ThreadHead:
        row = conn.execute("SELECT tid, v, head FROM threads WHERE id = ?", (thread_id,)).fetchone()
        head: ThreadHead | None
        if expected_version == 0:
            if row is not None:
                raise ThreadExists(thread_id)
            first = deltas[0]
            if not isinstance(first, ThreadCreate) or first.id != thread_id:
                raise InvalidDelta(f"Thread {thread_id} must start with its thread:create delta")
            head = None
        else:
            if row is None:
                raise ThreadNotFound(thread_id)
            if row[1] != expected_version:
                raise VersionConflict(thread_id, expected_version, row[1])
            head = _head_from_row(row[2])
        heads: list[ThreadHead] = []
        for delta in deltas:  # validate everything before writing anything
            head = apply_head(head, delta)
            heads.append(head)
        assert head is not None
        if row is None:
            tid = conn.execute(
                "INSERT INTO threads (id, v, last_activity, head) VALUES (?, 0, 0, x'')",
                (thread_id,),
            ).lastrowid
        else:
            tid = row[0]
        at = now_ms()
        try:
            for delta, body, after in zip(deltas, bodies, heads, strict=True):
                seq = conn.execute(
                    "INSERT INTO deltas (tid, v, at, body) VALUES (?, ?, ?, ?)",
                    (tid, after.v, at, body),
                ).lastrowid
                if isinstance(delta, MessageDelta):
                    conn.execute(
                        "INSERT INTO messages (tid, pos, delta_seq) VALUES (?, ?, ?)",
                        (tid, after.message_count - 1, seq),
                    )
                elif isinstance(delta, TruncateDelta):
                    conn.execute(
                        "DELETE FROM messages WHERE tid = ? AND pos >= ?",
                        (tid, delta.from_index),
                    )
        except sqlite3.IntegrityError as exc:
            # Another connection won the race for (tid, v): refuse, never overwrite.
            actual = conn.execute("SELECT v FROM threads WHERE tid = ?", (tid,)).fetchone()
            raise VersionConflict(thread_id, expected_version, actual[0] if actual else 0) from exc
        conn.execute(
            "UPDATE threads SET v = ?, last_activity = ?, head = ? WHERE tid = ?",
            (head.v, head.last_activity, head.model_dump_json().encode(), tid),
        )
        return head

    async def delete(self, thread_id: str) -> bool:
        return await self._submit(lambda conn: self._delete(conn, thread_id), write=True)

    @staticmethod
    def _delete(conn: sqlite3.Connection, thread_id: str) -> bool:
        row = conn.execute("SELECT tid FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM messages WHERE tid = ?", (row[0],))
        conn.execute("DELETE FROM deltas WHERE tid = ?", (row[0],))
        conn.execute("DELETE FROM threads WHERE tid = ?", (row[0],))
        return True

    # -- reads ------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        def read(conn: sqlite3.Connection) -> ThreadHead | None:
            row = conn.execute("SELECT head FROM threads WHERE id = ?", (thread_id,)).fetchone()
            return None if row is None else _head_from_row(row[0])

        return await self._submit(read, write=False)

    async def load(self, thread_id: str) -> Thread | None:
        def read(conn: sqlite3.Connection) -> Thread | None:
            row = conn.execute(
                "SELECT tid, head FROM threads WHERE id = ?", (thread_id,)
            ).fetchone()
            if row is None:
                return None
            head = _head_from_row(row[1])
            bodies = conn.execute(
                "SELECT d.body FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
                "WHERE m.tid = ? ORDER BY m.pos",
                (row[0],),
            ).fetchall()
            fields = head.model_dump(exclude={"message_count", "last_activity", "totals"})
            messages = tuple(_message_of(body) for (body,) in bodies)
            return Thread.model_validate({**fields, "messages": messages})

        return await self._submit(read, write=False)

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        def read(conn: sqlite3.Connection) -> tuple[ThreadHead, list[Message]] | None:
            row = conn.execute(
                "SELECT tid, head FROM threads WHERE id = ?", (thread_id,)
            ).fetchone()
            if row is None:
                return None
            head = _head_from_row(row[1])
            count = head.message_count
            end = max(0, (count if before is None else min(before, count)) - offset)
            bodies = conn.execute(
                "SELECT d.body FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
                "WHERE m.tid = ? AND m.pos >= ? AND m.pos < ? ORDER BY m.pos",
                (row[0], end - limit, end),
            ).fetchall()
            return head, [_message_of(body) for (body,) in bodies]

        return await self._submit(read, write=False)

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        def read(conn: sqlite3.Connection) -> list[RecordedDelta]:
            rows = conn.execute(
                "SELECT d.v, d.at, d.body FROM deltas d JOIN threads t ON t.tid = d.tid "
                "WHERE t.id = ? AND d.v > ? AND d.v <= ? ORDER BY d.v",
                (thread_id, after, upto if upto is not None else 2**62),
            ).fetchall()
            return [RecordedDelta(thread_id, v, at, delta_from_json(body)) for v, at, body in rows]

        return await self._submit(read, write=False)

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        def read(conn: sqlite3.Connection) -> list[ThreadHead]:
            if after is None:
                rows = conn.execute(
                    "SELECT head FROM threads ORDER BY last_activity DESC, id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT head FROM threads WHERE (last_activity, id) < (?, ?) "
                    "ORDER BY last_activity DESC, id DESC LIMIT ?",
                    (after[0], after[1], limit),
                ).fetchall()
            return [_head_from_row(body) for (body,) in rows]

        return await self._submit(read, write=False)

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""

        def read(conn: sqlite3.Connection) -> str:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))

        return await self._submit(read, write=False)

    async def checkpoint(self) -> None:
        """Fold the WAL into the main file (``PRAGMA wal_checkpoint(TRUNCATE)``)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._submit(run, write=False)

    # -- leases -----------------------------------------------------------

    def acquire_lease(self, thread_id: str) -> WriterLease:
        if self._closed:
            raise StoreClosed()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        if self._in_memory:
            self._leases.add(thread_id)
            return _MemoryLease(self, thread_id)
        lock_dir = Path(self._path + ".locks")
        lock_dir.mkdir(exist_ok=True)
        name = hashlib.sha256(thread_id.encode()).hexdigest()[:32]
        fd = os.open(lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise WriterBusy(thread_id) from exc
        self._leases.add(thread_id)
        return _FlockLease(self, thread_id, fd)

    # -- lifecycle --------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        with self._read_conns_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        self._writer_conn.close()
