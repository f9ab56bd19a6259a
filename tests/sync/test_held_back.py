"""A sub-agent thread held back by its policy (memory only) is never shown as
deleted: the tree, the related threads and the server say it was not synced,
with the title, messages and cost its machine last knew (issue 14 item 3)."""

from __future__ import annotations

import asyncio
import io
import random
from contextlib import redirect_stdout
from pathlib import Path

import httpx
import pytest

from tests.sync.conftest import TEST_SETTINGS, FakeClock, Server
from threadline import Message, ThreadStore, Usage
from threadline.cli import main as cli_main
from threadline.recorders.sqlite import SqliteRecorder
from threadline.relations import HELD_BACK, LastKnown
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_memory_only_sub_agent_is_not_synced_rather_than_deleted(
    sync_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    token = await sync_server.token()
    seconds = Seconds()
    a = TieredStore(
        SqliteRecorder(":memory:"),
        remote=RemoteRecorder(sync_server.url, token),
        clock=seconds,
        sync_settings=TEST_SETTINGS,
        sync_clock=FakeClock(),
        sync_rng=random.Random(1),
    )
    store = ThreadStore(a)
    b_local = SqliteRecorder(tmp_path / "b.db")
    b = TieredStore(
        b_local,
        remote=RemoteRecorder(sync_server.url, token),
        sync_settings=TEST_SETTINGS,
        sync_clock=FakeClock(),
        sync_rng=random.Random(2),
    )
    on_b = ThreadStore(b)
    assert a.sync is not None
    assert b.sync is not None
    try:
        root = (await store.create_thread(title="root")).id
        live = (await store.spawn_subagent_thread(root, "live")).id
        usage = Usage(model="claude-sonnet-4-20250514", input_tokens=1000, output_tokens=100)
        reply = Message(role="assistant", content="found it", usage=usage)
        await store.append_message(live, reply)
        spent = (await store.thread_costs([live]))[live]
        assert spent.cost_usd > 0
        kept = (await store.spawn_subagent_thread(root, "to delete")).id
        await store.delete_thread(kept)
        tree = await store.get_thread_tree(root)
        assert [(n.id, n.held_back) for n in tree.nodes] == [
            (root, None),
            (live, None),
            (kept, None),  # deleted (memory only, but deleted by its user)
        ]
        seconds.now += 61  # the live sub-agent's memory TTL passes: it is gone here
        await store.create_thread(title="tick")
        assert await a.head(live) is None
        tree = await store.get_thread_tree(root)
        assert [(n.id, n.head is None, n.held_back) for n in tree.nodes] == [
            (root, False, None),
            (live, True, HELD_BACK),
            (kept, True, None),
        ]
        known = LastKnown(title="Task: live", messages=2, cost=spent)
        assert [n.last_known for n in tree.nodes] == [None, known, None]
        await a.sync.sync_once()
        await b.sync.sync_once()
        related = await on_b.get_related_threads(root)
        assert [(m.id, m.held_back, m.last_known) for m in related.missing] == [
            (live, HELD_BACK, known),
            (kept, HELD_BACK, None),  # deleted before it expired: nothing noted
        ]
        # B's CLI and the server's viewer show it with what A last knew.
        printed = io.StringIO()

        def tree_on_b() -> int:
            with redirect_stdout(printed):
                return cli_main(["--db", str(tmp_path / "b.db"), "tree", root])

        assert await asyncio.to_thread(tree_on_b) == 0
        line = next(x for x in printed.getvalue().splitlines() if live in x)
        assert "Task: live" in line
        assert "2 messages · $0.0045" in line  # (a * marks a computed cost)
        assert HELD_BACK in line
        assert "2 missing (and $0.0045 last known of 1 not synced)" in printed.getvalue()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=sync_server.url, headers=headers) as http:
            page = (await http.get(f"/threads/{root}")).text
        assert "Task: live</a>" in page
        assert "2 msgs · $0.0045 last known" in page
        server = ThreadStore(RemoteRecorder(sync_server.url, token))
        try:
            tree = await server.get_thread_tree(root)
            assert [(n.id, n.held_back, n.last_known) for n in tree.nodes][1:] == [
                (live, HELD_BACK, known),
                (kept, HELD_BACK, None),
            ]
        finally:
            await server.close()
    finally:
        await store.close()
        await on_b.close()
