"""The SQLite side of archive and restore, and the inspection of derived rows.

Part of the SQLite backend, split from :mod:`threadline.recorders.sqlite` by
concern; that module owns connections and transactions and calls these
functions inside them (its ``append`` is passed in). The SQL is in
:mod:`threadline.recorders.sqlite_schema`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from threadline import planner
from threadline.deltas import Delta
from threadline.errors import ThreadExists, ThreadNotFound, VersionConflict
from threadline.model import ArchivedThread, LifecycleOp, ThreadHead
from threadline.recorders import sqlite_relations, sqlite_search
from threadline.recorders import sqlite_schema as sql
from threadline.recorders.base import RecordedDelta

Append = Callable[[sqlite3.Connection, str, int, Sequence[Delta], list[bytes]], ThreadHead]


def begin(conn: sqlite3.Connection, op: LifecycleOp, body: bytes) -> None:
    conn.execute(sql.PUT_LIFECYCLE_OP, (op.id, op.started, body))


def end(conn: sqlite3.Connection, op_id: str) -> bool:
    return conn.execute(sql.DELETE_LIFECYCLE_OP, (op_id,)).rowcount > 0


def pending(conn: sqlite3.Connection) -> list[LifecycleOp]:
    rows = conn.execute(sql.LIFECYCLE_OPS).fetchall()
    return [LifecycleOp.model_validate_json(body) for (body,) in rows]


def commit_archive(
    conn: sqlite3.Connection, op_id: str, entries: Sequence[tuple[ArchivedThread, bytes]]
) -> None:
    for entry, body in entries:
        row = conn.execute(sql.THREAD_V, (entry.id,)).fetchone()
        if row is None:
            raise ThreadNotFound(entry.id)
        if row[0] != entry.object.v:
            raise VersionConflict(entry.id, entry.object.v, row[0])
        drop_archived(conn, entry.id)
        conn.execute(sql.ADD_ARCHIVED, (entry.id, entry.head.last_activity, body))
    conn.execute(sql.DELETE_LIFECYCLE_OP, (op_id,))


def drop_archived(conn: sqlite3.Connection, thread_id: str) -> None:
    """The recorder's delete for a thread going to cold storage: its log, head,
    messages and the rows the planner derived from them (search index, links,
    usage) go, and the restore's plan makes them again; its file log stays (it
    is not in the archive object), and no tombstone enters the change feed
    (the thread is not gone)."""
    row = conn.execute(sql.THREAD_TID, (thread_id,)).fetchone()
    sqlite_search.unindex_thread(conn, row[0])
    sqlite_relations.forget(conn, row[0])
    conn.execute(sql.DELETE_MESSAGES, (row[0],))
    conn.execute(sql.DELETE_DELTAS, (row[0],))
    conn.execute(sql.DELETE_THREAD, (row[0],))


def commit_restore(
    conn: sqlite3.Connection,
    append: Append,
    logs: Sequence[tuple[str, Sequence[RecordedDelta], list[bytes]]],
    op: LifecycleOp,
    op_body: bytes,
) -> list[ThreadHead]:
    heads: list[ThreadHead] = []
    for thread_id, log, bodies in logs:
        if conn.execute(sql.THREAD_TID, (thread_id,)).fetchone():
            raise ThreadExists(thread_id)
        row = conn.execute(sql.ARCHIVED, (thread_id,)).fetchone()
        if row is None:
            raise ThreadNotFound(thread_id)
        archived_v = ArchivedThread.model_validate_json(row[0]).object.v
        if archived_v != len(log):
            raise VersionConflict(thread_id, archived_v, len(log))
        conn.execute(sql.DELETE_ARCHIVED, (thread_id,))
        # Appended whole (the planner's plan of the log makes every derived
        # row); then the log gets its original commit times back.
        heads.append(append(conn, thread_id, 0, [r.delta for r in log], bodies))
        conn.executemany(sql.RESTORE_COMMIT_TIME, [(r.at, r.v, thread_id) for r in log])
    conn.execute(sql.PUT_LIFECYCLE_OP, (op.id, op.started, op_body))
    return heads


def archived(conn: sqlite3.Connection, thread_id: str) -> ArchivedThread | None:
    row = conn.execute(sql.ARCHIVED, (thread_id,)).fetchone()
    return None if row is None else ArchivedThread.model_validate_json(row[0])


def list_archived(
    conn: sqlite3.Connection, limit: int, after: tuple[int, str] | None
) -> list[ArchivedThread]:
    if after is None:
        rows = conn.execute(sql.LIST_ARCHIVED, (limit,)).fetchall()
    else:
        rows = conn.execute(sql.LIST_ARCHIVED_AFTER, (after[0], after[1], limit)).fetchall()
    return [ArchivedThread.model_validate_json(body) for (body,) in rows]


# -- inspection ------------------------------------------------------------------------


def derived_rows(conn: sqlite3.Connection) -> planner.DerivedRows:
    """Every derived row, in the form all backends report (for tests)."""

    def by_tid(query: str) -> dict[int, list[tuple[Any, ...]]]:
        found: dict[int, list[tuple[Any, ...]]] = {}
        for row in conn.execute(query):
            found.setdefault(row[0], []).append(tuple(row[1:]))
        return found

    positions, usage = by_tid(sql.INSPECT_POSITIONS), by_tid(sql.INSPECT_USAGE)
    links, documents = by_tid(sql.INSPECT_LINKS), by_tid(sql.INSPECT_DOCUMENTS)
    titles = dict(conn.execute(sql.INSPECT_TITLES).fetchall())
    threads: dict[str, planner.ThreadRows] = {}
    for tid, thread_id, head in conn.execute(sql.INSPECT_THREADS).fetchall():
        threads[thread_id] = planner.ThreadRows(
            head=ThreadHead.model_validate_json(head),
            positions=tuple((int(p), int(v)) for p, v in positions.get(tid, [])),
            usage=tuple(planner.UsageRow(*row) for row in usage.get(tid, [])),
            links=frozenset(planner.LinkRow(*row) for row in links.get(tid, [])),
            documents=tuple(
                (int(v), planner.document_tokens(str(c or ""), str(t or "")))
                for v, c, t in documents.get(tid, [])
            ),
            title_tokens=planner.title_tokens(titles.get(tid)),
        )
    feed = tuple((t, v, bool(d)) for t, v, d in conn.execute(sql.INSPECT_FEED))
    return planner.DerivedRows(threads, feed)
