"""The PostgreSQL schema: numbered migrations and the two server-side functions.

Part of the PostgreSQL backend (:mod:`threadline.recorders.postgres`), split by
concern: this module is only SQL text. Migrations are applied in order on
start, each in one transaction with its row in ``schema_migrations``, under an
advisory lock so that several server processes starting together apply each
one once. Never edit a released migration: add the next number.

Every table carries the ``workspace`` its rows belong to (directly, or through
the thread's ``tid``); every query of a recorder names its workspace, so one
workspace never reads another's rows. No foreign keys: the append and delete
functions maintain the projections themselves, which keeps an append to a few
index inserts.
"""

from __future__ import annotations

from threadline.recorders import postgres_files

MIGRATION_LOCK = 0x7468726561646C6E  # "threadln": the advisory lock key of migrations


def _usage_by_message_migration() -> str:
    """Migration 10: usage keyed by message id (a message logged again replaces
    its row: kept is the last one logged), the 1-hour cache writes, and the
    stored cost's source and price list (see threadline.pricing). Costs
    reported before are marked so; rows never priced are priced on first read
    (threadline.costs). ``threadline_append`` takes the new columns, and the
    rows of amended messages (``message:amend``: a position pointed at the
    amendment, with its search tokens): its migration-1 text with the usage
    arrays widened and the amendment arrays added."""
    append = MIGRATIONS[1][MIGRATIONS[1].index("CREATE FUNCTION threadline_append(") :]
    append = append[: append.index("$$;") + 3]
    for old, new in (
        (
            "p_usage_cost double precision[],",
            "p_usage_cost double precision[], p_usage_mid text[], p_usage_cw1h bigint[],"
            " p_usage_source text[], p_usage_prices text[],",
        ),
        (
            "cache_read_tokens, cache_write_tokens, cost_usd)",
            "cache_read_tokens, cache_write_tokens, cost_usd, message_id,"
            " cache_write_1h_tokens, cost_source, price_version)",
        ),
        (
            "p_usage_cr, p_usage_cw, p_usage_cost) AS t;",
            "p_usage_cr, p_usage_cw, p_usage_cost, p_usage_mid, p_usage_cw1h,"
            " p_usage_source, p_usage_prices) AS t\n"
            "            ON CONFLICT ON CONSTRAINT message_usage_by_message"
            " DO UPDATE SET v = EXCLUDED.v,"
            " day = EXCLUDED.day, model = EXCLUDED.model,"
            " input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,"
            " cache_read_tokens = EXCLUDED.cache_read_tokens,"
            " cache_write_tokens = EXCLUDED.cache_write_tokens, cost_usd = EXCLUDED.cost_usd,"
            " cache_write_1h_tokens = EXCLUDED.cache_write_1h_tokens,"
            " cost_source = EXCLUDED.cost_source, price_version = EXCLUDED.price_version;",
        ),
        (
            "p_publish boolean,",
            "p_publish boolean, p_amend_pos integer[], p_amend_v integer[], p_amend_tokens text[],",
        ),
        (
            "FROM unnest(p_msg_pos, p_msg_v, p_msg_tokens) AS t(pos, v, tokens);\n    END IF;\n",
            "FROM unnest(p_msg_pos, p_msg_v, p_msg_tokens) AS t(pos, v, tokens);\n    END IF;\n"
            "    IF cardinality(p_amend_pos) > 0 THEN\n"
            "        UPDATE messages m SET v = t.v, tokens = string_to_array(t.tokens, ' ')\n"
            "            FROM unnest(p_amend_pos, p_amend_v, p_amend_tokens) AS t(pos, v, tokens)\n"
            "            WHERE m.tid = v_tid AND m.pos = t.pos;\n"
            "    END IF;\n",
        ),
    ):
        assert append.count(old) == 1, old
        append = append.replace(old, new)
    return (
        """
ALTER TABLE message_usage
    ADD COLUMN message_id text NOT NULL DEFAULT '',
    ADD COLUMN cache_write_1h_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_source text,
    ADD COLUMN price_version text;
UPDATE message_usage SET cost_source = 'reported' WHERE cost_usd IS NOT NULL;
UPDATE message_usage u
    SET message_id = coalesce(convert_from(d.body, 'UTF8')::jsonb -> 'message' ->> 'id', '')
    FROM deltas d WHERE d.tid = u.tid AND d.v = u.v;
DELETE FROM message_usage u USING message_usage newer
    WHERE newer.tid = u.tid AND newer.message_id = u.message_id AND newer.v > u.v;
ALTER TABLE message_usage
    ADD CONSTRAINT message_usage_by_message UNIQUE (tid, message_id);
DROP FUNCTION threadline_append(
    text, text, bigint, integer, bytea[], bigint, integer, bigint, bytea, text, integer,
    integer[], integer[], text[], text[], text[], text[], integer[], integer[], text[],
    bigint[], bigint[], bigint[], bigint[], double precision[], boolean);
"""
        + append
    )


MIGRATIONS: dict[int, str] = {
    # 1: workspaces and their change feed, threads, logs and projections, tokens.
    1: r"""
CREATE TABLE workspaces (
    id text PRIMARY KEY,
    feed_seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE threads (
    tid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace text NOT NULL,
    id text NOT NULL,
    v integer NOT NULL,
    last_activity bigint NOT NULL,
    head bytea NOT NULL,
    title_tokens text[] NOT NULL DEFAULT '{}',
    UNIQUE (workspace, id)
);
CREATE INDEX threads_by_activity ON threads (workspace, last_activity DESC, id DESC);
CREATE TABLE deltas (
    tid bigint NOT NULL,
    v integer NOT NULL,
    at bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (tid, v)
);
CREATE TABLE messages (
    tid bigint NOT NULL,
    pos integer NOT NULL,
    v integer NOT NULL,
    tokens text[] NOT NULL,
    PRIMARY KEY (tid, pos)
);
CREATE INDEX messages_search ON messages USING gin (tokens);
CREATE TABLE thread_links (
    owner_tid bigint NOT NULL,
    workspace text NOT NULL,
    parent_id text NOT NULL,
    child_id text NOT NULL,
    kind text NOT NULL,
    PRIMARY KEY (owner_tid, parent_id, child_id, kind)
);
CREATE INDEX thread_links_down ON thread_links (workspace, parent_id);
CREATE INDEX thread_links_up ON thread_links (workspace, child_id);
CREATE TABLE message_usage (
    tid bigint NOT NULL,
    v integer NOT NULL,
    day integer NOT NULL,
    model text,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cache_read_tokens bigint NOT NULL,
    cache_write_tokens bigint NOT NULL,
    cost_usd double precision,
    PRIMARY KEY (tid, v)
);
CREATE TABLE changes (
    workspace text NOT NULL,
    seq bigint NOT NULL,
    thread_id text NOT NULL,
    v integer NOT NULL,
    deleted boolean NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (workspace, seq),
    UNIQUE (workspace, thread_id)
);
CREATE TABLE archived_threads (
    workspace text NOT NULL,
    id text NOT NULL,
    last_activity bigint NOT NULL,
    entry bytea NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX archived_by_activity ON archived_threads (workspace, last_activity DESC, id DESC);
CREATE TABLE lifecycle_ops (
    workspace text NOT NULL,
    id text NOT NULL,
    started bigint NOT NULL,
    op bytea NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE TABLE tokens (
    id text PRIMARY KEY,
    secret_hash bytea NOT NULL,
    user_name text NOT NULL,
    workspace text NOT NULL,
    created bigint NOT NULL
);

-- The change feed. The workspace's row is locked from the moment a
-- transaction numbers its changes until it commits, so numbers are handed out
-- in commit order: a reader that has seen number n never later finds a new
-- commit at or below n (the eventsourcing library's PostgreSQL recorder gets
-- the same guarantee with LOCK TABLE ... IN EXCLUSIVE MODE; a feed is read one
-- workspace at a time, so one workspace's row is all that must be locked).
-- Each thread keeps one row, moved to its newest change; a deleted thread's
-- row stays as a tombstone.
CREATE FUNCTION threadline_publish(
    p_workspace text, p_ids text[], p_vs integer[], p_deleted boolean[], p_at bigint
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := cardinality(p_ids);
    v_last bigint;
BEGIN
    INSERT INTO workspaces AS w (id, feed_seq) VALUES (p_workspace, v_count)
        ON CONFLICT (id) DO UPDATE SET feed_seq = w.feed_seq + v_count
        RETURNING feed_seq INTO v_last;
    INSERT INTO changes AS c (workspace, seq, thread_id, v, deleted, at)
        SELECT p_workspace, v_last - v_count + n, t.id, t.v, t.d, p_at
        FROM unnest(p_ids, p_vs, p_deleted) WITH ORDINALITY AS t(id, v, d, n)
        ON CONFLICT (workspace, thread_id) DO UPDATE
        SET seq = excluded.seq, v = excluded.v, deleted = excluded.deleted, at = excluded.at;
    PERFORM pg_notify('threadline_changes', p_workspace);
    RETURN v_last;
END
$$;

-- One append: check the version under the thread's row lock, write the log,
-- the head and the projections, and (unless the caller publishes a batch
-- itself) number the change. Returns (ok, the version found, tid). The caller
-- computed the head and the projections from the head it read at
-- (p_tid, p_expected); the row lock and the (tid, v) key make a stale append
-- write nothing.
CREATE FUNCTION threadline_append(
    p_workspace text, p_id text, p_tid bigint, p_expected integer,
    p_bodies bytea[], p_at bigint,
    p_v integer, p_last_activity bigint, p_head bytea, p_title_tokens text,
    p_cut integer, p_msg_pos integer[], p_msg_v integer[], p_msg_tokens text[],
    p_link_parent text[], p_link_child text[], p_link_kind text[],
    p_usage_v integer[], p_usage_day integer[], p_usage_model text[],
    p_usage_in bigint[], p_usage_out bigint[], p_usage_cr bigint[], p_usage_cw bigint[],
    p_usage_cost double precision[],
    p_publish boolean,
    OUT ok boolean, OUT actual integer, OUT tid bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_tid bigint;
    v_found integer;
BEGIN
    IF p_expected = 0 THEN
        IF EXISTS (SELECT 1 FROM archived_threads a
                   WHERE a.workspace = p_workspace AND a.id = p_id) THEN
            ok := false; actual := -1; RETURN;
        END IF;
        INSERT INTO threads (workspace, id, v, last_activity, head, title_tokens)
            VALUES (p_workspace, p_id, p_v, p_last_activity, p_head,
                    string_to_array(p_title_tokens, ' '))
            ON CONFLICT (workspace, id) DO NOTHING
            RETURNING threads.tid INTO v_tid;
        IF v_tid IS NULL THEN
            SELECT t.v INTO v_found FROM threads t WHERE t.workspace = p_workspace AND t.id = p_id;
            ok := false; actual := coalesce(v_found, -1); RETURN;
        END IF;
    ELSE
        SELECT t.tid, t.v INTO v_tid, v_found FROM threads t
            WHERE t.workspace = p_workspace AND t.id = p_id FOR UPDATE;
        IF NOT FOUND THEN
            ok := false; actual := 0; RETURN;
        END IF;
        IF v_found <> p_expected OR v_tid <> p_tid THEN
            ok := false; actual := v_found; tid := v_tid; RETURN;
        END IF;
        UPDATE threads SET v = p_v, last_activity = p_last_activity, head = p_head,
                           title_tokens = string_to_array(p_title_tokens, ' ')
            WHERE threads.tid = v_tid;
    END IF;
    INSERT INTO deltas (tid, v, at, body)
        SELECT v_tid, p_expected + n::integer, p_at, b
        FROM unnest(p_bodies) WITH ORDINALITY AS t(b, n);
    IF p_cut IS NOT NULL THEN
        DELETE FROM messages m WHERE m.tid = v_tid AND m.pos >= p_cut;
    END IF;
    IF cardinality(p_msg_pos) > 0 THEN
        INSERT INTO messages (tid, pos, v, tokens)
            SELECT v_tid, t.pos, t.v, string_to_array(t.tokens, ' ')
            FROM unnest(p_msg_pos, p_msg_v, p_msg_tokens) AS t(pos, v, tokens);
    END IF;
    IF cardinality(p_link_parent) > 0 THEN
        INSERT INTO thread_links (owner_tid, workspace, parent_id, child_id, kind)
            SELECT v_tid, p_workspace, t.p, t.c, t.k
            FROM unnest(p_link_parent, p_link_child, p_link_kind) AS t(p, c, k)
            ON CONFLICT DO NOTHING;
    END IF;
    IF cardinality(p_usage_v) > 0 THEN
        INSERT INTO message_usage (tid, v, day, model, input_tokens, output_tokens,
                                   cache_read_tokens, cache_write_tokens, cost_usd)
            SELECT v_tid, t.*
            FROM unnest(p_usage_v, p_usage_day, p_usage_model, p_usage_in, p_usage_out,
                        p_usage_cr, p_usage_cw, p_usage_cost) AS t;
    END IF;
    IF p_publish THEN
        PERFORM threadline_publish(p_workspace, ARRAY[p_id], ARRAY[p_v], ARRAY[false], p_at);
    END IF;
    ok := true; actual := p_expected; tid := v_tid;
END
$$;
""",
    # 2: file changes, their contents and the rollback journal (postgres_files.py).
    2: postgres_files.MIGRATION,
}
# 10: usage keyed by message id, 1-hour cache writes, stored costs; amendments.
MIGRATIONS[10] = _usage_by_message_migration()
# 12: file changes whose content before (or after) is not recorded (postgres_files.py).
MIGRATIONS[12] = postgres_files.UNKNOWN_CONTENT_MIGRATION

# -- statements of the recorder ------------------------------------------------------

APPEND = (
    "SELECT ok, actual, tid FROM threadline_append("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
    "$17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)"
)

PUBLISH = "SELECT threadline_publish($1, $2, $3, $4, $5)"

HEAD = "SELECT tid, head FROM threads WHERE workspace = $1 AND id = $2"

# The head and the page in one statement (one snapshot): positions
# [stop - limit, stop) with stop = min(before, message count) - offset.
PAGE = """
SELECT t.head, (
    SELECT coalesce(array_agg(d.body ORDER BY m.pos), '{}')
    FROM messages m JOIN deltas d ON d.tid = m.tid AND d.v = m.v
    WHERE m.tid = t.tid AND m.pos >= e.stop - $4 AND m.pos < e.stop
)
FROM threads t, LATERAL (
    SELECT greatest(0, least($3, coalesce(
        (SELECT max(pos) + 1 FROM messages WHERE tid = t.tid), 0)) - $5) AS stop
) e
WHERE t.workspace = $1 AND t.id = $2
"""

LOAD_MANY = """
SELECT t.id, t.head, (
    SELECT coalesce(array_agg(d.body ORDER BY m.pos), '{}')
    FROM messages m JOIN deltas d ON d.tid = m.tid AND d.v = m.v WHERE m.tid = t.tid
) FROM threads t WHERE t.workspace = $1 AND t.id = ANY($2::text[])
"""

HEADS_MANY = "SELECT id, head FROM threads WHERE workspace = $1 AND id = ANY($2::text[])"

DELTAS = """
SELECT d.v, d.at, d.body FROM deltas d JOIN threads t ON t.tid = d.tid
WHERE t.workspace = $1 AND t.id = $2 AND d.v > $3 AND d.v <= $4 ORDER BY d.v
"""

ALL_HEADS = "SELECT id, head FROM threads WHERE workspace = $1"
LIST_HEADS = """
SELECT head FROM threads WHERE workspace = $1
ORDER BY last_activity DESC, id DESC LIMIT $2
"""

LIST_HEADS_AFTER = """
SELECT head FROM threads WHERE workspace = $1 AND (last_activity, id) < ($2, $3)
ORDER BY last_activity DESC, id DESC LIMIT $4
"""

# Delete threads with everything they recorded; returns (id, v) of those deleted.
DELETE = """
WITH gone AS (
    DELETE FROM threads WHERE workspace = $1 AND id = ANY($2::text[]) RETURNING tid, id, v
), d AS (
    DELETE FROM deltas WHERE tid IN (SELECT tid FROM gone)
), m AS (
    DELETE FROM messages WHERE tid IN (SELECT tid FROM gone)
), l AS (
    DELETE FROM thread_links WHERE owner_tid IN (SELECT tid FROM gone)
), u AS (
    DELETE FROM message_usage WHERE tid IN (SELECT tid FROM gone)
)
SELECT id, v FROM gone
"""

CHANGES = """
SELECT seq, thread_id, v, deleted, at FROM changes
WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""

SUBTREE = """
WITH RECURSIVE walk(parent_id, child_id, kind) AS (
    SELECT NULL::text, $2::text, NULL::text
    UNION
    SELECT l.parent_id, l.child_id, l.kind
    FROM thread_links l JOIN walk w ON l.parent_id = w.child_id
    WHERE l.workspace = $1
)
SELECT w.parent_id, w.child_id, w.kind, w.child_id, t.head
FROM walk w LEFT JOIN threads t ON t.workspace = $1 AND t.id = w.child_id
"""

ANCESTRY = """
WITH RECURSIVE walk(parent_id, child_id, kind) AS (
    SELECT $2::text, NULL::text, NULL::text
    UNION
    SELECT l.parent_id, l.child_id, l.kind
    FROM thread_links l JOIN walk w ON l.child_id = w.parent_id
    WHERE l.workspace = $1
)
SELECT w.parent_id, w.child_id, w.kind, w.parent_id, t.head
FROM walk w LEFT JOIN threads t ON t.workspace = $1 AND t.id = w.parent_id
"""

_ROLLUP = """
SELECT t.id, u.model, u.day, count(*),
       sum(u.input_tokens)::bigint, sum(u.output_tokens)::bigint,
       sum(u.cache_read_tokens)::bigint, sum(u.cache_write_tokens)::bigint,
       sum(u.cost_usd), sum(u.cache_write_1h_tokens)::bigint,
       count(*) FILTER (WHERE u.cost_source = 'reported'),
       count(*) FILTER (WHERE u.cost_source = 'computed'),
       coalesce(sum(u.cost_usd) FILTER (WHERE u.cost_source = 'computed'), 0)
FROM {scope} JOIN message_usage u ON u.tid = t.tid
GROUP BY t.tid, t.id, u.model, u.day
"""

UNPRICED = """
SELECT u.tid, u.v, u.day, u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
       u.cache_write_tokens, u.cost_usd, u.message_id, u.cache_write_1h_tokens, u.cost_source,
       u.price_version
FROM message_usage u JOIN threads t ON t.tid = u.tid
WHERE t.workspace = $1 AND (NOT $2 OR (u.cost_usd IS NULL AND u.price_version IS NULL
                                      AND u.model IS NOT NULL))
"""

SET_PRICE = """
UPDATE message_usage SET cost_usd = $3, cost_source = $4, price_version = $5
WHERE tid = $1 AND v = $2
"""

ROLLUP_ALL = _ROLLUP.format(scope="(SELECT * FROM threads WHERE workspace = $1) t")

ROLLUP_THESE = _ROLLUP.format(
    scope="(SELECT * FROM threads WHERE workspace = $1 AND id = ANY($2::text[])) t"
)

ROLLUP_TREES = _ROLLUP.format(
    scope="""(
    WITH RECURSIVE scope(id) AS (
        SELECT unnest($2::text[])
        UNION
        SELECT l.child_id FROM thread_links l JOIN scope s ON l.parent_id = s.id
        WHERE l.workspace = $1
    )
    SELECT t.* FROM scope s JOIN threads t ON t.workspace = $1 AND t.id = s.id
) t"""
)

# Search candidates: current messages holding every whole token of the query
# (the GIN index), and titles; the recorder then matches and ranks them exactly.
SEARCH_MESSAGES = """
SELECT t.id, t.head, d.body FROM messages m
JOIN threads t ON t.tid = m.tid
JOIN deltas d ON d.tid = m.tid AND d.v = m.v
WHERE t.workspace = $1 AND m.tokens @> $2::text[]
  AND NOT EXISTS (
    SELECT 1 FROM unnest($3::text[]) p
    WHERE NOT EXISTS (SELECT 1 FROM unnest(m.tokens) k WHERE k LIKE p))
"""

SEARCH_TITLES = """
SELECT id, head FROM threads
WHERE workspace = $1 AND title_tokens @> $2::text[]
  AND NOT EXISTS (
    SELECT 1 FROM unnest($3::text[]) p
    WHERE NOT EXISTS (SELECT 1 FROM unnest(title_tokens) k WHERE k LIKE p))
"""

# BM25's corpus figures: documents (messages and titles) and their total length.
SEARCH_CORPUS = """
SELECT
  (SELECT count(*) FROM messages m JOIN threads t ON t.tid = m.tid WHERE t.workspace = $1)
  + (SELECT count(*) FROM threads WHERE workspace = $1 AND cardinality(title_tokens) > 0),
  (SELECT coalesce(sum(cardinality(m.tokens)), 0)
   FROM messages m JOIN threads t ON t.tid = m.tid WHERE t.workspace = $1)
  + (SELECT coalesce(sum(cardinality(title_tokens)), 0) FROM threads WHERE workspace = $1)
"""

# Documents holding a term (a phrase counts where all its tokens are).
SEARCH_FREQUENCY = """
SELECT
  (SELECT count(*) FROM messages m JOIN threads t ON t.tid = m.tid
   WHERE t.workspace = $1 AND m.tokens @> $2::text[]
     AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM unnest(m.tokens) k WHERE k LIKE $3)))
  + (SELECT count(*) FROM threads WHERE workspace = $1 AND title_tokens @> $2::text[]
     AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM unnest(title_tokens) k WHERE k LIKE $3)))
"""

# -- inspection (the recorder's derived_rows, for tests) ------------------------------

INSPECT_THREADS = "SELECT tid, id, head, title_tokens FROM threads WHERE workspace = $1"

INSPECT_MESSAGES = """
SELECT m.tid, m.pos, m.v, m.tokens FROM messages m JOIN threads t ON t.tid = m.tid
WHERE t.workspace = $1 ORDER BY m.tid, m.pos
"""

INSPECT_USAGE = """
SELECT u.tid, u.v, u.day, u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
       u.cache_write_tokens, u.cost_usd, u.message_id, u.cache_write_1h_tokens, u.cost_source,
       u.price_version
FROM message_usage u JOIN threads t ON t.tid = u.tid WHERE t.workspace = $1 ORDER BY u.tid, u.v
"""

INSPECT_LINKS = "SELECT owner_tid, parent_id, child_id, kind FROM thread_links WHERE workspace = $1"

INSPECT_FEED = "SELECT thread_id, v, deleted FROM changes WHERE workspace = $1 ORDER BY seq"

# -- migrations, leases, tokens ------------------------------------------------------

MIGRATIONS_LOCK = "SELECT pg_advisory_xact_lock($1)"
MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version integer PRIMARY KEY, applied bigint NOT NULL)"
)
MIGRATIONS_DONE = "SELECT version FROM schema_migrations"
MIGRATION_DONE = "INSERT INTO schema_migrations VALUES ($1, $2)"

TRY_LEASE = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
RELEASE_LEASE = "SELECT pg_advisory_unlock(hashtextextended($1, 0))"

ADD_TOKEN = (
    "INSERT INTO tokens (id, secret_hash, user_name, workspace, created) "
    "VALUES ($1, $2, $3, $4, $5)"
)
FIND_TOKEN = "SELECT secret_hash, user_name, workspace, created FROM tokens WHERE id = $1"
LIST_TOKENS = (
    "SELECT id, secret_hash, user_name, workspace, created FROM tokens ORDER BY created, id"
)
REVOKE_TOKEN = "DELETE FROM tokens WHERE id = $1"

# -- archive, restore and rebuild ----------------------------------------------------

PUT_LIFECYCLE_OP = """
INSERT INTO lifecycle_ops (workspace, id, started, op) VALUES ($1, $2, $3, $4)
ON CONFLICT (workspace, id) DO UPDATE SET started = excluded.started, op = excluded.op
"""
DELETE_LIFECYCLE_OP = "DELETE FROM lifecycle_ops WHERE workspace = $1 AND id = $2"
LIFECYCLE_OPS = "SELECT op FROM lifecycle_ops WHERE workspace = $1 ORDER BY started, id"

LOCK_THREAD_V = "SELECT v FROM threads WHERE workspace = $1 AND id = $2 FOR UPDATE"
LOCK_THREAD_TID = "SELECT tid FROM threads WHERE workspace = $1 AND id = $2 FOR UPDATE"
LOG = "SELECT v, at, body FROM deltas WHERE tid = $1 ORDER BY v"
RESTORE_COMMIT_TIMES = """
UPDATE deltas d SET at = t.at FROM unnest($2::integer[], $3::bigint[]) AS t(v, at)
WHERE d.tid = $1 AND d.v = t.v
"""

ADD_ARCHIVED = (
    "INSERT INTO archived_threads (workspace, id, last_activity, entry) VALUES ($1, $2, $3, $4)"
)
DELETED_AMONG = """
SELECT thread_id FROM (
    SELECT DISTINCT ON (thread_id) thread_id, deleted FROM changes
    WHERE workspace = $1 AND thread_id = ANY($2::text[]) ORDER BY thread_id, seq DESC
) last WHERE deleted
"""
ARCHIVED_AMONG = "SELECT id FROM archived_threads WHERE workspace = $1 AND id = ANY($2::text[])"
TAKE_ARCHIVED = "DELETE FROM archived_threads WHERE workspace = $1 AND id = $2 RETURNING entry"
ARCHIVED = "SELECT entry FROM archived_threads WHERE workspace = $1 AND id = $2"
LIST_ARCHIVED = """
SELECT entry FROM archived_threads WHERE workspace = $1
ORDER BY last_activity DESC, id DESC LIMIT $2
"""
LIST_ARCHIVED_AFTER = """
SELECT entry FROM archived_threads WHERE workspace = $1 AND (last_activity, id) < ($2, $3)
ORDER BY last_activity DESC, id DESC LIMIT $4
"""
