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
after its transaction committed. The writer thread, group commit, reader
pool and writer leases are in recorders/sqlite_writer.py (:class:`SqliteEngine`);
this module plans nothing itself: it executes the planner's plans.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence

from threadline import planner
from threadline.deltas import (
    Delta,
    delta_to_json,
)
from threadline.errors import (
    InvalidDelta,
    ThreadlineError,
    VersionConflict,
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
    whole_log_thread_id,
)
from threadline.recorders.sqlite_writer import SqliteEngine, Synchronous
from threadline.recorders.sync_state import (
    LocalRecorder,
    PendingDelete,
    PulledThread,
    PullOutcome,
    SyncFailure,
    SyncState,
    SyncUpdate,
)
from threadline.search import SearchHit, parse_query

_WRITTEN_HEADS = 1024  # heads remembered by the writer (see _written_head)


def _publish(conn: sqlite3.Connection, thread_id: str, v: int, *, deleted: bool, at: int) -> None:
    """Move ``thread_id``'s row of the change feed to a new number (see migration 6)."""
    conn.execute(sql.PUBLISH, (thread_id, v, int(deleted), at))


def _is_archived(conn: sqlite3.Connection, thread_id: str) -> bool:
    found = conn.execute(sql.IS_ARCHIVED, (thread_id,))
    return found.fetchone() is not None


def _head_from_row(body: bytes) -> ThreadHead:
    return ThreadHead.model_validate_json(body)


def _readable(body: bytes) -> bool:
    try:
        _head_from_row(body)
    except ValueError:  # pydantic's ValidationError, for bytes that are no head
        return False
    return True


class SqliteRecorder(SqliteEngine, LocalRecorder):
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
        super().__init__(
            path,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            read_threads=read_threads,
            max_batch=max_batch,
        )
        # The last head each thread was given by _append, as (JSON, parsed).
        self._written_heads: dict[str, tuple[bytes, ThreadHead]] = {}

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
        if plan.amended:
            for row in plan.amended:
                sqlite_search.unindex_at(conn, tid, row.pos)
            conn.executemany(
                sql.AMEND_MESSAGE, [(seqs[m.v - first_v], tid, m.pos) for m in plan.amended]
            )
            sqlite_search.index_messages(conn, tid, plan.amended, seqs, first_v)
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

    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        return await self._submit(
            lambda conn: self._delete_local(conn, thread_id, version), write=True
        )

    @classmethod
    def _delete_local(cls, conn: sqlite3.Connection, thread_id: str, version: int | None) -> bool:
        """A delete made here: checked against ``version``, and remembered in the
        sync ledger for the server (:func:`sqlite_sync.tombstone`)."""
        row = conn.execute(sql.THREAD_V, (thread_id,)).fetchone()
        if row is None:
            return False
        if version is not None and row[0] != version:
            raise VersionConflict(thread_id, version, row[0])
        sqlite_sync.tombstone(conn, thread_id)
        return cls._delete_published(conn, thread_id)

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

    async def unreadable_heads(self) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            return [tid for tid, body in conn.execute(sql.ALL_HEADS) if not _readable(body)]

        return await self._submit(read, write=False)

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

    async def sync_file_backlog(self) -> list[SyncState]:
        return await self._submit(sqlite_sync.file_backlog, write=False)

    async def sync_deletes(self) -> list[PendingDelete]:
        return await self._submit(sqlite_sync.deletes, write=False)

    async def settle_delete(self, thread_id: str, failure: SyncFailure | None = None) -> None:
        await self._submit(
            lambda conn: sqlite_sync.settle_delete(conn, thread_id, failure), write=True
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
            lambda conn: [self._delete_local(conn, thread_id, None) for thread_id in ids],
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

    async def reprice_usage(
        self, price: Callable[[planner.UsageRow], planner.UsageRow], *, never_priced: bool = False
    ) -> int:
        return await self._submit(
            lambda conn: sqlite_relations.reprice(conn, price, never_priced), write=True
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

    async def copy_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        copied, stored = list(changes), list(contents)
        return await self._submit(
            lambda conn: sqlite_files.copy(conn, thread_id, after, copied, stored), write=True
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
