"""Issue 14's "done when", end to end: a real server and two homes, A and B.
Import the agent sessions on A (with their sub-agent and summary threads, and
file changes), sync A, then B: on B and on the server every thread's cost,
message count, log, tree and file changes equal A's; a delete on A is gone on
B after sync; a delete racing an append on B is not lost silently."""

from __future__ import annotations

from pathlib import Path

from tests.contract.filelog_suite import ONE, TWO, change
from tests.importers.conftest import FIXTURES, SAMPLES
from tests.sync.conftest import Server, service
from threadline import ThreadStore
from threadline.deltas import MessageDelta
from threadline.importers import import_claude_code, import_codex
from threadline.model import Message
from threadline.recorders.sqlite import SqliteRecorder
from threadline.sync.client import RemoteRecorder


async def all_ids(recorder: SqliteRecorder | RemoteRecorder) -> list[str]:
    heads = await recorder.list_heads(limit=100_000)
    return sorted(h.id for h in heads)


async def snapshot(store: ThreadStore, thread_id: str) -> tuple[object, ...]:
    """What must be equal everywhere for one thread."""
    recorder = store.recorder
    head = await recorder.head(thread_id)
    assert head is not None
    log = [(r.v, r.delta) for r in await recorder.deltas(thread_id)]
    tree = await store.get_thread_tree(thread_id)
    files = await store.recorder.file_changes(thread_id)  # type: ignore[attr-defined]
    cost = (await store.thread_costs([thread_id]))[thread_id]
    return head.message_count, head.v, log, tree, files, cost


async def test_every_thread_is_the_same_on_a_the_server_and_b(
    sync_server: Server, tmp_path: Path
) -> None:
    token = await sync_server.token()
    a_local = SqliteRecorder(tmp_path / "a.db")
    b_local = SqliteRecorder(tmp_path / "b.db")
    a, b = ThreadStore(a_local), ThreadStore(b_local)
    a_sync, b_sync = (
        service(a_local, sync_server, token, 1),
        service(b_local, sync_server, token, 2),
    )
    server = RemoteRecorder(sync_server.url, token)
    on_the_server = ThreadStore(server)
    try:
        claude = [FIXTURES / "claude_code"]
        codex = [FIXTURES / "codex"]
        if (SAMPLES / "claude-code").exists():
            claude.append(SAMPLES / "claude-code")
        if (SAMPLES / "codex").exists():
            codex.append(SAMPLES / "codex")
        imported = await import_claude_code(a, claude)
        await import_codex(a, codex)
        assert imported.subagent_threads > 0
        ids = await all_ids(a_local)
        roots = [
            h.id for h in await a_local.list_heads(limit=100_000) if h.parent_thread_id is None
        ]
        # An edit recorded on A, with its contents.
        edited = roots[0]
        await a_local.record_file_changes(
            edited,
            [change("op-1", "a.txt", None, ONE), change("op-2", "a.txt", ONE, TWO)],
            [
                ONE,
                TWO,
            ],
        )

        # Every file change travels: the edit above and those the importers
        # recorded from the sessions' Edit/Write/apply_patch calls.
        recorded = sum([len(await a_local.file_changes(i)) for i in ids])
        assert recorded >= 2
        report = await a_sync.sync_once()
        assert report.failed == {}
        assert report.files_pushed == recorded
        report = await b_sync.sync_once()
        assert report.failed == {}
        assert report.files_pulled == recorded

        assert await all_ids(b_local) == ids
        assert await all_ids(server) == ids
        for thread_id in ids:
            mine = await snapshot(a, thread_id)
            assert await snapshot(b, thread_id) == mine, thread_id
            on_server = await server.head(thread_id)
            assert on_server is not None
            assert on_server.message_count == mine[0]
            assert (await on_the_server.thread_costs([thread_id]))[thread_id] == mine[5]
            assert (await server.read_file_log(thread_id)).changes == mine[4]
        states = await b_local.sync_states(ids)
        assert {s.status for s in states.values()} == {"synced"}

        # A delete on A (the whole tree) is gone on B after sync.
        tree = await a.get_thread_tree(edited)
        gone = await a.delete_thread(edited, tree=True)
        assert sorted(gone) == sorted(n.id for n in tree.nodes if n.head is not None)
        assert (await a_sync.sync_once()).deleted == len(gone)
        await b_sync.sync_once()
        assert not set(await all_ids(b_local)) & set(gone)
        assert not set(await all_ids(server)) & set(gone)

        # A delete racing an append on B is not lost silently: the append wins,
        # and A's status says so.
        raced = next(i for i in roots if i not in gone)
        head = await b_local.head(raced)
        assert head is not None
        late = Message(id="M-late", role="user", content="one more thing", timestamp=head.v)
        await b_local.append(raced, head.v, [MessageDelta.of(late)])
        await b_sync.sync_once()
        await a.delete_thread(raced)
        report = await a_sync.sync_once()
        assert report.conflicts == [raced]
        back = await a_local.load(raced)
        assert back is not None
        assert back.messages[-1].id == "M-late"
        status = (await a_local.sync_states([raced]))[raced].status
        assert status.startswith("conflict: the delete of")
        assert await snapshot(a, raced) == await snapshot(b, raced)
    finally:
        await server.close()
        await a_sync.remote.close()
        await b_sync.remote.close()
        await a.close()
        await b.close()
