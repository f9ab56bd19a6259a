"""The PostgreSQL side of file tracking: file change log, contents, rollback journal.

Part of the PostgreSQL backend, split from :mod:`threadline.recorders.postgres`
by concern (the SQLite twin is :mod:`threadline.recorders.sqlite_files`, whose
docstring describes the tables). That module owns connections and
transactions and calls these functions inside them. Every row carries its
workspace: contents are shared by the threads of one workspace, never across
workspaces, so a content hash reveals nothing about another workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import orjson

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

from threadline.errors import (
    ContentMissing,
    InvalidFileChange,
    OperationNotFound,
    ThreadNotFound,
    VersionConflict,
)
from threadline.files.log import (
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

if TYPE_CHECKING:
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

# Schema migration 2 of the PostgreSQL recorder.
MIGRATION = """
CREATE TABLE file_contents (
    workspace text NOT NULL,
    hash text NOT NULL,
    size bigint NOT NULL,
    base text,
    depth integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (workspace, hash)
);
CREATE INDEX file_contents_by_base ON file_contents (workspace, base) WHERE base IS NOT NULL;
CREATE TABLE file_changes (
    workspace text NOT NULL,
    thread_id text NOT NULL,
    seq integer NOT NULL,
    operation_id text NOT NULL,
    path text NOT NULL,
    before_hash text,
    before_size bigint,
    before_mode integer,
    after_hash text,
    after_size bigint,
    after_mode integer,
    dirs bytea,
    reverts bytea,
    thread_version integer NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (workspace, thread_id, seq)
);
CREATE INDEX file_changes_by_operation ON file_changes (workspace, thread_id, operation_id, seq);
CREATE INDEX file_changes_by_path ON file_changes (workspace, thread_id, path, seq);
CREATE INDEX file_changes_by_before ON file_changes (workspace, before_hash)
    WHERE before_hash IS NOT NULL;
CREATE INDEX file_changes_by_after ON file_changes (workspace, after_hash)
    WHERE after_hash IS NOT NULL;
CREATE TABLE file_reverts (
    workspace text NOT NULL,
    thread_id text NOT NULL,
    reverted_seq integer NOT NULL,
    seq integer NOT NULL,
    PRIMARY KEY (workspace, thread_id, reverted_seq, seq)
);
CREATE TABLE file_rollbacks (
    workspace text NOT NULL,
    thread_id text NOT NULL,
    operation_id text NOT NULL,
    undoes_operation text,
    after_message text,
    started bigint NOT NULL,
    finished bigint,
    PRIMARY KEY (workspace, thread_id, operation_id)
);
"""

# Schema migration 12 of the PostgreSQL recorder (the SQLite twin's docstring
# says why): a side of a change whose content is not recorded.
UNKNOWN_CONTENT_MIGRATION = """
ALTER TABLE file_changes
    ADD COLUMN before_unknown boolean NOT NULL DEFAULT false,
    ADD COLUMN after_unknown boolean NOT NULL DEFAULT false;
"""

_COLUMNS = (
    "thread_id, seq, operation_id, path, before_hash, before_size, before_mode, "
    "after_hash, after_size, after_mode, dirs, reverts, thread_version, at, "
    "before_unknown, after_unknown"
)
_VALUES = ", ".join(f"${i}" for i in range(1, 18))  # the workspace, then a ChangeRow


def _change_of(row: Any) -> FileChange:
    """A stored row (a record or a tuple) as a change; what the store wrote is not
    validated again."""
    before = stored_state(row[4], row[5], row[6], row[14])
    after = stored_state(row[7], row[8], row[9], row[15])
    dirs, reverts = row[10], row[11]
    return FileChange.model_construct(
        thread_id=row[0],
        seq=row[1],
        operation_id=row[2],
        path=row[3],
        type=change_type(before, after),
        before=before,
        after=after,
        dirs=tuple(orjson.loads(dirs)) if isinstance(dirs, bytes) else (),
        reverts=tuple(orjson.loads(reverts)) if isinstance(reverts, bytes) else (),
        thread_version=row[12],
        at=row[13],
    )


async def record(
    conn: Conn,
    workspace: str,
    thread_id: str,
    changes: Sequence[NewFileChange],
    contents: Sequence[StoredContent],
    rollback: NewRollback | None,
) -> list[FileChange]:
    version = await conn.fetchval(
        "SELECT v FROM threads WHERE workspace = $1 AND id = $2 FOR UPDATE", workspace, thread_id
    )
    if version is None:
        raise ThreadNotFound(thread_id)
    await conn.executemany(
        "INSERT INTO file_contents (workspace, hash, size, base, depth, data) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        [(workspace, c.hash, c.size, c.base, c.depth, c.data) for c in contents],
    )
    needed = {c.base for c in contents if c.base is not None}
    for change in changes:
        needed.update(content_hashes(change))
    stored = {
        r[0]
        for r in await conn.fetch(
            "SELECT hash FROM file_contents WHERE workspace = $1 AND hash = ANY($2::text[])",
            workspace,
            sorted(needed),
        )
    }
    missing = sorted(needed - stored)
    if missing:
        raise ContentMissing(thread_id, missing)
    if rollback is not None:
        inserted = await conn.fetchval(
            "INSERT INTO file_rollbacks (workspace, thread_id, operation_id, undoes_operation, "
            "after_message, started, finished) VALUES ($1, $2, $3, $4, $5, $6, NULL) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            workspace,
            thread_id,
            rollback.operation_id,
            rollback.undoes_operation,
            rollback.after_message,
            now_ms(),
        )
        if inserted is None:
            raise InvalidFileChange(
                thread_id, rollback.operation_id, "a rollback with this id is already recorded"
            )
    last = await conn.fetchval(
        "SELECT coalesce(max(seq), 0) FROM file_changes WHERE workspace = $1 AND thread_id = $2",
        workspace,
        thread_id,
    )
    at = now_ms()
    rows = [
        change_row(thread_id, number, change, version, at)
        for number, change in enumerate(changes, start=last + 1)
    ]
    await conn.executemany(
        f"INSERT INTO file_changes (workspace, {_COLUMNS}) VALUES ({_VALUES})",
        [(workspace, *row) for row in rows],
    )
    await conn.executemany(
        "INSERT INTO file_reverts (workspace, thread_id, reverted_seq, seq) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [
            (workspace, thread_id, reverted, row[1])
            for row, change in zip(rows, changes, strict=True)
            for reverted in change.reverts
        ],
    )
    return [_change_of(row) for row in rows]


async def copy(
    conn: Conn,
    workspace: str,
    thread_id: str,
    after: int,
    changes: Sequence[FileChange],
    contents: Sequence[StoredContent],
) -> int:
    version = await conn.fetchval(
        "SELECT v FROM threads WHERE workspace = $1 AND id = $2 FOR UPDATE", workspace, thread_id
    )
    if version is None:
        raise ThreadNotFound(thread_id)
    last = await conn.fetchval(
        "SELECT coalesce(max(seq), 0) FROM file_changes WHERE workspace = $1 AND thread_id = $2",
        workspace,
        thread_id,
    )
    if last != after:
        raise VersionConflict(thread_id, after, last)
    check_copy(thread_id, after, changes)
    await conn.executemany(
        "INSERT INTO file_contents (workspace, hash, size, base, depth, data) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        [(workspace, c.hash, c.size, c.base, c.depth, c.data) for c in contents],
    )
    needed = {c.base for c in contents if c.base is not None}
    for change in changes:
        needed.update(content_hashes(change))
    stored = {
        r[0]
        for r in await conn.fetch(
            "SELECT hash FROM file_contents WHERE workspace = $1 AND hash = ANY($2::text[])",
            workspace,
            sorted(needed),
        )
    }
    missing = sorted(needed - stored)
    if missing:
        raise ContentMissing(thread_id, missing)
    await conn.executemany(
        f"INSERT INTO file_changes (workspace, {_COLUMNS}) VALUES ({_VALUES})",
        [(workspace, *copied_row(change)) for change in changes],
    )
    await conn.executemany(
        "INSERT INTO file_reverts (workspace, thread_id, reverted_seq, seq) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [(workspace, thread_id, reverted, c.seq) for c in changes for reverted in c.reverts],
    )
    return after + len(changes)


async def changes(
    conn: Conn,
    workspace: str,
    thread_id: str,
    operation_id: str | None,
    since_version: int | None,
) -> list[FileChange]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM file_changes WHERE workspace = $1 AND thread_id = $2 "
        "AND ($3::text IS NULL OR operation_id = $3) "
        "AND ($4::integer IS NULL OR thread_version >= $4) ORDER BY seq",
        workspace,
        thread_id,
        operation_id,
        since_version,
    )
    return [_change_of(row) for row in rows]


async def reverts_of(
    conn: Conn, workspace: str, thread_id: str, seqs: Sequence[int]
) -> list[FileChange]:
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE closure(seq) AS (
            SELECT seq FROM file_reverts
            WHERE workspace = $1 AND thread_id = $2 AND reverted_seq = ANY($3::integer[])
            UNION
            SELECT r.seq FROM file_reverts r JOIN closure c ON r.reverted_seq = c.seq
            WHERE r.workspace = $1 AND r.thread_id = $2
        )
        SELECT {_COLUMNS} FROM file_changes
        WHERE workspace = $1 AND thread_id = $2 AND seq IN (SELECT seq FROM closure)
        ORDER BY seq
        """,
        workspace,
        thread_id,
        list(seqs),
    )
    return [_change_of(row) for row in rows]


async def latest(
    conn: Conn, workspace: str, thread_id: str, paths: Sequence[str]
) -> dict[str, FileChange]:
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (path) {_COLUMNS} FROM file_changes "
        "WHERE workspace = $1 AND thread_id = $2 AND path = ANY($3::text[]) "
        "ORDER BY path, seq DESC",
        workspace,
        thread_id,
        list(dict.fromkeys(paths)),
    )
    found = {row[3]: _change_of(row) for row in rows}
    return {path: found[path] for path in paths if path in found}


async def chain(conn: Conn, workspace: str, content_hash: str) -> list[StoredContent]:
    found: list[StoredContent] = []
    wanted: str | None = content_hash
    while wanted is not None:
        row = await conn.fetchrow(
            "SELECT hash, size, base, depth, data FROM file_contents "
            "WHERE workspace = $1 AND hash = $2",
            workspace,
            wanted,
        )
        if row is None:
            break  # the caller finds the chain ends with a base it lacks
        found.append(StoredContent(row[0], row[1], row[2], row[3], bytes(row[4])))
        wanted = row[2]
    return found


async def depths(conn: Conn, workspace: str, hashes: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT hash, depth FROM file_contents WHERE workspace = $1 AND hash = ANY($2::text[])",
        workspace,
        list(hashes),
    )
    found = {row[0]: row[1] for row in rows}
    return {h: found[h] for h in hashes if h in found}


async def usage(conn: Conn, workspace: str) -> ContentUsage:
    row = await conn.fetchrow(
        "SELECT count(*), coalesce(sum(length(data)), 0)::bigint, coalesce(sum(size), 0)::bigint "
        "FROM file_contents WHERE workspace = $1",
        workspace,
    )
    assert row is not None
    return ContentUsage(contents=row[0], stored_bytes=row[1], raw_bytes=row[2])


async def rollbacks(
    conn: Conn, workspace: str, thread_id: str, unfinished: bool
) -> list[FileRollback]:
    rows = await conn.fetch(
        "SELECT operation_id, undoes_operation, after_message, started, finished "
        "FROM file_rollbacks WHERE workspace = $1 AND thread_id = $2 "
        "AND (NOT $3 OR finished IS NULL) ORDER BY started, operation_id",
        workspace,
        thread_id,
        unfinished,
    )
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


async def finish(conn: Conn, workspace: str, thread_id: str, operation_id: str) -> None:
    updated = await conn.fetchval(
        "UPDATE file_rollbacks SET finished = coalesce(finished, $4) "
        "WHERE workspace = $1 AND thread_id = $2 AND operation_id = $3 RETURNING 1",
        workspace,
        thread_id,
        operation_id,
        now_ms(),
    )
    if updated is None:
        raise OperationNotFound(thread_id, operation_id)


async def forget(conn: Conn, workspace: str, thread_id: str) -> None:
    """Drop a deleted thread's file log and journal, and the contents nothing
    refers to any more."""
    candidates: set[str] = set()
    for before, after in await conn.fetch(
        "SELECT before_hash, after_hash FROM file_changes WHERE workspace = $1 AND thread_id = $2",
        workspace,
        thread_id,
    ):
        candidates.update(h for h in (before, after) if h is not None)
    for table in ("file_changes", "file_reverts", "file_rollbacks"):
        await conn.execute(
            f"DELETE FROM {table} WHERE workspace = $1 AND thread_id = $2", workspace, thread_id
        )
    while candidates:
        content_hash = candidates.pop()
        used = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM file_changes WHERE workspace = $1 AND before_hash = $2) "
            "OR EXISTS (SELECT 1 FROM file_changes WHERE workspace = $1 AND after_hash = $2) "
            "OR EXISTS (SELECT 1 FROM file_contents WHERE workspace = $1 AND base = $2)",
            workspace,
            content_hash,
        )
        if used:
            continue
        base = await conn.fetchrow(
            "DELETE FROM file_contents WHERE workspace = $1 AND hash = $2 RETURNING base",
            workspace,
            content_hash,
        )
        if base is not None and base[0] is not None:
            candidates.add(base[0])  # its base may have been kept only for it
