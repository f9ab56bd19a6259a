"""Sub-agent and summary threads, related threads, trees and roots (issue 3)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
)

from threadline import Message, Thread, ThreadEvent, ThreadNotFound, ThreadStore, Usage
from threadline.deltas import ChildLinkDelta, TruncateDelta
from threadline.errors import StoreCorrupt
from threadline.recorders import MemoryRecorder, SqliteRecorder, ThreadRecorder

_T = TypeVar("_T")


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    path = ":memory:" if request.param == "memory" else tmp_path / "threads.db"
    store = await ThreadStore.open(path)
    yield store
    await store.close()


async def new_root(store: ThreadStore, title: str | None = "Fix login") -> str:
    thread = await store.create_thread(
        title=title, env={"cwd": "/repo", "git_branch": "main"}, capture_environment=False
    )
    return thread.id


# -- spawning and summarising ----------------------------------------------------------


async def test_spawn_creates_a_linked_task_thread(store: ThreadStore) -> None:
    parent_id = await new_root(store)
    events: list[ThreadEvent] = []
    store.events.subscribe(events.append)
    child = await store.spawn_subagent_thread(parent_id, "Find the failing test")
    assert child.title == "Task: Find the failing test"
    assert child.parent_thread_id == parent_id
    assert child.env == {"cwd": "/repo", "git_branch": "main"}
    assert [(m.role, m.content) for m in child.messages] == [("user", "Find the failing test")]
    assert child.v == 2
    assert await store.get_thread(child.id) == child
    parent = await store.get_thread(parent_id)
    assert (parent.v, parent.child_thread_ids) == (2, (child.id,))
    assert [(e.type, e.thread_id, e.v) for e in events] == [
        ("thread:created", child.id, 2),
        ("thread:updated", parent_id, 2),
    ]


async def test_summary_thread_is_titled_after_its_source(store: ThreadStore) -> None:
    source_id = await new_root(store)
    summary = await store.create_summary_thread(source_id, "Login fixed by hashing once.")
    assert summary.title == "Summary: Fix login"
    assert summary.origin_thread_id == source_id
    assert [(m.role, m.content) for m in summary.messages] == [
        ("assistant", "Login fixed by hashing once.")
    ]
    source = await store.get_thread(source_id)
    assert (source.v, source.summary_thread_ids) == (2, (summary.id,))
    untitled = await new_root(store, title=None)
    assert (await store.create_summary_thread(untitled, "x")).title == "Summary: Conversation"


async def test_unknown_parent_or_source_raises_thread_not_found(store: ThreadStore) -> None:
    with pytest.raises(ThreadNotFound, match="T-nope"):
        await store.spawn_subagent_thread("T-nope", "task")
    with pytest.raises(ThreadNotFound, match="T-nope"):
        await store.create_summary_thread("T-nope", "summary")
    assert (await store.list_threads()).threads == ()


async def test_spawning_while_the_parent_moves_on_links_every_child(store: ThreadStore) -> None:
    parent_id = await new_root(store)
    appends = [
        store.append_message(parent_id, Message(role="user", content=str(i))) for i in range(5)
    ]
    spawns = [store.spawn_subagent_thread(parent_id, f"task {i}") for i in range(5)]
    results = await asyncio.gather(*spawns, *appends)
    children = {thread.id for thread in results if isinstance(thread, Thread)}
    parent = await store.get_thread(parent_id)
    assert set(parent.child_thread_ids) == children
    assert len(children) == 5
    assert (parent.v, len(parent.messages)) == (11, 5)


async def test_a_failed_link_leaves_no_orphan_child(tmp_path: Path) -> None:
    """The parent's link fails after the child's rows were written: one
    transaction, so neither is kept."""
    path = tmp_path / "threads.db"
    async with await ThreadStore.open(path) as store:
        parent_id = await new_root(store)
    conn = sqlite3.connect(path)
    conn.execute(
        f"CREATE TRIGGER fail_link BEFORE UPDATE ON threads WHEN NEW.id = '{parent_id}' "
        "BEGIN SELECT RAISE(ABORT, 'disk failed'); END"
    )
    conn.commit()
    conn.close()
    async with await ThreadStore.open(path) as store:
        with pytest.raises(StoreCorrupt, match="disk failed"):
            await store.spawn_subagent_thread(parent_id, "task")
        page = await store.list_threads()
        assert [h.id for h in page.threads] == [parent_id]
        assert (await store.get_thread(parent_id)).child_thread_ids == ()


# -- related threads, trees and roots --------------------------------------------------


async def test_related_threads_report_deleted_ones_as_missing(store: ThreadStore) -> None:
    root = await new_root(store)
    middle = (await store.spawn_subagent_thread(root, "middle")).id
    kept = (await store.spawn_subagent_thread(middle, "kept")).id
    gone = (await store.spawn_subagent_thread(middle, "gone")).id
    summary = (await store.create_summary_thread(middle, "sum")).id
    await store.delete_thread(gone)
    related = await store.get_related_threads(middle)
    assert related.thread.id == middle
    assert related.parent is not None
    assert related.parent.id == root
    assert related.origin is None
    assert [h.id for h in related.children] == [kept]
    assert [h.id for h in related.summaries] == [summary]
    assert [(m.id, m.relation, m.archived) for m in related.missing] == [(gone, "child", False)]
    await store.delete_thread(root)
    orphan = await store.get_related_threads(middle)
    assert orphan.parent is None
    assert [(m.id, m.relation) for m in orphan.missing] == [(root, "parent"), (gone, "child")]
    of_summary = await store.get_related_threads(summary)
    assert of_summary.origin is not None
    assert of_summary.origin.id == middle
    with pytest.raises(ThreadNotFound):
        await store.get_related_threads(gone)


async def test_tree_holds_every_depth_in_order_with_missing_nodes(store: ThreadStore) -> None:
    root = await new_root(store)
    first = (await store.spawn_subagent_thread(root, "first")).id
    summary = (await store.create_summary_thread(root, "sum")).id
    second = (await store.spawn_subagent_thread(root, "second")).id
    deep = (await store.spawn_subagent_thread(first, "deep")).id
    deeper = (await store.spawn_subagent_thread(deep, "deeper")).id
    await store.delete_thread(second)
    tree = await store.get_thread_tree(root)
    assert [(n.id, n.kind, n.depth, n.parent_id) for n in tree.nodes] == [
        (root, "root", 0, None),
        (first, "child", 1, root),
        (deep, "child", 2, first),
        (deeper, "child", 3, deep),
        (second, "child", 1, root),
        (summary, "summary", 1, root),
    ]
    assert tree.root.children == (first, second, summary)
    assert tree.missing == (second,)
    assert tree.node(deeper).head == await store.recorder.head(deeper)
    assert [n.id for n in (await store.get_thread_tree(deep)).nodes] == [deep, deeper]
    with pytest.raises(ThreadNotFound):
        await store.get_thread_tree(second)


async def test_root_of_any_thread(store: ThreadStore) -> None:
    root = await new_root(store)
    child = (await store.spawn_subagent_thread(root, "c")).id
    summary = (await store.create_summary_thread(child, "s")).id
    found = await store.get_root_thread(summary)
    assert (found.id, found.path) == (root, (summary, child, root))
    assert found.head is not None
    assert found.head.id == root
    assert (await store.get_root_thread(root)).path == (root,)
    await store.delete_thread(root)
    orphaned = await store.get_root_thread(summary)
    assert (orphaned.id, orphaned.head, orphaned.path) == (root, None, (summary, child, root))


async def test_a_hand_made_cycle_does_not_hang_the_walks(store: ThreadStore) -> None:
    a = await new_root(store)
    b = (await store.spawn_subagent_thread(a, "b")).id
    head = await store.recorder.head(b)
    assert head is not None
    await store.append_deltas(b, head.v, [ChildLinkDelta(thread_id=a)])
    tree = await store.get_thread_tree(a)
    assert [n.id for n in tree.nodes] == [a, b]
    assert (await store.get_root_thread(a)).path == (a, b)


# -- invariants under random spawn / summarise / delete sequences -------------------


class RelationshipMachine(RuleBasedStateMachine):
    """Every child's parent lists it, every listed thread exists or is reported
    missing, trees hold exactly the reachable threads without cycles, and roots
    are where the links lead."""

    threads = Bundle("threads")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = ThreadStore(self.make_recorder())
        self.alive: set[str] = set()
        self.deleted: set[str] = set()
        self.above: dict[str, tuple[str, str]] = {}  # thread -> (parent or source, kind)
        self.below: dict[str, list[tuple[str, str]]] = {}  # thread -> [(child, kind)]

    def make_recorder(self) -> ThreadRecorder:
        return MemoryRecorder()

    def run(self, work: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    @rule(target=threads)
    def create_root(self) -> str:
        thread = self.run(self.store.create_thread(capture_environment=False))
        self.alive.add(thread.id)
        self.below[thread.id] = []
        return thread.id

    @rule(target=threads, above=threads, summary=st.booleans(), text=st.text(max_size=12))
    def link_new_thread(self, above: str, summary: bool, text: str) -> object:
        make = self.store.create_summary_thread if summary else self.store.spawn_subagent_thread
        if above in self.deleted:
            with pytest.raises(ThreadNotFound):
                self.run(make(above, text))
            return multiple()
        thread = self.run(make(above, text))
        kind = "summary" if summary else "child"
        self.alive.add(thread.id)
        self.below[thread.id] = []
        self.below[above].append((thread.id, kind))
        self.above[thread.id] = (above, kind)
        return thread.id

    @rule(victim=threads)
    def delete(self, victim: str) -> None:
        if victim in self.deleted:
            with pytest.raises(ThreadNotFound):
                self.run(self.store.delete_thread(victim))
            return
        self.run(self.store.delete_thread(victim))
        self.alive.discard(victim)
        self.deleted.add(victim)

    def edges(self) -> set[tuple[str, str]]:
        """The links some living thread still records: the parent's list, or the
        child's own create."""
        return {
            (parent, child)
            for parent, children in self.below.items()
            for child, _ in children
            if parent in self.alive or child in self.alive
        }

    @invariant()
    def relationships_hold(self) -> None:
        edges = self.edges()
        for thread_id in self.alive:
            related = self.run(self.store.get_related_threads(thread_id))
            head = related.thread
            if thread_id in self.above:
                above, kind = self.above[thread_id]
                lists = "child_thread_ids" if kind == "child" else "summary_thread_ids"
                up = related.parent if kind == "child" else related.origin
                if above in self.alive:
                    assert up is not None
                    assert thread_id in getattr(up, lists)
                else:
                    assert up is None
                    assert (above, "parent" if kind == "child" else "origin") in {
                        (m.id, m.relation) for m in related.missing
                    }
            listed = set(head.child_thread_ids) | set(head.summary_thread_ids)
            present = {h.id for h in related.children} | {h.id for h in related.summaries}
            missing = {m.id for m in related.missing if m.relation in ("child", "summary")}
            assert present | missing == listed
            assert present <= self.alive
            assert missing <= self.deleted

            tree = self.run(self.store.get_thread_tree(thread_id))
            ids = [node.id for node in tree.nodes]
            assert len(ids) == len(set(ids))  # each thread once: no cycle
            reachable = {thread_id}
            frontier = [thread_id]
            while frontier:
                frontier = [c for p, c in edges if p in frontier and c not in reachable]
                reachable.update(frontier)
            assert set(ids) == reachable
            assert set(tree.missing) == reachable & self.deleted
            depth = {node.id: node.depth for node in tree.nodes}
            for node in tree.nodes[1:]:
                assert node.parent_id is not None
                assert depth[node.id] == depth[node.parent_id] + 1

            root = self.run(self.store.get_root_thread(thread_id))
            path = [thread_id]
            while path[-1] in self.above and (self.above[path[-1]][0], path[-1]) in edges:
                path.append(self.above[path[-1]][0])
            assert root.path == tuple(path)
            assert (root.head is None) == (path[-1] in self.deleted)


class SqliteRelationshipMachine(RelationshipMachine):
    def make_recorder(self) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


TestRelationshipsInMemory = RelationshipMachine.TestCase
TestRelationshipsInMemory.settings = settings(stateful_step_count=20)
TestRelationshipsOnSqlite = SqliteRelationshipMachine.TestCase
TestRelationshipsOnSqlite.settings = settings(max_examples=15, stateful_step_count=20)


async def test_migration_3_fills_links_and_usage_of_existing_threads(tmp_path: Path) -> None:
    """A database from before the projections gets them filled on open."""
    path = tmp_path / "threads.db"
    usage = Usage(model="gpt-5", input_tokens=10, output_tokens=2, cache_read_tokens=3)
    async with await ThreadStore.open(path) as store:
        root = await new_root(store)
        await store.append_message(root, Message(role="assistant", usage=usage, timestamp=5))
        child = (await store.spawn_subagent_thread(root, "c")).id
        await store.append_message(
            child, Message(role="assistant", usage=usage.model_copy(update={"cost_usd": 0.5}))
        )
        head = await store.recorder.head(child)
        assert head is not None
        await store.append_deltas(child, head.v, [TruncateDelta(from_index=0)])
        summary = (await store.create_summary_thread(child, "s")).id
        before = (
            await store.get_thread_tree(root),
            await store.get_root_thread(summary),
            await store.cost_report(root, tree=True, by="thread"),
        )
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE thread_links; DROP TABLE message_usage; "
        "DELETE FROM schema_migrations WHERE version IN (3, 10);"
    )
    conn.close()
    async with await ThreadStore.open(path) as store:
        after = (
            await store.get_thread_tree(root),
            await store.get_root_thread(summary),
            await store.cost_report(root, tree=True, by="thread"),
        )
    assert after == before
    assert before[2].total.messages == 2


async def test_rebuilding_a_snapshot_rebuilds_links_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    recorder = SqliteRecorder(path)
    async with ThreadStore(recorder) as store:
        root = await new_root(store)
        usage = Usage(model="gpt-5", input_tokens=10, output_tokens=2, cost_usd=0.5)
        await store.append_message(root, Message(role="assistant", usage=usage))
        child = (await store.spawn_subagent_thread(root, "c")).id
        before = await store.cost_report(root, tree=True), await store.get_thread_tree(root)
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM thread_links")
        conn.execute("DELETE FROM message_usage")
        conn.commit()
        conn.close()
        assert [n.id for n in (await store.get_thread_tree(root)).nodes] == [root]
        for thread_id in (root, child):
            await recorder.rebuild_snapshot(thread_id)
        assert (
            await store.cost_report(root, tree=True),
            await store.get_thread_tree(root),
        ) == before


async def test_archived_threads_are_told_apart_from_deleted_ones(tmp_path: Path) -> None:
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        root = await new_root(store)
        shelved = (await store.spawn_subagent_thread(root, "shelved")).id
        gone = (await store.spawn_subagent_thread(root, "gone")).id
        assert await store.archive_thread(shelved) == [shelved]
        await store.delete_thread(gone)
        related = await store.get_related_threads(root)
        assert [(m.id, m.archived) for m in related.missing] == [(shelved, True), (gone, False)]
        tree = await store.get_thread_tree(root)
        assert [(n.id, n.head is None, n.archived) for n in tree.nodes] == [
            (root, False, False),
            (shelved, True, True),
            (gone, True, False),
        ]
