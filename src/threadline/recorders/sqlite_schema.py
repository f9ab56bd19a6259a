"""The SQLite backend's SQL: its numbered migrations and its named statements.

Part of the SQLite backend (:mod:`threadline.recorders.sqlite`), split by
concern: this module is only SQL text; ``sqlite.py`` and its helper modules
(``sqlite_search``, ``sqlite_relations``, ``sqlite_sync``) execute it. The
file log's SQL lives with it in ``sqlite_files.py``, and this module takes its
migration from there.

Migrations are applied in order on open, each in one transaction with its row
in ``schema_migrations``; a script is split on semicolons, so none may appear
but between statements. Never edit a released migration: add the next number.
"""

from __future__ import annotations

from threadline.recorders import sqlite_files

# Schema migration 3 of the SQLite recorder: the two projections, filled from
# the threads a database already holds. No semicolon may appear but between
# statements (the migration runner splits on them).
RELATIONS_MIGRATION = """
CREATE TABLE thread_links (
    owner_tid INTEGER NOT NULL,
    parent_id TEXT NOT NULL,
    child_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (owner_tid, parent_id, child_id, kind)
) WITHOUT ROWID;
CREATE INDEX thread_links_down ON thread_links (parent_id, child_id);
CREATE INDEX thread_links_up ON thread_links (child_id, parent_id);
CREATE TABLE message_usage (
    delta_seq INTEGER PRIMARY KEY,
    tid INTEGER NOT NULL,
    day INTEGER NOT NULL,
    model TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_usd REAL
);
CREATE INDEX message_usage_by_thread ON message_usage (tid);
INSERT OR IGNORE INTO thread_links (owner_tid, parent_id, child_id, kind)
    SELECT t.tid, t.id, j.value, 'child'
    FROM threads t, json_each(CAST(t.head AS TEXT), '$.child_thread_ids') j;
INSERT OR IGNORE INTO thread_links (owner_tid, parent_id, child_id, kind)
    SELECT t.tid, t.id, j.value, 'summary'
    FROM threads t, json_each(CAST(t.head AS TEXT), '$.summary_thread_ids') j;
INSERT OR IGNORE INTO thread_links (owner_tid, parent_id, child_id, kind)
    SELECT tid, json_extract(CAST(head AS TEXT), '$.parent_thread_id'), id, 'child'
    FROM threads WHERE json_extract(CAST(head AS TEXT), '$.parent_thread_id') IS NOT NULL;
INSERT OR IGNORE INTO thread_links (owner_tid, parent_id, child_id, kind)
    SELECT tid, json_extract(CAST(head AS TEXT), '$.origin_thread_id'), id, 'summary'
    FROM threads WHERE json_extract(CAST(head AS TEXT), '$.origin_thread_id') IS NOT NULL;
INSERT INTO message_usage
    SELECT seq, tid, (ts - ((ts % 86400000) + 86400000) % 86400000) / 86400000,
           json_extract(b, '$.message.usage.model'),
           json_extract(b, '$.message.usage.input_tokens'),
           json_extract(b, '$.message.usage.output_tokens'),
           COALESCE(json_extract(b, '$.message.usage.cache_read_tokens'), 0),
           COALESCE(json_extract(b, '$.message.usage.cache_write_tokens'), 0),
           json_extract(b, '$.message.usage.cost_usd')
    FROM (
        SELECT d.seq AS seq, d.tid AS tid, threadline_delta_json(d.body) AS b,
               json_extract(threadline_delta_json(d.body), '$.message.timestamp') AS ts
        FROM deltas d JOIN threads t ON t.tid = d.tid
    )
    WHERE json_extract(b, '$.type') LIKE '%:message'
      AND json_extract(b, '$.message.usage') IS NOT NULL
"""

# Migration 5 of the SQLite recorder. It also indexes what an older database
# already holds (the JSON functions read the same fields message_search_text does).
SEARCH_MIGRATION = """
CREATE VIRTUAL TABLE search_index USING fts5(
    body, tools, tid UNINDEXED, message_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_index (rowid, body, tools, tid, message_id)
SELECT d.seq,
       json_extract(CAST(d.body AS TEXT), '$.message.content'),
       (SELECT group_concat(part, char(10)) FROM (
            SELECT json_extract(c.value, '$.name') || ' ' || json_extract(c.value, '$.input')
                   AS part
            FROM json_each(CAST(d.body AS TEXT), '$.message.tool_calls') c
            UNION ALL
            SELECT json_extract(r.value, '$.output')
            FROM json_each(CAST(d.body AS TEXT), '$.message.tool_results') r)),
       m.tid,
       json_extract(CAST(d.body AS TEXT), '$.message.id')
FROM messages m JOIN deltas d ON d.seq = m.delta_seq;
INSERT INTO search_index (rowid, body, tools, tid, message_id)
SELECT -tid, json_extract(CAST(head AS TEXT), '$.title'), '', tid, NULL
FROM threads WHERE json_extract(CAST(head AS TEXT), '$.title') IS NOT NULL;
"""

# Migration 8: the index without its copy of the text (see the module's
# docstring), rebuilt from the log and the heads.
SEARCH_EXTERNAL_CONTENT_MIGRATION = """
DROP TABLE search_index;
CREATE TABLE search_titles (key INTEGER PRIMARY KEY, title TEXT NOT NULL);
CREATE VIEW search_content (seq, body, tools, tid, message_id) AS
    SELECT seq, threadline_search_text(body, 0), threadline_search_text(body, 1), tid,
           threadline_search_text(body, 2)
    FROM deltas
    UNION ALL
    SELECT key, title, '', -key, NULL FROM search_titles;
CREATE VIRTUAL TABLE search_index USING fts5(
    body, tools, tid UNINDEXED, message_id UNINDEXED,
    content = 'search_content', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_titles (key, title)
SELECT -tid, json_extract(CAST(head AS TEXT), '$.title') FROM threads
WHERE json_extract(CAST(head AS TEXT), '$.title') <> '';
INSERT INTO search_index (rowid, body, tools, tid, message_id)
SELECT d.seq, threadline_search_text(d.body, 0), threadline_search_text(d.body, 1), d.tid,
       threadline_search_text(d.body, 2)
FROM messages m JOIN deltas d ON d.seq = m.delta_seq;
INSERT INTO search_index (rowid, body, tools, tid, message_id)
SELECT key, title, '', -key, NULL FROM search_titles
"""

# Schema migration 7 of the SQLite recorder. No semicolon but between statements.
SYNC_MIGRATION = """
CREATE TABLE sync_threads (
    thread_id TEXT PRIMARY KEY,
    synced_v INTEGER NOT NULL DEFAULT 0,
    remote_v INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER,
    error TEXT,
    stuck_v INTEGER,
    merged_at INTEGER
) WITHOUT ROWID;
CREATE TABLE sync_feeds (
    remote TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID
"""

# Migration 10 of the SQLite recorder: usage keyed by message id (a message
# logged again replaces its row: kept is the last one logged), the 1-hour
# cache writes, and the stored cost's source and price list. Costs reported
# before are marked so; rows that were never priced are priced on first read
# (threadline.costs), in Python, with the installed price list.
USAGE_BY_MESSAGE_MIGRATION = """
ALTER TABLE message_usage ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE message_usage ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message_usage ADD COLUMN cost_source TEXT;
ALTER TABLE message_usage ADD COLUMN price_version TEXT;
UPDATE message_usage SET cost_source = 'reported' WHERE cost_usd IS NOT NULL;
UPDATE message_usage SET message_id = COALESCE((
    SELECT json_extract(threadline_delta_json(d.body), '$.message.id')
    FROM deltas d WHERE d.seq = message_usage.delta_seq), '');
DELETE FROM message_usage WHERE delta_seq NOT IN (
    SELECT MAX(delta_seq) FROM message_usage GROUP BY tid, message_id);
CREATE UNIQUE INDEX message_usage_by_message ON message_usage (tid, message_id)
"""

# Schema migration 11 of the SQLite recorder.
SYNC_DELETES_MIGRATION = """
CREATE TABLE sync_deletes (
    thread_id TEXT PRIMARY KEY,
    seen_v INTEGER NOT NULL,
    at INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER,
    error TEXT
) WITHOUT ROWID;
ALTER TABLE sync_threads ADD COLUMN conflict TEXT;
ALTER TABLE sync_threads ADD COLUMN conflict_v INTEGER;
ALTER TABLE sync_threads ADD COLUMN files_synced INTEGER NOT NULL DEFAULT 0
"""

# Numbered schema migrations, applied in order on open, each in the same
# transaction as its row in schema_migrations. Never edit a released one: add
# the next number.
MIGRATIONS: dict[int, str] = {
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
    # 2: file changes, their contents and the rollback journal (recorders/sqlite_files.py).
    2: sqlite_files.MIGRATION,
    # 3: thread links and per-message usage (see recorders/sqlite_relations.py).
    3: RELATIONS_MIGRATION,
    # 4: archived threads' metadata (threadline.lifecycle.archive) and the archive or
    # restore ops in progress, which recovery on open finishes or undoes.
    4: """
    CREATE TABLE archived_threads (
        id TEXT PRIMARY KEY,
        last_activity INTEGER NOT NULL,
        entry BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX archived_by_activity ON archived_threads (last_activity DESC, id DESC);
    CREATE TABLE lifecycle_ops (
        id TEXT PRIMARY KEY,
        started INTEGER NOT NULL,
        op BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: the full-text index (see recorders/sqlite_search.py).
    5: SEARCH_MIGRATION,
    # 6: the change feed (the sync server's /v1/changes): each thread's newest
    # change, renumbered by REPLACE; AUTOINCREMENT never reuses a number and the
    # single writer commits in number order, so a cursor never misses a commit.
    6: """
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        thread_id TEXT NOT NULL UNIQUE,
        v INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        at INTEGER NOT NULL
    );
    """,
    # 7: the sync ledger and the change-feed cursors of the servers this store
    # syncs with (see recorders/sqlite_sync.py).
    7: SYNC_MIGRATION,
    # 8: the full-text index without its copy of the text (see
    # recorders/sqlite_search.py). From here on delta bodies may be
    # zstd-compressed (recorders/sqlite_bodies.py): SQL reads them through
    # threadline_delta_json(body).
    8: SEARCH_EXTERNAL_CONTENT_MIGRATION,
    # 10: usage keyed by message id, 1-hour cache writes, stored costs.
    10: USAGE_BY_MESSAGE_MIGRATION,
    # 11: deletes that travel (pending local deletes, the conflict mark of the
    # ledger) and how much of each thread's file log is on the server (see
    # recorders/sqlite_sync.py).
    11: SYNC_DELETES_MIGRATION,
    # 12: file changes whose content before (or after) is not recorded: an
    # import's edit of a file its transcript never showed (recorders/sqlite_files.py).
    12: sqlite_files.UNKNOWN_CONTENT_MIGRATION,
}

# -- connections ----------------------------------------------------------------------

BUSY_TIMEOUT = "PRAGMA busy_timeout = {ms:d}"
PAGE_SIZE = "PRAGMA page_size = {size:d}"
JOURNAL_WAL = "PRAGMA journal_mode = WAL"
SYNCHRONOUS = "PRAGMA synchronous = {mode}"
FOREIGN_KEYS = "PRAGMA foreign_keys = ON"
# The search index's content view calls functions of the connection (sqlite_search.py).
TRUSTED_SCHEMA = "PRAGMA trusted_schema = ON"
INTEGRITY_CHECK = "PRAGMA integrity_check"
CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"
# After a checkpoint the WAL file is cut back to this size, so a burst of writes
# (or a write that failed on a full disk) does not keep its space (issue 16).
JOURNAL_SIZE_LIMIT = "PRAGMA journal_size_limit = {size:d}"
WAL_AUTOCHECKPOINT = "PRAGMA wal_autocheckpoint = {pages:d}"

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)"
)
MIGRATIONS_DONE = "SELECT version FROM schema_migrations"
MIGRATION_DONE = "INSERT INTO schema_migrations VALUES (?, ?)"

# -- threads, their logs and message positions ---------------------------------------

THREAD_ROW = "SELECT tid, head FROM threads WHERE id = ?"
THREAD_TID = "SELECT tid FROM threads WHERE id = ?"
THREAD_V = "SELECT v FROM threads WHERE id = ?"
THREAD_V_BY_TID = "SELECT v FROM threads WHERE tid = ?"
THREAD_HEAD = "SELECT head FROM threads WHERE id = ?"
NEW_THREAD = "INSERT INTO threads (id, v, last_activity, head) VALUES (?, 0, 0, x'')"
UPDATE_HEAD = "UPDATE threads SET v = ?, last_activity = ?, head = ? WHERE tid = ?"
DELETE_THREAD = "DELETE FROM threads WHERE tid = ?"

INSERT_DELTA = "INSERT INTO deltas (tid, v, at, body) VALUES (?, ?, ?, ?)"
LOG_BODIES = "SELECT seq, body FROM deltas WHERE tid = ? ORDER BY v"
DELTAS = (
    "SELECT d.v, d.at, d.body FROM deltas d JOIN threads t ON t.tid = d.tid "
    "WHERE t.id = ? AND d.v > ? AND d.v <= ? ORDER BY d.v"
)
DELETE_DELTAS = "DELETE FROM deltas WHERE tid = ?"
DELETE_DELTAS_AFTER = "DELETE FROM deltas WHERE tid = ? AND v > ?"
RESTORE_COMMIT_TIME = (
    "UPDATE deltas SET at = ? WHERE v = ? AND tid = (SELECT tid FROM threads WHERE id = ?)"
)

INSERT_MESSAGE = "INSERT INTO messages (tid, pos, delta_seq) VALUES (?, ?, ?)"
CUT_MESSAGES = "DELETE FROM messages WHERE tid = ? AND pos >= ?"
AMEND_MESSAGE = "UPDATE messages SET delta_seq = ? WHERE tid = ? AND pos = ?"
DELETE_MESSAGES = "DELETE FROM messages WHERE tid = ?"
MESSAGE_BODIES = (
    "SELECT d.body FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
    "WHERE m.tid = ? ORDER BY m.pos"
)
PAGE_BODIES = (
    "SELECT d.body FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
    "WHERE m.tid = ? AND m.pos >= ? AND m.pos < ? ORDER BY m.pos"
)

LIST_HEADS = "SELECT head FROM threads ORDER BY last_activity DESC, id DESC LIMIT ?"
ALL_HEADS = "SELECT id, head FROM threads"
LIST_HEADS_AFTER = (
    "SELECT head FROM threads WHERE (last_activity, id) < (?, ?) "
    "ORDER BY last_activity DESC, id DESC LIMIT ?"
)

# -- the change feed (migration 6) --------------------------------------------------------

PUBLISH = "INSERT OR REPLACE INTO changes (thread_id, v, deleted, at) VALUES (?, ?, ?, ?)"
CHANGES = "SELECT seq, thread_id, v, deleted, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?"

# -- archived threads and lifecycle ops (migration 4) --------------------------------------

IS_ARCHIVED = "SELECT 1 FROM archived_threads WHERE id = ?"
ARCHIVED = "SELECT entry FROM archived_threads WHERE id = ?"
ADD_ARCHIVED = "INSERT INTO archived_threads (id, last_activity, entry) VALUES (?, ?, ?)"
DELETE_ARCHIVED = "DELETE FROM archived_threads WHERE id = ?"
LIST_ARCHIVED = "SELECT entry FROM archived_threads ORDER BY last_activity DESC, id DESC LIMIT ?"
LIST_ARCHIVED_AFTER = (
    "SELECT entry FROM archived_threads WHERE (last_activity, id) < (?, ?) "
    "ORDER BY last_activity DESC, id DESC LIMIT ?"
)
PUT_LIFECYCLE_OP = "INSERT OR REPLACE INTO lifecycle_ops (id, started, op) VALUES (?, ?, ?)"
DELETE_LIFECYCLE_OP = "DELETE FROM lifecycle_ops WHERE id = ?"
LIFECYCLE_OPS = "SELECT op FROM lifecycle_ops ORDER BY started, id"

# -- inspection (the recorder's derived_rows, for tests) ----------------------------------

INSPECT_THREADS = "SELECT tid, id, head FROM threads"
INSPECT_POSITIONS = (
    "SELECT m.tid, m.pos, d.v FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
    "ORDER BY m.tid, m.pos"
)
INSPECT_USAGE = (
    "SELECT u.tid, d.v, u.day, u.model, u.input_tokens, u.output_tokens, "
    "u.cache_read_tokens, u.cache_write_tokens, u.cost_usd, u.message_id, "
    "u.cache_write_1h_tokens, u.cost_source, u.price_version "
    "FROM message_usage u JOIN deltas d ON d.seq = u.delta_seq ORDER BY u.tid, d.v"
)
INSPECT_LINKS = "SELECT owner_tid, parent_id, child_id, kind FROM thread_links"
INSPECT_DOCUMENTS = (
    "SELECT d.tid, d.v, threadline_search_text(d.body, 0), threadline_search_text(d.body, 1) "
    "FROM search_index_docsize z JOIN deltas d ON d.seq = z.id ORDER BY d.tid, d.v"
)
INSPECT_TITLES = "SELECT -key, title FROM search_titles"
INSPECT_FEED = "SELECT thread_id, v, deleted FROM changes ORDER BY seq"
