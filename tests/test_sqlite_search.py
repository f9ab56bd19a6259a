"""The SQLite full-text index keeps no copy of the text (issue 2's bytes on
disk): its rows are read from the deltas, which are zstd-compressed when large.
Whatever path removes rows, the index stays exactly the one a fresh build from
the store would give; an index of the older form is moved to this one on open.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import logs
from threadline import ThreadStore
from threadline.deltas import (
    Delta,
    MessageDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    delta_to_json,
)
from threadline.lifecycle.archive import ColdStorage
from threadline.model import Message, ToolCall, ToolResult
from threadline.recorders import SqliteRecorder, sqlite_bodies, sqlite_schema, sqlite_search
from threadline.recorders.sync_state import SyncUpdate

LONG = "The retry loop keeps the session token in memory while the login handler waits. " * 12


def message(n: int, content: str = LONG, **extra: object) -> MessageDelta:
    return MessageDelta.of(
        Message.model_validate(
            {
                "id": f"M-{n}",
                "role": "user",
                "content": f"{content} marker{n}",
                "timestamp": 1000 + n,
                **extra,
            }
        )
    )


def tool_message(n: int) -> MessageDelta:
    call = ToolCall(id=f"c{n}", name="Edit", input={"file_path": "src/a.py", "new": LONG})
    return message(
        n,
        "editing",
        role="assistant",
        tool_calls=(call,),
        tool_results=(ToolResult(tool_call_id=f"c{n}", output={"lines": [1, 2], "ok": True}),),
    )


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    sqlite_bodies.register_functions(conn)
    sqlite_search.register_functions(conn)
    return conn


def assert_index_is_exact(path: Path) -> None:
    """Every (term, row, column, offset) of the index, and its set of rows, are
    those of an index built afresh from the messages and titles the store holds."""
    conn = connect(path)
    try:
        conn.executescript(
            """
            CREATE VIRTUAL TABLE temp.fresh USING fts5(
                body, tools, tid UNINDEXED, message_id UNINDEXED,
                tokenize = 'unicode61 remove_diacritics 2'
            );
            INSERT INTO temp.fresh (rowid, body, tools)
            SELECT d.seq, threadline_search_text(d.body, 0), threadline_search_text(d.body, 1)
            FROM messages m JOIN deltas d ON d.seq = m.delta_seq;
            INSERT INTO temp.fresh (rowid, body, tools)
            SELECT -tid, json_extract(CAST(head AS TEXT), '$.title'), '' FROM threads
            WHERE json_extract(CAST(head AS TEXT), '$.title') <> '';
            CREATE VIRTUAL TABLE temp.kept_terms USING fts5vocab(main, search_index, instance);
            CREATE VIRTUAL TABLE temp.fresh_terms USING fts5vocab(temp, fresh, instance);
            """
        )
        for kept, fresh in [
            ("SELECT * FROM temp.kept_terms", "SELECT * FROM temp.fresh_terms"),
            ("SELECT id FROM main.search_index_docsize", "SELECT id FROM temp.fresh_docsize"),
            (
                "SELECT key, title FROM search_titles",
                "SELECT -tid, json_extract(CAST(head AS TEXT), '$.title') FROM threads "
                "WHERE json_extract(CAST(head AS TEXT), '$.title') <> ''",
            ),
        ]:
            assert sorted(conn.execute(kept).fetchall()) == sorted(conn.execute(fresh).fetchall())
    finally:
        conn.close()


async def test_the_index_keeps_no_copy_of_the_text(tmp_path: Path) -> None:
    recorder = SqliteRecorder(tmp_path / "t.db")
    await recorder.append("T-1", 0, [ThreadCreate(id="T-1", title="Login"), message(1)])
    await recorder.close()
    conn = connect(tmp_path / "t.db")
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "search_index_content" not in tables
    assert {"search_index", "search_index_docsize", "search_content"} <= tables


async def test_large_bodies_are_stored_compressed_and_read_back(tmp_path: Path) -> None:
    small = message(2, "short")
    log: list[Delta] = [ThreadCreate(id="T-1"), message(1), small]
    recorder = SqliteRecorder(tmp_path / "t.db")
    await recorder.append("T-1", 0, log)
    assert [r.delta for r in await recorder.deltas("T-1")] == log
    page = await recorder.page("T-1", limit=5)
    assert page is not None
    assert page[1] == [message(1).message, small.message]
    await recorder.close()
    conn = connect(tmp_path / "t.db")
    bodies = [body for (body,) in conn.execute("SELECT body FROM deltas ORDER BY v")]
    as_json = [
        bytes(text, "utf-8")
        for (text,) in conn.execute("SELECT threadline_delta_json(body) FROM deltas ORDER BY v")
    ]
    conn.close()
    assert bodies[0] == delta_to_json(log[0])
    assert bodies[2] == delta_to_json(small)
    assert len(bodies[1]) * 2 < len(delta_to_json(log[1]))
    assert as_json == [delta_to_json(d) for d in log]


def test_bodies_round_trip_and_rows_of_plain_json_read_as_they_are() -> None:
    for body in [
        b"{}",
        delta_to_json(message(1)),
        orjson.dumps({"type": "title", "value": "x" * 600}),
    ]:
        assert sqlite_bodies.json_of(sqlite_bodies.stored(body)) == body
        assert sqlite_bodies.json_of(body) == body


async def test_the_index_stays_exact_through_every_removal(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    recorder = SqliteRecorder(path)
    store = ThreadStore(recorder, cold_storage=ColdStorage.local(tmp_path / "cold"))
    created: list[Delta] = [ThreadCreate(id="T-1", title="Login retry")]
    created += [message(n) for n in range(4)]
    await recorder.append("T-1", 0, [*created, tool_message(4)])
    await recorder.append("T-2", 0, [ThreadCreate(id="T-2", title="Other"), message(10)])
    assert_index_is_exact(path)

    # a truncate, then two retitles and a message in one append
    retitled: list[Delta] = [TitleDelta(value="Second"), TitleDelta(value="Third title")]
    await recorder.append("T-1", 6, [TruncateDelta(from_index=2), *retitled, message(5)])
    assert_index_is_exact(path)
    assert [h.message_id for h in await recorder.search("marker1")] == ["M-1"]
    assert await recorder.search("marker3") == []
    [title] = await recorder.search("third")
    assert (title.message_id, title.snippet) == (None, "Third title")

    # a rebuild after the head and the projection were damaged
    conn = connect(path)
    conn.execute("UPDATE threads SET head = json_set(head, '$.title', 'wrong') WHERE id = 'T-1'")
    conn.execute(
        "DELETE FROM messages WHERE pos = 0 AND tid = (SELECT tid FROM threads WHERE id = 'T-1')"
    )
    conn.commit()
    conn.close()
    await recorder.rebuild_snapshot("T-1")
    assert_index_is_exact(path)

    # a sync rebase drops local deltas past the shared version
    await recorder.rebase("T-1", 10, 3, [message(6, "rebased")], SyncUpdate("T-1"))
    assert_index_is_exact(path)
    assert [h.message_id for h in await recorder.search("rebased")] == ["M-6"]

    # archive, restore, delete
    await store.archive_thread("T-1")
    assert_index_is_exact(path)
    assert await recorder.search("marker1") == []
    await store.restore_thread("T-1")
    assert_index_is_exact(path)
    [hit] = await recorder.search("marker1 session")
    assert (hit.thread_id, hit.message_id) == ("T-1", "M-1")
    assert (
        hit.snippet == "…keeps the session token in memory while the login handler waits.  marker1"
    )
    assert [hit.snippet[start:end] for start, end in hit.highlights] == ["session", "marker1"]
    await store.delete_thread("T-1")
    await store.delete_thread("T-2")
    assert_index_is_exact(path)
    await store.close()
    conn = connect(path)
    assert conn.execute("SELECT count(*) FROM search_index_docsize").fetchone() == (0,)
    conn.close()


@settings(max_examples=25, deadline=None)
@given(log=logs(max_deltas=20), cuts=st.lists(st.integers(1, 20), max_size=4))
async def test_any_log_appended_in_any_chunks_is_indexed_exactly(
    log: list[Delta], cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.db"
        recorder = SqliteRecorder(path, synchronous="OFF")
        create = log[0]
        assert isinstance(create, ThreadCreate)
        start = 0
        for end in [*sorted(set(cuts)), len(log)]:
            if start < end <= len(log):
                await recorder.append(create.id, start, log[start:end])
                start = end
        assert_index_is_exact(path)
        await recorder.rebuild_snapshot(create.id)
        assert_index_is_exact(path)
        await recorder.delete(create.id)
        assert_index_is_exact(path)
        await recorder.close()


async def test_an_index_of_the_older_form_is_moved_on_open(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    recorder = SqliteRecorder(path)
    await recorder.append("T-1", 0, [ThreadCreate(id="T-1", title="Login retry"), message(1)])
    await recorder.append("T-1", 2, [tool_message(2), TruncateDelta(from_index=0), message(3)])
    await recorder.append("T-2", 0, [ThreadCreate(id="T-2", title=""), message(4, "café")])
    queries = ["login", "marker3", "cafe", "src/a.py", "token"]
    before = [await recorder.search(q) for q in queries]
    await recorder.close()
    # What a database of migration 7 holds: plain JSON bodies, the index of migration 5.
    conn = connect(path)
    conn.executescript(
        "UPDATE deltas SET body = CAST(threadline_delta_json(body) AS BLOB);"
        "DROP TABLE search_index; DROP VIEW search_content; DROP TABLE search_titles;"
        "DELETE FROM schema_migrations WHERE version = 8;"
    )
    for statement in sqlite_schema.SEARCH_MIGRATION.split(";"):
        conn.execute(statement)
    conn.commit()
    # two messages and two titles (migration 5 also indexed the empty one)
    assert conn.execute("SELECT count(*) FROM search_index_content").fetchone() == (4,)
    conn.close()

    recorder = SqliteRecorder(path)
    assert [await recorder.search(q) for q in queries] == before
    assert before[1][0].message_id == "M-3"
    assert {hit.message_id for hit in before[0]} == {"M-3", None}
    await recorder.close()
    assert_index_is_exact(path)
