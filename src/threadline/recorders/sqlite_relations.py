"""The SQLite side of relationships and cost roll-ups: projections and queries.

Part of the SQLite backend, split from :mod:`threadline.recorders.sqlite` by
concern; that module owns connections and transactions and calls these
functions inside them.

Two projections of the log, written in the same transaction as each append
(and dropped with the thread), so that no query reads messages:

- ``thread_links``: one row per link either end records (a parent's
  ``child:link``/``summary:link``, a child's ``parent_thread_id`` /
  ``origin_thread_id``), keyed by the thread that recorded it. Links name
  thread ids, not rows, so a link to a deleted thread survives and is
  reported as missing.
- ``message_usage``: the usage of every message ever appended (truncated ones
  included), one row per message id (a message logged again replaces its
  row), with its UTC day and its stored cost (see :mod:`threadline.pricing`),
  for roll-ups by thread, model and day.

The tree below a thread and the ancestry of a thread are each one recursive
query. The walk's rows are links without a depth, and ``UNION`` drops rows it
has seen, so a cycle (only hand-made links can make one) ends the walk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace

import orjson

from threadline.model import Thread, ThreadHead
from threadline.planner import AppendPlan, UsageRow
from threadline.recorders.base import LinkGraph, LinkKind, ThreadLink, UsageGroup
from threadline.recorders.sqlite_bodies import message_of

DAY_MS = 86_400_000


# -- projections, in the appending transaction ------------------------------------


_INSERT_USAGE = (
    "INSERT OR REPLACE INTO message_usage (delta_seq, tid, day, model, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, message_id, "
    "cache_write_1h_tokens, cost_source, price_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LINK = (
    "INSERT OR IGNORE INTO thread_links (owner_tid, parent_id, child_id, kind) VALUES (?, ?, ?, ?)"
)


def write(
    conn: sqlite3.Connection, tid: int, plan: AppendPlan, seqs: Sequence[int], first_v: int
) -> None:
    """Record the usage rows and links of ``plan`` for thread ``tid``;
    ``seqs[v - first_v]`` is the rowid of the delta of version ``v``."""
    if plan.usage:
        conn.executemany(
            _INSERT_USAGE,
            [
                (
                    seqs[u.v - first_v],
                    tid,
                    u.day,
                    u.model,
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_tokens,
                    u.cache_write_tokens,
                    u.cost_usd,
                    u.message_id,
                    u.cache_write_1h_tokens,
                    u.cost_source,
                    u.price_version,
                )
                for u in plan.usage
            ],
        )
    if plan.links:
        conn.executemany(
            _INSERT_LINK, [(tid, link.parent_id, link.child_id, link.kind) for link in plan.links]
        )


def forget(conn: sqlite3.Connection, tid: int) -> None:
    """Drop what the thread ``tid`` recorded (when its log goes)."""
    conn.execute("DELETE FROM thread_links WHERE owner_tid = ?", (tid,))
    conn.execute("DELETE FROM message_usage WHERE tid = ?", (tid,))


# -- queries, in a read snapshot ---------------------------------------------------


def _id_array(thread_ids: Sequence[str]) -> str:
    """The ids as one JSON array parameter: one statement however many there are."""
    return orjson.dumps(list(dict.fromkeys(thread_ids))).decode()


def heads_many(conn: sqlite3.Connection, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
    rows = conn.execute(
        "SELECT t.id, t.head FROM json_each(?) j JOIN threads t ON t.id = j.value",
        (_id_array(thread_ids),),
    ).fetchall()
    return {thread_id: ThreadHead.model_validate_json(head) for thread_id, head in rows}


def load_many(conn: sqlite3.Connection, thread_ids: Sequence[str]) -> dict[str, Thread]:
    # One row per message (or one for a thread without any); the head only on
    # a thread's first row, so that it is not copied once per message. No
    # ORDER BY: sorting every message body costs more than putting the few
    # rows a join may return out of order back in place here.
    rows = conn.execute(
        "SELECT t.id, CASE WHEN m.pos IS NULL OR m.pos = 0 THEN t.head END, m.pos, d.body "
        "FROM json_each(?) j JOIN threads t ON t.id = j.value "
        "LEFT JOIN messages m ON m.tid = t.tid "
        "LEFT JOIN deltas d ON d.seq = m.delta_seq",
        (_id_array(thread_ids),),
    ).fetchall()
    heads: dict[str, ThreadHead] = {}
    bodies: dict[str, list[tuple[int, bytes]]] = {}
    for thread_id, head, pos, body in rows:
        if head is not None:
            heads[thread_id] = ThreadHead.model_validate_json(head)
        if body is not None:
            bodies.setdefault(thread_id, []).append((pos, body))
    found: dict[str, Thread] = {}
    fields = [name for name in Thread.model_fields if name != "messages"]
    for thread_id, head in heads.items():
        ordered = bodies.get(thread_id, [])
        if any(ordered[i][0] != i for i in range(len(ordered))):
            ordered.sort()
        messages = tuple(message_of(body) for _, body in ordered)
        # The store wrote these: build without validating them again.
        found[thread_id] = Thread.model_construct(
            **{name: getattr(head, name) for name in fields}, messages=messages
        )
    return found


_SUBTREE = """
WITH RECURSIVE walk(parent_id, child_id, kind) AS (
    SELECT NULL, ?, NULL
    UNION
    SELECT l.parent_id, l.child_id, l.kind
    FROM thread_links l JOIN walk w ON l.parent_id = w.child_id
)
SELECT w.parent_id, w.child_id, w.kind, w.child_id, t.head,
       EXISTS (SELECT 1 FROM archived_threads a WHERE a.id = w.child_id)
FROM walk w LEFT JOIN threads t ON t.id = w.child_id
"""

_ANCESTRY = """
WITH RECURSIVE walk(parent_id, child_id, kind) AS (
    SELECT ?, NULL, NULL
    UNION
    SELECT l.parent_id, l.child_id, l.kind
    FROM thread_links l JOIN walk w ON l.child_id = w.parent_id
)
SELECT w.parent_id, w.child_id, w.kind, w.parent_id, t.head,
       EXISTS (SELECT 1 FROM archived_threads a WHERE a.id = w.parent_id)
FROM walk w LEFT JOIN threads t ON t.id = w.parent_id
"""


def _graph(
    rows: list[tuple[str | None, str | None, str | None, str, bytes | None, int]],
) -> LinkGraph:
    links: list[ThreadLink] = []
    heads: dict[str, ThreadHead] = {}
    archived: set[str] = set()
    for parent_id, child_id, kind, end, head, is_archived in rows:
        if is_archived:
            archived.add(end)
        if kind is not None:
            link_kind: LinkKind = "child" if kind == "child" else "summary"
            links.append(ThreadLink(str(parent_id), str(child_id), link_kind))
        if head is not None and end not in heads:
            heads[end] = ThreadHead.model_validate_json(head)
    return LinkGraph(tuple(dict.fromkeys(links)), heads, frozenset(archived))


def _with_deleted(conn: sqlite3.Connection, graph: LinkGraph) -> LinkGraph:
    """``graph`` with its linked threads that were deleted here named."""
    ends = {end for link in graph.links for end in (link.parent_id, link.child_id)}
    absent = sorted(ends - graph.heads.keys() - graph.archived)
    if not absent:
        return graph
    rows = conn.execute(
        "SELECT thread_id FROM changes WHERE deleted = 1 "
        "AND thread_id IN (SELECT value FROM json_each(?))",
        (orjson.dumps(absent).decode(),),
    ).fetchall()
    return replace(graph, deleted=frozenset(row[0] for row in rows))


def subtree(conn: sqlite3.Connection, thread_id: str) -> LinkGraph:
    return _with_deleted(conn, _graph(conn.execute(_SUBTREE, (thread_id,)).fetchall()))


def ancestry(conn: sqlite3.Connection, thread_id: str) -> LinkGraph:
    return _with_deleted(conn, _graph(conn.execute(_ANCESTRY, (thread_id,)).fetchall()))


_ROLLUP = """
SELECT t.id, u.model, u.day, COUNT(*),
       SUM(u.input_tokens), SUM(u.output_tokens),
       SUM(u.cache_read_tokens), SUM(u.cache_write_tokens),
       SUM(u.cost_usd), SUM(u.cache_write_1h_tokens),
       COUNT(CASE WHEN u.cost_source = 'reported' THEN 1 END),
       COUNT(CASE WHEN u.cost_source = 'computed' THEN 1 END),
       TOTAL(CASE WHEN u.cost_source = 'computed' THEN u.cost_usd END)
FROM {scope} JOIN message_usage u ON u.tid = t.tid
GROUP BY t.tid, u.model, u.day
"""

_THESE = "(SELECT DISTINCT value AS id FROM json_each(?)) s JOIN threads t ON t.id = s.id"

_TREES = """(
    WITH RECURSIVE scope(id) AS (
        SELECT value FROM json_each(?)
        UNION
        SELECT l.child_id FROM thread_links l JOIN scope s ON l.parent_id = s.id
    )
    SELECT id FROM scope
) s JOIN threads t ON t.id = s.id"""


def usage_rollup(
    conn: sqlite3.Connection, thread_ids: Sequence[str] | None, subtrees: bool
) -> list[UsageGroup]:
    if thread_ids is None:
        rows = conn.execute(_ROLLUP.format(scope="threads t")).fetchall()
    else:
        scope = _TREES if subtrees else _THESE
        rows = conn.execute(_ROLLUP.format(scope=scope), (_id_array(thread_ids),)).fetchall()
    return [
        UsageGroup(
            thread_id=row[0],
            model=row[1],
            day=row[2],
            messages=row[3],
            input_tokens=row[4],
            output_tokens=row[5],
            cache_read_tokens=row[6],
            cache_write_tokens=row[7],
            cost_usd=row[8],
            cache_write_1h_tokens=row[9],
            reported_messages=row[10],
            computed_messages=row[11],
            computed_cost_usd=row[12],
        )
        for row in rows
    ]


_UNPRICED = (
    "SELECT delta_seq, day, model, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, cost_usd, message_id, cache_write_1h_tokens, cost_source, "
    "price_version FROM message_usage"
)
_NEVER_PRICED = " WHERE cost_usd IS NULL AND price_version IS NULL AND model IS NOT NULL"
_SET_PRICE = (
    "UPDATE message_usage SET cost_usd = ?, cost_source = ?, price_version = ? WHERE delta_seq = ?"
)


def reprice(
    conn: sqlite3.Connection, price: Callable[[UsageRow], UsageRow], never_priced: bool
) -> int:
    """Price the stored usage rows again (only those never priced when
    ``never_priced``): each row's figure becomes ``price(row)``'s. Returns how
    many rows changed."""
    rows = conn.execute(_UNPRICED + (_NEVER_PRICED if never_priced else "")).fetchall()
    changed = []
    for seq, *fields in rows:
        row = UsageRow(seq, *fields)  # ``v`` carries the row's key here
        new = price(row)
        if new[7:] != row[7:]:
            changed.append((new.cost_usd, new.cost_source, new.price_version, seq))
    conn.executemany(_SET_PRICE, changed)
    return len(changed)
