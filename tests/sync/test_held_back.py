"""A sub-agent thread held back by its policy (memory only) is never shown as
deleted: the tree, the related threads and the server say it was not synced
(issue 14 item 3)."""

from __future__ import annotations

import random

from tests.sync.conftest import TEST_SETTINGS, FakeClock, Server
from threadline import ThreadStore
from threadline.recorders.sqlite import SqliteRecorder
from threadline.relations import HELD_BACK
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_memory_only_sub_agent_is_not_synced_rather_than_deleted(
    sync_server: Server,
) -> None:
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
    b_local = SqliteRecorder(":memory:")
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
        await a.sync.sync_once()
        await b.sync.sync_once()
        related = await on_b.get_related_threads(root)
        assert [(m.id, m.held_back) for m in related.missing] == [
            (live, HELD_BACK),
            (kept, HELD_BACK),
        ]
        server = ThreadStore(RemoteRecorder(sync_server.url, token))
        try:
            tree = await server.get_thread_tree(root)
            assert [(n.id, n.held_back) for n in tree.nodes][1:] == [
                (live, HELD_BACK),
                (kept, HELD_BACK),
            ]
        finally:
            await server.close()
    finally:
        await store.close()
        await on_b.close()
