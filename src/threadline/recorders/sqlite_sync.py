"""The SQLite side of the sync ledger (:mod:`threadline.recorders.sync_state`).

Part of the SQLite backend, split from :mod:`threadline.recorders.sqlite` by
concern; that module owns connections and transactions and calls these
functions inside them (``append`` and ``rebuild`` are its own, passed in).

``sync_threads`` holds one row per thread that has synced (or tried to):
``synced_v``, the newest known server version, the failures and back-off,
and the conflict-merged mark. A thread without a row has synced nothing.
``sync_feeds`` holds each server's change-feed cursor, written in the
transaction of the pull it covers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import orjson

from threadline.deltas import Delta
from threadline.errors import InvalidDelta, ThreadlineError, ThreadNotFound, VersionConflict
from threadline.ids import now_ms
from threadline.model import ThreadHead
from threadline.recorders import sqlite_search
from threadline.recorders.sync_state import (
    PendingDelete,
    PulledThread,
    PullOutcome,
    SyncFailure,
    SyncState,
    SyncUpdate,
    ThreadKind,
)

Append = Callable[[sqlite3.Connection, str, int, Sequence[Delta], list[bytes]], ThreadHead]
Rebuild = Callable[[sqlite3.Connection, str], ThreadHead | None]
Delete = Callable[[sqlite3.Connection, str], bool]

_STATE = """
SELECT t.id, t.v, COALESCE(s.synced_v, 0), COALESCE(s.remote_v, 0),
       json_extract(CAST(t.head AS TEXT), '$.parent_thread_id'),
       json_extract(CAST(t.head AS TEXT), '$.origin_thread_id'),
       (SELECT d.at FROM deltas d WHERE d.tid = t.tid AND d.v = COALESCE(s.synced_v, 0) + 1),
       COALESCE(s.failures, 0), s.next_attempt, s.error, s.stuck_v, s.merged_at,
       CASE WHEN s.conflict_v >= t.v THEN s.conflict END, COALESCE(s.files_synced, 0)
FROM {source} LEFT JOIN sync_threads s ON s.thread_id = t.id
"""

_PENDING = (
    " WHERE t.v > COALESCE(s.synced_v, 0) OR COALESCE(s.remote_v, 0) > COALESCE(s.synced_v, 0)"
)


def _state(row: tuple[object, ...]) -> SyncState:
    thread_id, v, synced, remote, parent, origin, since, failures, nxt, error, stuck = row[:11]
    merged, conflict, files = row[11:14]
    kind: ThreadKind = "subagent" if parent is not None else "summary" if origin else "main"
    return SyncState(
        thread_id=str(thread_id),
        local_v=int(v),  # type: ignore[call-overload]
        synced_v=int(synced),  # type: ignore[call-overload]
        remote_v=int(remote),  # type: ignore[call-overload]
        kind=kind,
        pending_since=None if since is None else int(since),  # type: ignore[call-overload]
        failures=int(failures),  # type: ignore[call-overload]
        next_attempt=None if nxt is None else int(nxt),  # type: ignore[call-overload]
        error=None if error is None else str(error),
        stuck_v=None if stuck is None else int(stuck),  # type: ignore[call-overload]
        merged_at=None if merged is None else int(merged),  # type: ignore[call-overload]
        conflict=None if conflict is None else str(conflict),
        files_synced=int(files),  # type: ignore[call-overload]
    )


def pending(conn: sqlite3.Connection) -> list[SyncState]:
    rows = conn.execute(_STATE.format(source="threads t") + _PENDING).fetchall()
    return [_state(row) for row in rows]


def file_backlog(conn: sqlite3.Connection) -> list[SyncState]:
    backlog = (
        " WHERE s.synced_v > 0 AND EXISTS (SELECT 1 FROM file_changes f"
        " WHERE f.thread_id = t.id AND f.seq > s.files_synced)"
    )
    rows = conn.execute(_STATE.format(source="threads t") + backlog).fetchall()
    return [_state(row) for row in rows]


def states(conn: sqlite3.Connection, thread_ids: Sequence[str] | None) -> dict[str, SyncState]:
    if thread_ids is None:
        rows = conn.execute(_STATE.format(source="threads t")).fetchall()
    else:
        source = "(SELECT DISTINCT value AS id FROM json_each(?)) j JOIN threads t ON t.id = j.id"
        ids = orjson.dumps(list(thread_ids)).decode()
        rows = conn.execute(_STATE.format(source=source), (ids,)).fetchall()
    found = [_state(row) for row in rows]
    return {state.thread_id: state for state in found}


def cursor(conn: sqlite3.Connection, remote: str) -> int | None:
    row = conn.execute("SELECT cursor FROM sync_feeds WHERE remote = ?", (remote,)).fetchone()
    return None if row is None else int(row[0])


def forget(conn: sqlite3.Connection, thread_id: str) -> None:
    """Drop a thread's row (in the transaction that deletes the thread)."""
    conn.execute("DELETE FROM sync_threads WHERE thread_id = ?", (thread_id,))


def tombstone(conn: sqlite3.Connection, thread_id: str) -> None:
    """Before a local delete of ``thread_id`` (same transaction): if the server
    has some of its versions, remember the delete, to push it
    (:class:`~threadline.recorders.sync_state.PendingDelete`)."""
    conn.execute(
        "INSERT OR REPLACE INTO sync_deletes (thread_id, seen_v, at) "
        "SELECT thread_id, synced_v, ? FROM sync_threads WHERE thread_id = ? AND synced_v > 0",
        (now_ms(), thread_id),
    )


def deletes(conn: sqlite3.Connection) -> list[PendingDelete]:
    rows = conn.execute(
        "SELECT thread_id, seen_v, at, failures, next_attempt, error FROM sync_deletes "
        "ORDER BY at, thread_id"
    ).fetchall()
    return [PendingDelete(*row) for row in rows]


def settle_delete(conn: sqlite3.Connection, thread_id: str, failure: SyncFailure | None) -> None:
    if failure is None:
        conn.execute("DELETE FROM sync_deletes WHERE thread_id = ?", (thread_id,))
        return
    conn.execute(
        "UPDATE sync_deletes SET failures = ?, next_attempt = ?, error = ? WHERE thread_id = ?",
        (failure.failures, failure.next_attempt, failure.error, thread_id),
    )


def _deleting(conn: sqlite3.Connection, thread_id: str) -> bool:
    found = conn.execute("SELECT 1 FROM sync_deletes WHERE thread_id = ?", (thread_id,))
    return found.fetchone() is not None


def update(conn: sqlite3.Connection, change: SyncUpdate) -> None:
    conn.execute(
        "INSERT INTO sync_threads (thread_id) VALUES (?) ON CONFLICT (thread_id) DO NOTHING",
        (change.thread_id,),
    )
    sets: list[str] = []
    values: list[object] = []
    if change.reset:
        sets.append("synced_v = 0, remote_v = 0, files_synced = 0")
    if change.synced_v is not None:
        sets.append("synced_v = ?")
        values.append(change.synced_v)
    if change.remote_v is not None:
        sets.append("remote_v = MAX(remote_v, ?)")
        values.append(change.remote_v)
    if change.succeeded:
        sets.append("failures = 0, next_attempt = NULL, error = NULL, stuck_v = NULL")
    if change.failure is not None:
        failure = change.failure
        sets.append("failures = ?, next_attempt = ?, error = ?, stuck_v = ?")
        values += [failure.failures, failure.next_attempt, failure.error, failure.stuck_v]
    if change.merged is not None:
        sets.append("merged_at = ?")
        values.append(now_ms() if change.merged else None)
    if change.files_synced is not None:
        sets.append("files_synced = ?")
        values.append(change.files_synced)
    if change.conflict is not None:
        sets.append("conflict = ?, conflict_v = (SELECT v FROM threads WHERE id = thread_id)")
        values.append(change.conflict)
    if sets:
        conn.execute(
            f"UPDATE sync_threads SET {', '.join(sets)} WHERE thread_id = ?",
            (*values, change.thread_id),
        )
    # The server has at least what is synced.
    conn.execute(
        "UPDATE sync_threads SET remote_v = synced_v WHERE thread_id = ? AND remote_v < synced_v",
        (change.thread_id,),
    )


def record_pull(
    conn: sqlite3.Connection,
    append: Append,
    delete: Delete,
    remote: str,
    feed_cursor: int | None,
    pulled: Sequence[tuple[PulledThread, list[bytes]]],
) -> list[PullOutcome]:
    outcomes: list[PullOutcome] = []
    for item, bodies in pulled:
        outcomes.append(_pull_one(conn, append, delete, item, bodies))
    if feed_cursor is not None:
        conn.execute(
            "INSERT OR REPLACE INTO sync_feeds (remote, cursor, at) VALUES (?, ?, ?)",
            (remote, feed_cursor, now_ms()),
        )
    return outcomes


def _pull_one(
    conn: sqlite3.Connection,
    append: Append,
    delete: Delete,
    item: PulledThread,
    bodies: list[bytes],
) -> PullOutcome:
    thread_id = item.thread_id
    if item.deleted:
        row = conn.execute("SELECT v FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None:
            forget(conn, thread_id)
            return "deleted"
        synced = conn.execute(
            "SELECT synced_v FROM sync_threads WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        if synced is not None and synced[0] == row[0]:
            delete(conn, thread_id)  # forgets the row too
            return "deleted"
        # Local changes the server never had: keep the thread, push it again whole.
        kept = "deleted on the server while changed here: kept and pushed again"
        update(conn, SyncUpdate(thread_id, reset=True, conflict=kept))
        return "conflict"
    if not item.deltas:
        update(conn, SyncUpdate(thread_id, remote_v=item.remote_v))
        return "noted"
    if item.base == 0 and _deleting(conn, thread_id):
        if item.conflict is None:
            return "noted"  # deleted here meanwhile: the push of the delete decides
        settle_delete(conn, thread_id, None)
    conn.execute("SAVEPOINT pull")
    try:
        head = append(conn, thread_id, item.base, item.deltas, bodies)
    except ThreadlineError:
        # A local write won the race (or the delta does not apply here): the
        # push phase merges or reports it.
        conn.execute("ROLLBACK TO pull")
        conn.execute("RELEASE pull")
        update(conn, SyncUpdate(thread_id, remote_v=item.remote_v))
        return "noted"
    conn.execute("RELEASE pull")
    # Level with the server: an earlier failure is over.
    level = SyncUpdate(
        thread_id,
        synced_v=head.v,
        remote_v=max(head.v, item.remote_v),
        succeeded=True,
        conflict=item.conflict,
    )
    update(conn, level)
    return "applied"


def rebase(
    conn: sqlite3.Connection,
    append: Append,
    rebuild: Rebuild,
    thread_id: str,
    expected_version: int,
    keep: int,
    deltas: Sequence[Delta],
    bodies: list[bytes],
    change: SyncUpdate,
) -> ThreadHead:
    row = conn.execute("SELECT tid, v FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if row is None:
        raise ThreadNotFound(thread_id)
    if row[1] != expected_version:
        raise VersionConflict(thread_id, expected_version, row[1])
    if not 1 <= keep <= expected_version:
        raise InvalidDelta(
            f"Thread {thread_id} shares no version {keep} with the server to merge from; "
            "its creation differs there"
        )
    # The search index reads a row's text from its delta: out before the deltas go.
    sqlite_search.unindex_thread(conn, row[0])
    conn.execute("DELETE FROM deltas WHERE tid = ? AND v > ?", (row[0], keep))
    rebuild(conn, thread_id)
    head = append(conn, thread_id, keep, deltas, bodies)
    update(conn, change)
    return head
