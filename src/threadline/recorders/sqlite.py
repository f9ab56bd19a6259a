"""SQLite recorder: the embedded default.

Layout (see ``sql.MIGRATIONS``): ``threads`` holds one row per thread with the
folded head as JSON; ``deltas`` is the log, unique on ``(tid, v)`` so a stale
append fails in the database, not in a check-then-write, and numbered by
``seq`` in commit order (AUTOINCREMENT: a number is never reused, even after a
delete, so a cursor over ``seq`` never skips); ``messages`` maps a
thread's message positions to the delta that carries each message, so a page
is an index range scan whose cost does not grow with the thread and a message
body is stored once (its delta's JSON, zstd-compressed when large: see
recorders/sqlite_bodies.py; the search index reads its text from there too).

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from threadline import planner
from threadline.deltas import (
    Delta,
    delta_to_json,
)
from threadline.errors import (
    InvalidDelta,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    ThreadlineError,
    VersionConflict,
    WriterBusy,
)
from threadline.files.log import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.ids import now_ms
from threadline.model import ArchivedThread, LifecycleOp, Message, Thread, ThreadHead
from threadline.recorders import (
    sqlite_bodies,
    sqlite_files,
    sqlite_lifecycle,
    sqlite_relations,
    sqlite_search,
    sqlite_sync,
)
from threadline.recorders import sqlite_schema as sql
from threadline.recorders.base import (
    Append,
    Change,
    LinkGraph,
    RecordedDelta,
    UsageGroup,
    WriterLease,
    whole_log_thread_id,
)
from threadline.recorders.sync_state import (
    LocalRecorder,
    PulledThread,
    PullOutcome,
    SyncState,
    SyncUpdate,
)
from threadline.search import SearchHit, parse_query

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_R = TypeVar("_R")
_WRITTEN_HEADS = 1024  # heads remembered by the writer (see _written_head)
# A commit writes every page it touched to the WAL whole: an append touches ~15
# (log, projection, usage, head, change feed, search index), so 8 KB pages wrote
# and synced 123 KB per single append, 4 KB pages half that, for ~13% faster
# single appends. Since delta bodies are compressed, the space rows leave unused
# at the end of a page hardly shows: bytes on disk per message were 0.98 of its
# JSON with 8 KB pages and 0.99 with 4 KB (bench/foundation.py, benchmarks 1
# and 4; docs/performance.md). A database keeps the page size it was made with.
_PAGE_SIZE = 4096


def _publish(conn: sqlite3.Connection, thread_id: str, v: int, *, deleted: bool, at: int) -> None:
    """Move ``thread_id``'s row of the change feed to a new number (see migration 6)."""
    conn.execute(sql.PUBLISH, (thread_id, v, int(deleted), at))


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
        conn.execute(sql.BUSY_TIMEOUT.format(ms=int(busy_timeout_ms)))
        # Only a new, empty database takes it (so before WAL, which writes the
        # header); an existing file keeps its own.
        conn.execute(sql.PAGE_SIZE.format(size=_PAGE_SIZE))
        if path != ":memory:":
            mode = conn.execute(sql.JOURNAL_WAL).fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreCorrupt(path, f"cannot switch to WAL journal mode (got {mode})")
        conn.execute(sql.SYNCHRONOUS.format(mode=synchronous))
        conn.execute(sql.FOREIGN_KEYS)
        conn.execute(sql.TRUSTED_SCHEMA)
        sqlite_bodies.register_functions(conn)
        sqlite_search.register_functions(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, location: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(sql.MIGRATIONS_TABLE)
        done = {row[0] for row in conn.execute(sql.MIGRATIONS_DONE)}
        for number, script in sorted(sql.MIGRATIONS.items()):
            if number in done:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(sql.MIGRATION_DONE, (number, now_ms()))
        newest = max(done, default=0)
        if newest > max(sql.MIGRATIONS):
            raise StoreCorrupt(
                location, f"schema version {newest} is newer than this threadline understands"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _is_archived(conn: sqlite3.Connection, thread_id: str) -> bool:
    found = conn.execute(sql.IS_ARCHIVED, (thread_id,))
    return found.fetchone() is not None


def _head_from_row(body: bytes) -> ThreadHead:
    return ThreadHead.model_validate_json(body)


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
    """A function to run on the writer thread, and the caller's future for its result.

    The future belongs to the caller's event loop: only that loop may settle
    it, so the writer thread hands results over with ``call_soon_threadsafe``
    (one wake-up per commit, whatever the number of jobs in it).
    """

    __slots__ = ("fn", "future", "loop", "write")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], object],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[object],
        write: bool,
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future
        self.write = write


_Outcome = tuple[_Job, object, BaseException | None]


def _settle(outcomes: list[_Outcome]) -> None:
    """Run in the callers' event loop: give each job its result or error."""
    for job, value, error in outcomes:
        if job.future.done():  # cancelled by its caller meanwhile
            continue
        if error is None:
            job.future.set_result(value)
        else:
            job.future.set_exception(error)


def _hand_over(outcomes: list[_Outcome]) -> None:
    """From the writer thread: settle the futures in their loops, one call per loop."""
    loop = outcomes[0][0].loop
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]]
    if all(outcome[0].loop is loop for outcome in outcomes):  # the usual case
        by_loop = {loop: outcomes}
    else:
        by_loop = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, some in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, some)


class SqliteRecorder(LocalRecorder):
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
        # The last head each thread was given by _append, as (JSON, parsed).
        self._written_heads: dict[str, tuple[bytes, ThreadHead]] = {}
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
        if job.future.cancelled():
            return  # the caller gave up before the job started
        try:
            with _translated(self._path):
                outcome: _Outcome = (job, job.fn(conn), None)
        except BaseException as exc:
            outcome = (job, None, exc)
        _hand_over([outcome])

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        # A job whose caller was cancelled before it started is dropped; once
        # started it runs to the end (its caller has stopped waiting for it).
        batch = [job for job in batch if not job.future.cancelled()]
        if not batch:
            return
        try:
            with _translated(self._path):
                results = self._run_batch(conn, batch, isolated=False)
                if results is None:  # a job failed: again, each in a savepoint
                    results = self._run_batch(conn, batch, isolated=True)
                assert results is not None
        except BaseException as exc:
            _hand_over([(job, None, exc) for job in batch])
            return
        _hand_over(results)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[_Job], *, isolated: bool
    ) -> list[_Outcome] | None:
        """Run the jobs in one transaction and commit it, or return None.

        Not ``isolated``, the jobs run one after the other with nothing between
        them: a job that raises a :class:`ThreadlineError` rolls the whole
        transaction back and the result is None (the caller runs the batch
        again, ``isolated``). Isolated, each job runs in a savepoint of its own,
        so that one conflict does not fail its neighbours. The first way is the
        common one and costs much less: releasing a savepoint makes the
        full-text index flush a segment of its own, so N appends under
        savepoints cost N index flushes, and one transaction without them one
        (docs/performance.md).
        """
        results: list[_Outcome] = []
        single = len(batch) == 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in batch:
                if not isolated or single:
                    try:
                        results.append((job, job.fn(conn), None))
                    except ThreadlineError:
                        if single:
                            raise
                        conn.execute("ROLLBACK")
                        return None
                    continue
                conn.execute("SAVEPOINT append")
                try:
                    results.append((job, job.fn(conn), None))
                except ThreadlineError as exc:
                    conn.execute("ROLLBACK TO append")
                    results.append((job, None, exc))
                conn.execute("RELEASE append")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path, self._synchronous, self._busy_timeout_ms)
            conn.set_trace_callback(self._statement_trace)
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._jobs.put(_Job(fn, loop, future, write))
        result = await future
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
        """Plan the append (:mod:`threadline.planner`) and execute the plan."""
        row = conn.execute(sql.THREAD_ROW, (thread_id,)).fetchone()
        head = None if row is None else self._written_head(thread_id, row[1])
        archived = row is None and expected_version == 0 and _is_archived(conn, thread_id)
        plan = planner.plan(
            thread_id, head, expected_version, deltas, at=now_ms(), bodies=bodies, archived=archived
        )
        tid = conn.execute(sql.NEW_THREAD, (thread_id,)).lastrowid if row is None else row[0]
        assert tid is not None
        try:
            seqs = [
                conn.execute(
                    sql.INSERT_DELTA, (tid, v, plan.at, sqlite_bodies.stored(body))
                ).lastrowid
                for v, body in zip(plan.versions, plan.bodies, strict=True)
            ]
        except sqlite3.IntegrityError as exc:
            # Another connection won the race for (tid, v): refuse, never overwrite.
            actual = conn.execute(sql.THREAD_V_BY_TID, (tid,)).fetchone()
            raise VersionConflict(thread_id, expected_version, actual[0] if actual else 0) from exc
        head_json = self._write_plan(conn, tid, plan, seqs)  # type: ignore[arg-type]
        self._remember_head(thread_id, head_json, plan.head)
        feed = plan.feed
        conn.execute(sql.PUBLISH, (thread_id, feed.v, int(feed.deleted), feed.at))
        return plan.head

    @staticmethod
    def _write_plan(
        conn: sqlite3.Connection, tid: int, plan: planner.AppendPlan, seqs: Sequence[int]
    ) -> bytes:
        """Write the derived rows of ``plan``, whose deltas are the rows ``seqs``
        of thread ``tid``, and its head (returned as stored)."""
        first_v = plan.expected_version + 1
        if plan.cut is not None:
            # The search index reads a row's text through the projection: out first.
            sqlite_search.unindex_from(conn, tid, plan.cut)
            conn.execute(sql.CUT_MESSAGES, (tid, plan.cut))
        if plan.messages:
            conn.executemany(
                sql.INSERT_MESSAGE, [(tid, m.pos, seqs[m.v - first_v]) for m in plan.messages]
            )
            sqlite_search.index_messages(conn, tid, plan.messages, seqs, first_v)
        if plan.retitled:
            sqlite_search.set_title(conn, tid, plan.head.title)
        sqlite_relations.write(conn, tid, plan, seqs, first_v)
        head = plan.head
        head_json = head.model_dump_json().encode()
        conn.execute(sql.UPDATE_HEAD, (head.v, head.last_activity, head_json, tid))
        return head_json

    def _written_head(self, thread_id: str, body: bytes) -> ThreadHead:
        """The head stored as ``body``, parsed, or reused if this writer wrote it.

        Parsing a head costs as much as the rest of an append's Python work.
        Reuse depends on the stored bytes being exactly those written, so an
        entry left by a rolled-back append, or a head rewritten by another
        connection, is never reused.
        """
        written = self._written_heads.get(thread_id)
        if written is not None and written[0] == body:
            return written[1]
        return _head_from_row(body)

    def _remember_head(self, thread_id: str, body: bytes, head: ThreadHead) -> None:
        if len(self._written_heads) >= _WRITTEN_HEADS and thread_id not in self._written_heads:
            self._written_heads.clear()
        self._written_heads[thread_id] = (body, head)

    async def delete(self, thread_id: str) -> bool:
        return await self._submit(lambda conn: self._delete_published(conn, thread_id), write=True)

    @classmethod
    def _delete_published(cls, conn: sqlite3.Connection, thread_id: str) -> bool:
        """:meth:`_delete`, leaving a tombstone in the change feed."""
        row = conn.execute(sql.THREAD_V, (thread_id,)).fetchone()
        if row is None or not cls._delete(conn, thread_id):
            return False
        _publish(conn, thread_id, row[0], deleted=True, at=now_ms())
        return True

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        def read(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute(
                sql.CHANGES,
                (min(cursor, 2**63 - 1), limit),
            ).fetchall()
            return [Change(seq, t, v, bool(deleted), at) for seq, t, v, deleted, at in rows]

        return await self._submit(read, write=False)

    @staticmethod
    def _delete(conn: sqlite3.Connection, thread_id: str) -> bool:
        row = conn.execute(sql.THREAD_TID, (thread_id,)).fetchone()
        if row is None:
            return False
        sqlite_search.unindex_thread(conn, row[0])
        sqlite_relations.forget(conn, row[0])
        sqlite_files.forget(conn, thread_id)
        sqlite_sync.forget(conn, thread_id)
        conn.execute(sql.DELETE_MESSAGES, (row[0],))
        conn.execute(sql.DELETE_DELTAS, (row[0],))
        conn.execute(sql.DELETE_THREAD, (row[0],))
        return True

    # -- reads ------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        def read(conn: sqlite3.Connection) -> ThreadHead | None:
            row = conn.execute(sql.THREAD_HEAD, (thread_id,)).fetchone()
            return None if row is None else _head_from_row(row[0])

        return await self._submit(read, write=False)

    async def load(self, thread_id: str) -> Thread | None:
        def read(conn: sqlite3.Connection) -> Thread | None:
            row = conn.execute(sql.THREAD_ROW, (thread_id,)).fetchone()
            if row is None:
                return None
            head = _head_from_row(row[1])
            bodies = conn.execute(sql.MESSAGE_BODIES, (row[0],)).fetchall()
            fields = head.model_dump(exclude={"message_count", "last_activity", "totals"})
            messages = tuple(sqlite_bodies.message_of(body) for (body,) in bodies)
            return Thread.model_validate({**fields, "messages": messages})

        return await self._submit(read, write=False)

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        def read(conn: sqlite3.Connection) -> tuple[ThreadHead, list[Message]] | None:
            row = conn.execute(sql.THREAD_ROW, (thread_id,)).fetchone()
            if row is None:
                return None
            head = _head_from_row(row[1])
            count = head.message_count
            end = max(0, (count if before is None else min(before, count)) - offset)
            bodies = conn.execute(sql.PAGE_BODIES, (row[0], end - limit, end)).fetchall()
            return head, [sqlite_bodies.message_of(body) for (body,) in bodies]

        return await self._submit(read, write=False)

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        def read(conn: sqlite3.Connection) -> list[RecordedDelta]:
            rows = conn.execute(
                sql.DELTAS,
                (thread_id, after, upto if upto is not None else 2**62),
            ).fetchall()
            return [
                RecordedDelta(thread_id, v, at, sqlite_bodies.delta_of(body))
                for v, at, body in rows
            ]

        return await self._submit(read, write=False)

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        def read(conn: sqlite3.Connection) -> list[ThreadHead]:
            if after is None:
                rows = conn.execute(sql.LIST_HEADS, (limit,)).fetchall()
            else:
                rows = conn.execute(sql.LIST_HEADS_AFTER, (after[0], after[1], limit)).fetchall()
            return [_head_from_row(body) for (body,) in rows]

        return await self._submit(read, write=False)

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""

        def read(conn: sqlite3.Connection) -> str:
            return "\n".join(str(r[0]) for r in conn.execute(sql.INTEGRITY_CHECK))

        return await self._submit(read, write=False)

    async def checkpoint(self) -> None:
        """Fold the WAL into the main file (``PRAGMA wal_checkpoint(TRUNCATE)``)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(sql.CHECKPOINT)

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

    # -- archive and restore (see recorders/sqlite_lifecycle.py) ----------------

    async def begin_lifecycle(self, op: LifecycleOp) -> None:
        body = op.model_dump_json().encode()
        await self._submit(lambda conn: sqlite_lifecycle.begin(conn, op, body), write=True)

    async def end_lifecycle(self, op_id: str) -> bool:
        return await self._submit(lambda conn: sqlite_lifecycle.end(conn, op_id), write=True)

    async def pending_lifecycle(self) -> list[LifecycleOp]:
        return await self._submit(sqlite_lifecycle.pending, write=False)

    async def commit_archive(self, op_id: str, entries: Sequence[ArchivedThread]) -> None:
        prepared = [(entry, entry.model_dump_json().encode()) for entry in entries]
        await self._submit(
            lambda conn: sqlite_lifecycle.commit_archive(conn, op_id, prepared), write=True
        )

    async def commit_restore(
        self, logs: Sequence[Sequence[RecordedDelta]], op: LifecycleOp
    ) -> list[ThreadHead]:
        prepared = [
            (whole_log_thread_id(log), log, [delta_to_json(r.delta) for r in log]) for log in logs
        ]
        body = op.model_dump_json().encode()
        return await self._submit(
            lambda conn: sqlite_lifecycle.commit_restore(conn, self._append, prepared, op, body),
            write=True,
        )

    async def archived(self, thread_id: str) -> ArchivedThread | None:
        return await self._submit(
            lambda conn: sqlite_lifecycle.archived(conn, thread_id), write=False
        )

    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        return await self._submit(
            lambda conn: sqlite_lifecycle.list_archived(conn, limit, after), write=False
        )

    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        return await self._submit(lambda conn: self._rebuild(conn, thread_id), write=True)

    @classmethod
    def _rebuild(cls, conn: sqlite3.Connection, thread_id: str) -> ThreadHead | None:
        """Drop the thread's derived rows and write those of its log's replay."""
        row = conn.execute(sql.THREAD_TID, (thread_id,)).fetchone()
        if row is None:
            return None
        tid = row[0]
        rows = conn.execute(sql.LOG_BODIES, (tid,)).fetchall()
        if not rows:
            raise InvalidDelta(f"Thread {thread_id} has no log to rebuild its head from")
        # A log that does not fold raises here, before anything changes.
        plan = planner.replay(thread_id, [sqlite_bodies.delta_of(body) for _, body in rows])
        sqlite_search.unindex_thread(conn, tid)
        sqlite_relations.forget(conn, tid)
        conn.execute(sql.DELETE_MESSAGES, (tid,))
        cls._write_plan(conn, tid, plan, [seq for seq, _ in rows])
        return plan.head

    # -- the sync ledger (see recorders/sync_state.py and recorders/sqlite_sync.py)

    async def sync_pending(self) -> list[SyncState]:
        return await self._submit(sqlite_sync.pending, write=False)

    async def sync_states(self, thread_ids: Sequence[str] | None = None) -> dict[str, SyncState]:
        ids = None if thread_ids is None else list(thread_ids)
        return await self._submit(lambda conn: sqlite_sync.states(conn, ids), write=False)

    async def sync_cursor(self, remote: str) -> int | None:
        return await self._submit(lambda conn: sqlite_sync.cursor(conn, remote), write=False)

    async def record_pull(
        self, remote: str, cursor: int | None, pulled: Sequence[PulledThread]
    ) -> list[PullOutcome]:
        prepared = [(item, [delta_to_json(d) for d in item.deltas]) for item in pulled]
        return await self._submit(
            lambda conn: sqlite_sync.record_pull(
                conn, self._append, self._delete_published, remote, cursor, prepared
            ),
            write=True,
        )

    async def update_sync(self, updates: Sequence[SyncUpdate]) -> None:
        changes = list(updates)

        def write(conn: sqlite3.Connection) -> None:
            for change in changes:
                sqlite_sync.update(conn, change)

        await self._submit(write, write=True)

    async def rebase(
        self,
        thread_id: str,
        expected_version: int,
        keep: int,
        deltas: Sequence[Delta],
        update: SyncUpdate,
    ) -> ThreadHead:
        if not deltas:
            raise InvalidDelta(f"Nothing to rebase thread {thread_id} onto")
        bodies = [delta_to_json(d) for d in deltas]
        return await self._submit(
            lambda conn: sqlite_sync.rebase(
                conn,
                self._append,
                self._rebuild,
                thread_id,
                expected_version,
                keep,
                deltas,
                bodies,
                update,
            ),
            write=True,
        )

    # -- search -------------------------------------------------------------

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """FTS5 BM25 ranking; see :mod:`threadline.recorders.sqlite_search`."""
        parse_query(query)  # a query without a word fails here, not in SQL
        return await self._submit(
            lambda conn: sqlite_search.search(conn, query, limit), write=False
        )

    # -- relationships and costs (see recorders/sqlite_relations.py) ------------

    _statement_trace: Callable[[str], None] | None = None

    def set_statement_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback`` with every SQL statement any connection of this
        recorder runs (``None`` stops it): how tests count queries. Statements
        run on the recorder's own threads, so ``callback`` must be thread-safe."""
        self._statement_trace = callback
        with self._read_conns_lock:
            for conn in [self._writer_conn, *self._read_conns]:
                conn.set_trace_callback(callback)

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        for thread_id, _, deltas in appends:
            if not deltas:
                raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        prepared = self._prepare_appends(appends)

        def write(conn: sqlite3.Connection) -> list[ThreadHead]:
            return [self._append(conn, *append) for append in prepared]

        return await self._submit(write, write=True)

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        prepared = self._prepare_appends(appends)

        def write(conn: sqlite3.Connection) -> list[ThreadHead | ThreadlineError]:
            results: list[ThreadHead | ThreadlineError] = []
            for append in prepared:
                if not append[2]:
                    results.append(InvalidDelta(f"Nothing to append to thread {append[0]}"))
                    continue
                conn.execute("SAVEPOINT each_append")
                try:
                    results.append(self._append(conn, *append))
                except ThreadlineError as exc:
                    conn.execute("ROLLBACK TO each_append")
                    results.append(exc)
                conn.execute("RELEASE each_append")
            return results

        return await self._submit(write, write=True)

    @staticmethod
    def _prepare_appends(
        appends: Sequence[Append],
    ) -> list[tuple[str, int, Sequence[Delta], list[bytes]]]:
        return [(t, v, deltas, [delta_to_json(d) for d in deltas]) for t, v, deltas in appends]

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        ids = list(thread_ids)
        return await self._submit(
            lambda conn: [self._delete_published(conn, thread_id) for thread_id in ids],
            write=True,
        )

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        ids = list(thread_ids)
        return await self._submit(lambda conn: sqlite_relations.load_many(conn, ids), write=False)

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        ids = list(thread_ids)
        return await self._submit(lambda conn: sqlite_relations.heads_many(conn, ids), write=False)

    async def subtree(self, thread_id: str) -> LinkGraph:
        return await self._submit(
            lambda conn: sqlite_relations.subtree(conn, thread_id), write=False
        )

    async def ancestry(self, thread_id: str) -> LinkGraph:
        return await self._submit(
            lambda conn: sqlite_relations.ancestry(conn, thread_id), write=False
        )

    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        ids = None if thread_ids is None else list(thread_ids)
        return await self._submit(
            lambda conn: sqlite_relations.usage_rollup(conn, ids, subtrees), write=False
        )

    # -- file changes (see recorders/sqlite_files.py) ------------------------

    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        new, stored = list(changes), list(contents)
        return await self._submit(
            lambda conn: sqlite_files.record(conn, thread_id, new, stored, rollback), write=True
        )

    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        return await self._submit(
            lambda conn: sqlite_files.changes(conn, thread_id, operation_id, since_version),
            write=False,
        )

    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        wanted = list(seqs)
        return await self._submit(
            lambda conn: sqlite_files.reverts_of(conn, thread_id, wanted), write=False
        )

    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        wanted = list(paths)
        return await self._submit(
            lambda conn: sqlite_files.latest(conn, thread_id, wanted), write=False
        )

    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        return await self._submit(lambda conn: sqlite_files.chain(conn, content_hash), write=False)

    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        wanted = list(hashes)
        return await self._submit(lambda conn: sqlite_files.depths(conn, wanted), write=False)

    async def content_usage(self) -> ContentUsage:
        return await self._submit(sqlite_files.usage, write=False)

    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        return await self._submit(
            lambda conn: sqlite_files.rollbacks(conn, thread_id, unfinished), write=False
        )

    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        await self._submit(
            lambda conn: sqlite_files.finish(conn, thread_id, operation_id), write=True
        )

    # -- inspection -------------------------------------------------------------

    async def derived_rows(self) -> planner.DerivedRows:
        """Every derived row, in the form all backends report (for tests)."""
        return await self._submit(sqlite_lifecycle.derived_rows, write=False)
