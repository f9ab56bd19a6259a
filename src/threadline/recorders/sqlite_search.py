"""The SQLite recorder's full-text index (FTS5): its schema and its SQL.

One FTS5 row per current message, whose rowid is the ``seq`` of the delta that
carries the message (the message projection maps positions to it), and one
per titled thread, whose rowid is ``-tid``. The recorder calls
:func:`index_messages`, :func:`unindex_from` and :func:`set_title` with what
the append planner (:mod:`threadline.planner`) says an append adds, cuts and
retitles, and :func:`unindex_thread` before deleting a thread's log, inside
the same transaction, so the index never disagrees with what is committed: a
truncate removes the dropped messages' rows before their projection rows go,
a retitle replaces the title row.

Columns: ``body`` (content, or the title), ``tools`` (tool calls and
results), and, unindexed, the thread's ``tid`` and the ``message_id``.

The index keeps no copy of the text (migration 8, for issue 2's bytes on disk:
the copy was as large as the log). It is an external-content table over the
view ``search_content``: a message row's text is computed from its delta's
body by ``threadline_search_text`` (:func:`register_functions`), the same
:func:`~threadline.search.message_search_text` the appends index, so snippets
and highlights read what was indexed; a title row's text is in
``search_titles``, which changes only with the index. FTS5 cannot see what a
row held when it is removed, so every removal is a ``'delete'`` command given
the row's indexed values, computed from that same content while it is still
there: before a thread's deltas go, before a retitle replaces the title.
FTS5's ``'rebuild'`` and ``'integrity-check'`` commands must not be used: the
view holds every delta, truncated and non-message ones included
(``PRAGMA integrity_check`` checks only the structure of such an index).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from threadline.deltas import MessageAmendDelta, MessageDelta
from threadline.planner import MessageRow
from threadline.recorders.sqlite_bodies import delta_of
from threadline.search import (
    SNIPPET_TOKENS,
    SearchHit,
    fts5_query,
    message_search_text,
    one_line,
    parse_query,
)

# The indexed values of the message rows of the deltas ``d`` that follow, as
# the view gives them (SQLite does not push an IN or a join into a UNION ALL
# view, so a removal of many rows reads the deltas directly).
_UNINDEX_MESSAGES = """
INSERT INTO search_index (search_index, rowid, body, tools, tid, message_id)
SELECT 'delete', d.seq, threadline_search_text(d.body, 0), threadline_search_text(d.body, 1),
       d.tid, threadline_search_text(d.body, 2)
"""

_START, _END = "\x02", "\x03"

_SearchText = Callable[[bytes | None, int], str | None]


def register_functions(conn: sqlite3.Connection) -> None:
    """Install ``threadline_search_text(body, column)`` on ``conn``: column 0, 1
    or 2 (content, tools, message id) of the message delta stored as ``body``,
    NULL for any other delta."""
    conn.create_function("threadline_search_text", 2, _search_text(), deterministic=True)


def _search_text() -> _SearchText:
    # FTS5 and the statements above read the three columns of a row one after
    # the other: decode each body once. One function per connection, and a
    # connection is used by one thread at a time.
    last: tuple[bytes, tuple[str, str, str] | None] | None = None

    def column(body: bytes | None, number: int) -> str | None:
        nonlocal last
        if body is None:
            return None
        if last is None or last[0] != body:
            delta = delta_of(body)
            if isinstance(delta, MessageDelta | MessageAmendDelta):
                last = (body, (*message_search_text(delta.message), delta.message.id))
            else:
                last = (body, None)
        return None if last[1] is None else last[1][number]

    return column


_INDEX_MESSAGE = (
    "INSERT INTO search_index (rowid, body, tools, tid, message_id) VALUES (?, ?, ?, ?, ?)"
)


def index_messages(
    conn: sqlite3.Connection,
    tid: int,
    rows: Sequence[MessageRow],
    seqs: Sequence[int],
    first_v: int,
) -> None:
    """Index the messages of a plan's rows; ``seqs[v - first_v]`` is the rowid of
    the delta of version ``v``. The planner computed the text
    (:func:`~threadline.search.message_search_text`, which
    ``threadline_search_text`` reads back from the body)."""
    conn.executemany(
        _INDEX_MESSAGE,
        [(seqs[r.v - first_v], r.content, r.tools, tid, r.message.id) for r in rows],
    )


def unindex_from(conn: sqlite3.Connection, tid: int, cut: int) -> None:
    """Remove the rows of the thread's messages at positions ``>= cut``; call it
    before their projection rows go."""
    conn.execute(
        _UNINDEX_MESSAGES + "FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
        "WHERE m.tid = ? AND m.pos >= ?",
        (tid, cut),
    )


def unindex_at(conn: sqlite3.Connection, tid: int, pos: int) -> None:
    """Remove the row of the thread's message at position ``pos`` (before an
    amendment points the position at another delta)."""
    conn.execute(
        _UNINDEX_MESSAGES + "FROM messages m JOIN deltas d ON d.seq = m.delta_seq "
        "WHERE m.tid = ? AND m.pos = ?",
        (tid, pos),
    )


def set_title(conn: sqlite3.Connection, tid: int, title: str | None) -> None:
    """Make ``title`` the thread's title document (none for no title)."""
    old = conn.execute("SELECT title FROM search_titles WHERE key = ?", (-tid,)).fetchone()
    if old is not None:
        if old[0] == title:
            return
        conn.execute(
            "INSERT INTO search_index (search_index, rowid, body, tools, tid, message_id) "
            "VALUES ('delete', ?, ?, '', ?, NULL)",
            (-tid, old[0], tid),
        )
        conn.execute("DELETE FROM search_titles WHERE key = ?", (-tid,))
    if title:
        conn.execute("INSERT INTO search_titles (key, title) VALUES (?, ?)", (-tid, title))
        conn.execute(
            "INSERT INTO search_index (rowid, body, tools, tid, message_id) "
            "VALUES (?, ?, '', ?, NULL)",
            (-tid, title, tid),
        )


def unindex_thread(conn: sqlite3.Connection, tid: int) -> None:
    """Remove a thread's rows. Call it before any of its deltas is deleted.

    The rows are found through FTS5's ``search_index_docsize`` (one row per
    indexed rowid), not the message projection, so that this also holds
    after the projection was damaged (see :func:`reindex_thread`), and a second
    call removes nothing.
    """
    indexed = conn.execute(
        "SELECT d.seq FROM deltas d JOIN search_index_docsize z ON z.id = d.seq WHERE d.tid = ?",
        (tid,),
    ).fetchall()  # read before the removals change search_index_docsize
    conn.executemany(_UNINDEX_MESSAGES + "FROM deltas d WHERE d.seq = ?", indexed)
    set_title(conn, tid, None)


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
