"""The SQLite recorder's full-text index (FTS5): its schema and its SQL.

One FTS5 row per current message, whose rowid is the ``seq`` of the delta that
carries the message (the message projection maps positions to it), and one
per titled thread, whose rowid is ``-tid``. The recorder calls
:func:`index_delta` for every delta it appends and :func:`unindex_thread`
before deleting a thread, inside the same transaction, so the index never
disagrees with what is committed: a truncate removes the dropped messages'
rows before their projection rows go, a retitle replaces the title row.

Columns: ``body`` (content, or the title), ``tools`` (tool calls and
results), and, unindexed, the thread's ``tid`` and the ``message_id``.
"""

from __future__ import annotations

import sqlite3

from threadline.deltas import (
    Delta,
    MessageDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    delta_from_json,
)
from threadline.search import (
    SNIPPET_TOKENS,
    SearchHit,
    fts5_query,
    message_search_text,
    one_line,
    parse_query,
)

# Migration 5 of the SQLite recorder. It also indexes what an older database
# already holds (the JSON functions read the same fields message_search_text does).
MIGRATION = """
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

_START, _END = "\x02", "\x03"


def index_delta(conn: sqlite3.Connection, tid: int | None, seq: int | None, delta: Delta) -> None:
    """Keep the index in step with one appended delta. Call it after the delta's
    row is written (``seq`` is its rowid) and before the message projection
    changes for it."""
    if tid is None or seq is None:
        raise ValueError("index_delta needs the rowids of a written thread and delta")
    if isinstance(delta, MessageDelta):
        body, tools = message_search_text(delta.message)
        conn.execute(
            "INSERT INTO search_index (rowid, body, tools, tid, message_id) VALUES (?, ?, ?, ?, ?)",
            (seq, body, tools, tid, delta.message.id),
        )
    elif isinstance(delta, TruncateDelta):
        conn.execute(
            "DELETE FROM search_index WHERE rowid IN "
            "(SELECT delta_seq FROM messages WHERE tid = ? AND pos >= ?)",
            (tid, delta.from_index),
        )
    elif isinstance(delta, ThreadCreate | TitleDelta):
        title = delta.title if isinstance(delta, ThreadCreate) else delta.value
        conn.execute("DELETE FROM search_index WHERE rowid = ?", (-tid,))
        if title:
            _index_title(conn, tid, title)


def _index_title(conn: sqlite3.Connection, tid: int, title: str) -> None:
    conn.execute(
        "INSERT INTO search_index (rowid, body, tools, tid, message_id) VALUES (?, ?, '', ?, NULL)",
        (-tid, title, tid),
    )


def unindex_thread(conn: sqlite3.Connection, tid: int) -> None:
    """Remove a thread's rows. Call it before its message projection is deleted."""
    conn.execute(
        "DELETE FROM search_index WHERE rowid IN (SELECT delta_seq FROM messages WHERE tid = ?)",
        (tid,),
    )
    conn.execute("DELETE FROM search_index WHERE rowid = ?", (-tid,))


def reindex_thread(conn: sqlite3.Connection, tid: int) -> None:
    """Index a thread afresh from its projection and head (after a rebuild of
    them, when the old rows can no longer be found through the projection)."""
    conn.execute("DELETE FROM search_index WHERE tid = ?", (tid,))
    rows = conn.execute(
        "SELECT d.seq, d.body FROM messages m JOIN deltas d ON d.seq = m.delta_seq WHERE m.tid = ?",
        (tid,),
    ).fetchall()
    for seq, body in rows:
        index_delta(conn, tid, seq, delta_from_json(body))
    head = conn.execute(
        "SELECT json_extract(CAST(head AS TEXT), '$.title') FROM threads WHERE tid = ?", (tid,)
    ).fetchone()
    if head is not None and head[0]:
        _index_title(conn, tid, head[0])


RANKED_CANDIDATES = 1000
"""At most this many matching rows, the newest, are ranked. BM25 costs a few
microseconds a row in FTS5, so ranking every row that holds a very common
word would take as long as a scan; the newest thousand keep a search in
milliseconds, and every match of a rarer query is ranked."""


def search(conn: sqlite3.Connection, query: str, limit: int) -> list[SearchHit]:
    """The best ``limit`` hits by BM25, with snippets (read in one snapshot)."""
    expression = fts5_query(parse_query(query))
    candidates = conn.execute(
        "SELECT rowid, rank FROM search_index WHERE search_index MATCH ? "
        "ORDER BY rowid DESC LIMIT ?",
        (expression, max(limit, RANKED_CANDIDATES)),
    ).fetchall()
    best = sorted(candidates, key=lambda row: row[1])[:limit]  # stable: newest first on ties
    if not best:
        return []
    marks = ",".join("?" * len(best))
    details = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT s.rowid, t.id, s.message_id, json_extract(CAST(t.head AS TEXT), '$.title'), "
            f"snippet(search_index, -1, '{_START}', '{_END}', '…', {SNIPPET_TOKENS}) "
            "FROM search_index s JOIN threads t ON t.tid = s.tid "
            f"WHERE search_index MATCH ? AND s.rowid IN ({marks})",
            (expression, *(row[0] for row in best)),
        )
    }
    hits: list[SearchHit] = []
    for rowid, rank in best:
        thread_id, message_id, title, marked = details[rowid]
        snippet, highlights = _unmark(marked or "")
        hits.append(
            SearchHit(
                thread_id=thread_id,
                message_id=message_id,
                kind="title" if message_id is None else "message",
                snippet=snippet,
                highlights=highlights,
                score=-float(rank),
                thread_title=title,
            )
        )
    return hits


def _unmark(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Snippet text without FTS5's markers, and where they were."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    start = 0
    for piece, marker in _split_markers(marked):
        text.append(piece)
        length += len(piece)
        if marker == _START:
            start = length
        elif marker == _END:
            spans.append((start, length))
    return one_line("".join(text)), tuple(spans)


def _split_markers(marked: str) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    current: list[str] = []
    for char in marked:
        if char in (_START, _END):
            pieces.append(("".join(current), char))
            current = []
        else:
            current.append(char)
    pieces.append(("".join(current), ""))
    return pieces
