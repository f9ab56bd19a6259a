"""The SQLite side of file tracking: the file change log, its contents, the rollback journal.

Part of the SQLite backend, split from :mod:`threadline.recorders.sqlite` by
concern; that module owns connections and transactions and calls these
functions inside them (writes on its single writer thread).

- ``file_contents``: one row per distinct content, keyed by its SHA-256, a
  zstd frame (a delta against ``base`` when it has one; see
  :mod:`threadline.files.contents`).
- ``file_changes``: the file log, numbered ``seq`` per thread. Rows name
  threads by id, not by row, so a thread's file log survives its archive
  and restore; it goes when the thread is deleted. ``before_unknown`` /
  ``after_unknown`` (migration 12) mark a side whose content is not recorded
  (no hash, size or mode: :class:`~threadline.files.log.UnknownContent`).
- ``file_reverts``: which change reverts which, for the walk from a change
  to every change that reverts it (and reverts those, ...).
- ``file_rollbacks``: the rollback journal.

Contents go when no change and no other content refers to them any more:
:func:`forget` collects them when a thread is deleted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from threadline.errors import (
    ContentMissing,
    InvalidFileChange,
    OperationNotFound,
    ThreadNotFound,
    VersionConflict,
)
from threadline.files.log import (
    ChangeRow,
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
    change_row,
    change_type,
    check_copy,
    content_hashes,
    copied_row,
    stored_state,
)
from threadline.ids import now_ms

# Schema migration 2 of the SQLite recorder. No semicolon may appear but
# between statements (the migration runner splits on them).
MIGRATION = """
CREATE TABLE file_contents (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    base TEXT,
    depth INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX file_contents_by_base ON file_contents (base) WHERE base IS NOT NULL;
CREATE TABLE file_changes (
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    operation_id TEXT NOT NULL,
    path TEXT NOT NULL,
    before_hash TEXT,
    before_size INTEGER,
    before_mode INTEGER,
    after_hash TEXT,
    after_size INTEGER,
    after_mode INTEGER,
    dirs BLOB,
    reverts BLOB,
    thread_version INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
CREATE INDEX file_changes_by_operation ON file_changes (thread_id, operation_id, seq);
CREATE INDEX file_changes_by_path ON file_changes (thread_id, path, seq);
CREATE INDEX file_changes_by_version ON file_changes (thread_id, thread_version, seq);
CREATE INDEX file_changes_by_before ON file_changes (before_hash) WHERE before_hash IS NOT NULL;
CREATE INDEX file_changes_by_after ON file_changes (after_hash) WHERE after_hash IS NOT NULL;
CREATE TABLE file_reverts (
    thread_id TEXT NOT NULL,
    reverted_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (thread_id, reverted_seq, seq)
) WITHOUT ROWID;
CREATE TABLE file_rollbacks (
    thread_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    undoes_operation TEXT,
    after_message TEXT,
    started INTEGER NOT NULL,
    finished INTEGER,
    PRIMARY KEY (thread_id, operation_id)
) WITHOUT ROWID;
"""

# Schema migration 12 of the SQLite recorder: a side of a change whose content
# is not recorded (files.log.UnknownContent; an import's edit of a file its
# transcript never showed). Rows written before it hold known contents only.
UNKNOWN_CONTENT_MIGRATION = """
ALTER TABLE file_changes ADD COLUMN before_unknown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE file_changes ADD COLUMN after_unknown INTEGER NOT NULL DEFAULT 0
"""

_CHANGE_COLUMNS = (
    "thread_id, seq, operation_id, path, before_hash, before_size, before_mode, "
    "after_hash, after_size, after_mode, dirs, reverts, thread_version, at, "
    "before_unknown, after_unknown"
)
_CHANGE_VALUES = ", ".join("?" * 16)

_ChangeRow = ChangeRow


def _change_of(row: _ChangeRow) -> FileChange:
    """A stored row as a change; what the store wrote is not validated again."""
    before = stored_state(row[4], row[5], row[6], row[14])
    after = stored_state(row[7], row[8], row[9], row[15])
    return FileChange.model_construct(
        thread_id=row[0],
        seq=row[1],
        operation_id=row[2],
        path=row[3],
        type=change_type(before, after),
        before=before,
        after=after,
        dirs=tuple(orjson.loads(row[10])) if row[10] else (),
        reverts=tuple(orjson.loads(row[11])) if row[11] else (),
        thread_version=row[12],
        at=row[13],
    )


def _stored(conn: sqlite3.Connection, content_hash: str) -> bool:
    found = conn.execute("SELECT 1 FROM file_contents WHERE hash = ?", (content_hash,))
    return found.fetchone() is not None


def record(
    conn: sqlite3.Connection,
    thread_id: str,
    changes: Sequence[NewFileChange],
    contents: Sequence[StoredContent],
    rollback: NewRollback | None,
) -> list[FileChange]:
    row = conn.execute("SELECT v FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if row is None:
        raise ThreadNotFound(thread_id)
    version: int = row[0]
    conn.executemany(
        "INSERT OR IGNORE INTO file_contents (hash, size, base, depth, data) "
        "VALUES (?, ?, ?, ?, ?)",
        [(c.hash, c.size, c.base, c.depth, c.data) for c in contents],
    )
    needed = {c.base for c in contents if c.base is not None}
    for change in changes:
        needed.update(content_hashes(change))
    missing = sorted(h for h in needed if not _stored(conn, h))
    if missing:
        raise ContentMissing(thread_id, missing)
    if rollback is not None:
        exists = conn.execute(
            "SELECT 1 FROM file_rollbacks WHERE thread_id = ? AND operation_id = ?",
            (thread_id, rollback.operation_id),
        ).fetchone()
        if exists is not None:
            raise InvalidFileChange(
                thread_id, rollback.operation_id, "a rollback with this id is already recorded"
            )
        conn.execute(
            "INSERT INTO file_rollbacks (thread_id, operation_id, undoes_operation, "
            "after_message, started, finished) VALUES (?, ?, ?, ?, ?, NULL)",
            (
                thread_id,
                rollback.operation_id,
                rollback.undoes_operation,
                rollback.after_message,
                now_ms(),
            ),
        )
    last = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM file_changes WHERE thread_id = ?", (thread_id,)
    ).fetchone()[0]
    at = now_ms()
    rows = [
        change_row(thread_id, number, change, version, at)
        for number, change in enumerate(changes, start=last + 1)
    ]
    conn.executemany(
        f"INSERT INTO file_changes ({_CHANGE_COLUMNS}) VALUES ({_CHANGE_VALUES})", rows
    )
    conn.executemany(
        "INSERT INTO file_reverts (thread_id, reverted_seq, seq) VALUES (?, ?, ?)",
        [
            (thread_id, reverted, row[1])
            for row, change in zip(rows, changes, strict=True)
            for reverted in change.reverts
        ],
    )
    return [_change_of(row) for row in rows]


def copy(
    conn: sqlite3.Connection,
    thread_id: str,
    after: int,
    changes: Sequence[FileChange],
    contents: Sequence[StoredContent],
) -> int:
    if conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
        raise ThreadNotFound(thread_id)
    last = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM file_changes WHERE thread_id = ?", (thread_id,)
    ).fetchone()[0]
    if last != after:
        raise VersionConflict(thread_id, after, last)
    check_copy(thread_id, after, changes)
    conn.executemany(
        "INSERT OR IGNORE INTO file_contents (hash, size, base, depth, data) "
        "VALUES (?, ?, ?, ?, ?)",
        [(c.hash, c.size, c.base, c.depth, c.data) for c in contents],
    )
    needed = {c.base for c in contents if c.base is not None}
    for change in changes:
        needed.update(content_hashes(change))
    missing = sorted(h for h in needed if not _stored(conn, h))
    if missing:
        raise ContentMissing(thread_id, missing)
    rows = [copied_row(change) for change in changes]
    conn.executemany(
        f"INSERT INTO file_changes ({_CHANGE_COLUMNS}) VALUES ({_CHANGE_VALUES})", rows
    )
    conn.executemany(
        "INSERT INTO file_reverts (thread_id, reverted_seq, seq) VALUES (?, ?, ?)",
        [(thread_id, reverted, c.seq) for c in changes for reverted in c.reverts],
    )
    return after + len(changes)


def changes(
    conn: sqlite3.Connection,
    thread_id: str,
    operation_id: str | None,
    since_version: int | None,
) -> list[FileChange]:
    query = f"SELECT {_CHANGE_COLUMNS} FROM file_changes WHERE thread_id = ?"
    args: list[object] = [thread_id]
    if operation_id is not None:
        query += " AND operation_id = ?"
        args.append(operation_id)
    if since_version is not None:
        query += " AND thread_version >= ?"
        args.append(since_version)
    return [_change_of(row) for row in conn.execute(query + " ORDER BY seq", args)]


def reverts_of(conn: sqlite3.Connection, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
    rows = conn.execute(
        f"""
        WITH RECURSIVE closure(seq) AS (
            SELECT seq FROM file_reverts
            WHERE thread_id = :thread AND reverted_seq IN (SELECT value FROM json_each(:seqs))
            UNION
            SELECT r.seq FROM file_reverts r JOIN closure c ON r.reverted_seq = c.seq
            WHERE r.thread_id = :thread
        )
        SELECT {_CHANGE_COLUMNS} FROM file_changes
        WHERE thread_id = :thread AND seq IN (SELECT seq FROM closure)
        ORDER BY seq
        """,
        {"thread": thread_id, "seqs": orjson.dumps(list(seqs)).decode()},
    )
    return [_change_of(row) for row in rows]


def latest(conn: sqlite3.Connection, thread_id: str, paths: Sequence[str]) -> dict[str, FileChange]:
    found: dict[str, FileChange] = {}
    for path in paths:
        row = conn.execute(
            f"SELECT {_CHANGE_COLUMNS} FROM file_changes WHERE thread_id = ? AND path = ? "
            "ORDER BY seq DESC LIMIT 1",
            (thread_id, path),
        ).fetchone()
        if row is not None:
            found[path] = _change_of(row)
    return found


def chain(conn: sqlite3.Connection, content_hash: str) -> list[StoredContent]:
    found: list[StoredContent] = []
    wanted: str | None = content_hash
    while wanted is not None:
        row = conn.execute(
            "SELECT hash, size, base, depth, data FROM file_contents WHERE hash = ?", (wanted,)
        ).fetchone()
        if row is None:
            break  # the caller finds the chain ends with a base it lacks
        found.append(StoredContent(row[0], row[1], row[2], row[3], row[4]))
        wanted = row[2]
    return found


def depths(conn: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for content_hash in hashes:
        row = conn.execute(
            "SELECT depth FROM file_contents WHERE hash = ?", (content_hash,)
        ).fetchone()
        if row is not None:
            found[content_hash] = row[0]
    return found


def usage(conn: sqlite3.Connection) -> ContentUsage:
    count, stored, raw = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(data)), 0), COALESCE(SUM(size), 0) FROM file_contents"
    ).fetchone()
    return ContentUsage(contents=count, stored_bytes=stored, raw_bytes=raw)


def rollbacks(conn: sqlite3.Connection, thread_id: str, unfinished: bool) -> list[FileRollback]:
    query = (
        "SELECT operation_id, undoes_operation, after_message, started, finished "
        "FROM file_rollbacks WHERE thread_id = ?"
    )
    if unfinished:
        query += " AND finished IS NULL"
    rows = conn.execute(query + " ORDER BY started, operation_id", (thread_id,)).fetchall()
    return [
        FileRollback(
            thread_id=thread_id,
            operation_id=row[0],
            undoes_operation=row[1],
            after_message=row[2],
            started=row[3],
            finished=row[4],
        )
        for row in rows
    ]


def finish(conn: sqlite3.Connection, thread_id: str, operation_id: str) -> None:
    updated = conn.execute(
        "UPDATE file_rollbacks SET finished = COALESCE(finished, ?) "
        "WHERE thread_id = ? AND operation_id = ?",
        (now_ms(), thread_id, operation_id),
    )
    if updated.rowcount == 0:
        raise OperationNotFound(thread_id, operation_id)


def forget(conn: sqlite3.Connection, thread_id: str) -> None:
    """Drop a deleted thread's file log and journal, and the contents nothing
    refers to any more."""
    candidates: set[str] = set()
    for before, after in conn.execute(
        "SELECT before_hash, after_hash FROM file_changes WHERE thread_id = ?", (thread_id,)
    ):
        candidates.update(h for h in (before, after) if h is not None)
    for table in ("file_changes", "file_reverts", "file_rollbacks"):
        conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
    while candidates:
        content_hash = candidates.pop()
        used = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM file_changes WHERE before_hash = :h) "
            "OR EXISTS (SELECT 1 FROM file_changes WHERE after_hash = :h) "
            "OR EXISTS (SELECT 1 FROM file_contents WHERE base = :h)",
            {"h": content_hash},
        ).fetchone()[0]
        if used:
            continue
        row = conn.execute(
            "DELETE FROM file_contents WHERE hash = ? RETURNING base", (content_hash,)
        ).fetchone()
        if row is not None and row[0] is not None:
            candidates.add(row[0])  # its base may have been kept only for it
