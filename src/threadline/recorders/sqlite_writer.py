"""The SQLite plumbing under :class:`~threadline.recorders.sqlite.SqliteRecorder`:
connections, migrations, the single writer thread with group commit, the
reader pool, and writer leases.

All writes of a process go through one writer thread, which commits every
write queued while the previous commit was syncing in one transaction
(group commit). Reads use connections of their own from a small pool and
see one consistent snapshot each. Writer leases are ``flock`` locks on files
beside the database: the operating system drops them when the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from threadline.errors import (
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    StoreFull,
    ThreadlineError,
    WriterBusy,
)
from threadline.ids import now_ms
from threadline.recorders import sqlite_bodies, sqlite_search
from threadline.recorders import sqlite_schema as sql
from threadline.recorders.base import WriterLease

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_R = TypeVar("_R")
# A commit writes every page it touched to the WAL whole: an append touches ~15
# (log, projection, usage, head, change feed, search index), so 8 KB pages wrote
# and synced 123 KB per single append, 4 KB pages half that, for ~13% faster
# single appends. Since delta bodies are compressed, the space rows leave unused
# at the end of a page hardly shows: bytes on disk per message were 0.98 of its
# JSON with 8 KB pages and 0.99 with 4 KB (bench/foundation.py, benchmarks 1
# and 4; docs/performance.md). A database keeps the page size it was made with.
_PAGE_SIZE = 4096
WAL_SIZE_LIMIT = 1024 * 1024
"""What the WAL file is cut back to after each checkpoint (bytes); a checkpoint
runs once a commit leaves the WAL past as many bytes (issue 16: with SQLite's
4 MB default, a small or nearly full disk filled up with WAL that a checkpoint
then had no room to fold into the database, and appends stayed blocked after
space was freed)."""


@contextlib.contextmanager
def translated(location: str) -> Iterator[None]:
    """The one place where sqlite3 errors become threadline errors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in text:
            raise StoreFull(location, text) from exc
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
        conn.execute(sql.JOURNAL_SIZE_LIMIT.format(size=WAL_SIZE_LIMIT))
        conn.execute(sql.WAL_AUTOCHECKPOINT.format(pages=WAL_SIZE_LIMIT // _PAGE_SIZE))
        conn.execute(sql.FOREIGN_KEYS)
        conn.execute(sql.TRUSTED_SCHEMA)
        sqlite_bodies.register_functions(conn)
        sqlite_search.register_functions(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _room_to_fold(path: str) -> bool:
    """Whether the disk holding ``path`` has room to fold its WAL back in: the
    database file grows to the size the WAL's last commit frame gives it.

    The WAL file is a 32-byte header (page size at 8, salts at 16) and frames of
    a 24-byte header (database size in pages after a commit at 4, the salts at
    8) and a page; frames whose salts differ from the header's are left over
    from before the WAL was last restarted and do not count."""
    try:
        with open(path + "-wal", "rb") as wal:
            header = wal.read(32)
            if len(header) < 32:
                return True
            page_size, salts = int.from_bytes(header[8:12], "big"), header[16:24]
            pages, offset = 0, 32
            while True:
                wal.seek(offset)
                frame = wal.read(24)
                if len(frame) < 24 or frame[8:16] != salts:
                    break
                pages = int.from_bytes(frame[4:8], "big") or pages
                offset += 24 + page_size
        growth = pages * page_size - os.path.getsize(path)
        return growth <= 0 or shutil.disk_usage(os.path.dirname(path) or ".").free > growth
    except OSError:
        return False


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


class _FlockLease(WriterLease):
    def __init__(self, recorder: SqliteEngine, thread_id: str, fd: int) -> None:
        self._recorder = recorder
        self.thread_id = thread_id
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
            self._recorder._leases.discard(self.thread_id)


class _MemoryLease(WriterLease):
    def __init__(self, recorder: SqliteEngine, thread_id: str) -> None:
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


class SqliteEngine:
    """One SQLite database: its writer thread, its readers and its leases.

    :meth:`_submit` runs a function with a connection, on the writer thread
    (``write=True``, inside the group's transaction) or on a reader.
    """

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
        # Set when a write found the disk full and the WAL could not be folded
        # back then: the next write tries again first (see _give_back_wal).
        self._wal_held = False
        with translated(self._path):
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
        if job.future.cancelled():
            return  # the caller gave up before the job started
        try:
            with translated(self._path):
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
        if self._wal_held:
            self._give_back_wal(conn)
        try:
            with translated(self._path):
                results = self._run_batch(conn, batch, isolated=False)
                if results is None:  # a job failed: again, each in a savepoint
                    results = self._run_batch(conn, batch, isolated=True)
                assert results is not None
        except BaseException as exc:
            if isinstance(exc, StoreFull):
                self._give_back_wal(conn)
            _hand_over([(job, None, exc) for job in batch])
            return
        _hand_over(results)

    def _give_back_wal(self, conn: sqlite3.Connection) -> None:
        """After a write failed on a full disk: fold the WAL into the database and
        truncate it, so that the space its frames took is free again.

        Folding needs room: the database file grows by the pages only the WAL
        holds, and a fold that runs out of room half way has spent what room
        there was on a database file that grew for nothing. So while the WAL
        is held, automatic checkpoints are off and a fold is tried — before
        each write — only once the disk has room for it; until then small
        writes still go to the WAL. Once space is freed, the first write that
        finds room gives the whole WAL back."""
        if self._in_memory or not _room_to_fold(self._path):
            self._hold_wal(conn)
            return
        try:
            busy, _, _ = conn.execute(sql.CHECKPOINT).fetchone()
        except sqlite3.Error:
            busy = 1
        if busy:
            self._hold_wal(conn)
            return
        self._wal_held = False
        with contextlib.suppress(sqlite3.Error):
            conn.execute(sql.WAL_AUTOCHECKPOINT.format(pages=WAL_SIZE_LIMIT // _PAGE_SIZE))

    def _hold_wal(self, conn: sqlite3.Connection) -> None:
        self._wal_held = True
        with contextlib.suppress(sqlite3.Error):
            conn.execute(sql.WAL_AUTOCHECKPOINT.format(pages=0))

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
        with translated(self._path):
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

    _statement_trace: Callable[[str], None] | None = None

    def set_statement_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback`` with every SQL statement any connection of this
        recorder runs (``None`` stops it): how tests count queries. Statements
        run on the recorder's own threads, so ``callback`` must be thread-safe."""
        self._statement_trace = callback
        with self._read_conns_lock:
            for conn in [self._writer_conn, *self._read_conns]:
                conn.set_trace_callback(callback)
