"""Archive and restore through ThreadStore: round trips, sub-agents, inactivity,
transparent restore, damaged objects, recovery of interrupted operations."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import logs, messages
from threadline import Message, ThreadStore, Usage, WriterBusy
from threadline.deltas import ChildLinkDelta, Delta, MessageDelta, ThreadCreate, TitleDelta
from threadline.errors import (
    ArchiveObjectCorrupt,
    ArchiveObjectMissing,
    ThreadArchived,
    ThreadNotFound,
    VersionConflict,
)
from threadline.ids import now_ms
from threadline.lifecycle.archive import ColdStorage, object_key, pack
from threadline.model import LifecycleOp, Thread, ThreadHead
from threadline.recorders import MemoryRecorder, RecordedDelta, SqliteRecorder, ThreadRecorder

DAY_MS = 86_400_000
BACKENDS = ("memory", "sqlite-file")


def make_store(backend: str, folder: Path, **options: bool) -> ThreadStore:
    recorder: ThreadRecorder = (
        MemoryRecorder() if backend == "memory" else SqliteRecorder(folder / "t.db")
    )
    return ThreadStore(recorder, cold_storage=ColdStorage.local(folder / "cold"), **options)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    async with make_store(request.param, tmp_path) as opened:
        yield opened


Snapshot = tuple[Thread, ThreadHead | None, list[RecordedDelta]]


async def snapshot(store: ThreadStore, thread_id: str) -> Snapshot:
    """Everything a reader can see of a thread: whole, head, log (with commit times)."""
    return (
        await store.get_thread(thread_id),
        await store.recorder.head(thread_id),
        await store.history(thread_id),
    )


async def make_thread(
    store: ThreadStore, title: str, *, age_days: float = 0, messages: int = 2, **fields: object
) -> str:
    stamp = now_ms() - int(age_days * DAY_MS)
    thread = await store.create_thread(
        title=title,
        created=stamp,
        capture_environment=False,
        messages=[
            Message(
                role="assistant",
                content=f"{title} {n} ✓",
                timestamp=stamp,
                usage=Usage(model="m", input_tokens=10, output_tokens=n, cost_usd=0.01),
            )
            for n in range(messages)
        ],
        **fields,  # type: ignore[arg-type]
    )
    return thread.id


async def spawn(store: ThreadStore, parent_id: str, title: str, *, age_days: float = 0) -> str:
    child_id = await make_thread(store, title, age_days=age_days, parent_thread_id=parent_id)
    parent = await store.recorder.head(parent_id)
    assert parent is not None
    await store.append_deltas(parent_id, parent.v, [ChildLinkDelta(thread_id=child_id)])
    return child_id


def object_path(store: ThreadStore, thread_id: str) -> Path:
    cold = store.lifecycle.cold
    [found] = list((Path(cold.url.removeprefix("file://")) / "threads").rglob("*.zst"))
    assert object_key(thread_id, found.name.removesuffix(".json.zst")) == str(
        found.relative_to(Path(cold.url.removeprefix("file://")))
    )
    return found


# -- round trips ----------------------------------------------------------------------


@settings(max_examples=25)
@given(log=logs(max_deltas=30), extra=st.lists(messages, max_size=3))
async def test_archive_then_restore_gives_the_same_thread_in_every_field_and_version(
    log: list[Delta], extra: list[Message]
) -> None:
    full = log + [MessageDelta.of(m) for m in extra]
    with tempfile.TemporaryDirectory() as folder:
        for backend in BACKENDS:
            async with make_store(backend, Path(folder) / backend) as store:
                thread_id = full[0].id if isinstance(full[0], ThreadCreate) else ""
                await store.recorder.append(thread_id, 0, full[:1])
                if len(full) > 1:
                    await store.recorder.append(thread_id, 1, full[1:])
                before = await snapshot(store, thread_id)

                assert await store.archive_thread(thread_id) == [thread_id]
                assert await store.recorder.head(thread_id) is None
                assert await store.restore_thread(thread_id) == [thread_id]

                assert await snapshot(store, thread_id) == before
                assert await store.archived_thread(thread_id) is None


async def test_a_big_unicode_thread_round_trips(store: ThreadStore) -> None:
    body = "日本語のテキスト — ünïcödé ✓ 🧵 " * 200  # about 7 KB of multi-byte text
    thread = await store.create_thread(title="大きい 🧵", capture_environment=False)
    async with await store.acquire_writer(thread.id) as writer:
        for n in range(0, 1_500, 100):
            await writer.extend(
                [
                    Message(role="user" if i % 2 else "assistant", content=f"{i} {body}")
                    for i in range(n, n + 100)
                ]
            )
    before = await snapshot(store, thread.id)
    await store.archive_thread(thread.id)
    entry = await store.lifecycle.recorder.archived(thread.id)
    assert entry is not None
    assert entry.object.raw_size > 10_000_000
    assert entry.object.size * 20 < entry.object.raw_size  # repetitive text compresses well
    await store.restore_thread(thread.id)
    assert await snapshot(store, thread.id) == before


async def test_sqlite_restore_writes_back_the_same_rows(tmp_path: Path) -> None:
    import sqlite3

    def rows() -> list[tuple[object, ...]]:
        with sqlite3.connect(tmp_path / "t.db") as conn:
            return conn.execute(
                "SELECT t.id, t.v, t.last_activity, t.head, d.v, d.at, d.body "
                "FROM deltas d JOIN threads t ON t.tid = d.tid ORDER BY t.id, d.v"
            ).fetchall()

    async with make_store("sqlite-file", tmp_path) as store:
        thread_id = await make_thread(store, "rows", messages=5)
        before = rows()
        await store.archive_thread(thread_id)
        assert rows() == []
        await store.restore_thread(thread_id)
        assert rows() == before


# -- what is archived, and how it is listed and read ----------------------------------------


async def test_archive_moves_a_thread_with_its_sub_agents_and_restore_brings_them_back(
    store: ThreadStore,
) -> None:
    parent = await make_thread(store, "parent")
    child = await spawn(store, parent, "child")
    grandchild = await spawn(store, child, "grandchild")
    other = await make_thread(store, "other")
    before = {t: await snapshot(store, t) for t in (parent, child, grandchild)}

    assert await store.archive_thread(parent) == [parent, child, grandchild]

    page = await store.list_threads()
    marked = {h.id: h.archived for h in page.threads}
    assert marked == {parent: True, child: True, grandchild: True, other: False}
    entry = await store.archived_thread(parent)
    assert entry is not None
    original = before[parent][1]
    assert original is not None
    assert entry.head == original.model_copy(update={"archived_at": entry.head.archived_at})
    assert entry.head.child_thread_ids == (child,)
    assert entry.head.totals.cost_usd == pytest.approx(0.02)
    assert [h.id for h in (await store.list_threads(include_archived=False)).threads] == [other]

    assert await store.restore_thread(parent) == [parent, child, grandchild]
    assert {t: await snapshot(store, t) for t in before} == before


async def test_restoring_a_sub_agent_brings_back_its_own_sub_agents_only(
    store: ThreadStore,
) -> None:
    parent = await make_thread(store, "parent")
    child = await spawn(store, parent, "child")
    grandchild = await spawn(store, child, "grandchild")
    await store.archive_thread(parent)

    assert await store.restore_thread(child) == [child, grandchild]
    assert await store.archived_thread(parent) is not None
    assert await store.restore_thread(child) == []  # already active


async def test_archive_inactive_threads_moves_only_wholly_inactive_families(
    store: ThreadStore,
) -> None:
    old = await make_thread(store, "old", age_days=40)
    old_child = await spawn(store, old, "old child", age_days=40)
    busy_parent = await make_thread(store, "old parent of a recent child", age_days=40)
    await spawn(store, busy_parent, "recent child", age_days=1)
    recent = await make_thread(store, "recent", age_days=2)
    held = await make_thread(store, "old but written to", age_days=50)
    writer = await store.acquire_writer(held)
    dry_run = await store.inactive_threads(timedelta(days=30))
    seen: list[tuple[int, int]] = []

    archived = await store.archive_inactive_threads(
        older_than=timedelta(days=30), progress=lambda done, total: seen.append((done, total))
    )

    assert [[h.id for h in family] for family in dry_run] == [[held], [old, old_child]]
    assert sorted(archived) == sorted([old, old_child])
    assert seen[-1] == (3, 3)
    assert await store.archived_thread(held) is None
    await writer.dispose()
    for thread_id in (busy_parent, recent, held):
        assert await store.recorder.head(thread_id) is not None


async def test_reading_an_archived_thread_restores_it_transparently(store: ThreadStore) -> None:
    thread_id = await make_thread(store, "read me", messages=3)
    before = await snapshot(store, thread_id)
    await store.archive_thread(thread_id)
    page = await store.load_thread(thread_id, limit=2)
    assert [m.content for m in page.messages] == ["read me 1 ✓", "read me 2 ✓"]
    assert await snapshot(store, thread_id) == before


async def test_a_store_that_does_not_restore_on_read_says_the_thread_is_archived(
    tmp_path: Path,
) -> None:
    async with make_store("sqlite-file", tmp_path, restore_on_read=False) as store:
        thread_id = await make_thread(store, "cold")
        await store.archive_thread(thread_id)
        with pytest.raises(ThreadArchived, match=f"Thread {thread_id} is archived .*restore"):
            await store.get_thread(thread_id)
        with pytest.raises(ThreadArchived):
            await store.history(thread_id)
        with pytest.raises(ThreadNotFound):
            await store.get_thread("T-unknown")
        assert await store.restore_thread(thread_id) == [thread_id]
        assert (await store.get_thread(thread_id)).title == "cold"


async def test_archive_refuses_a_thread_whose_writer_is_held(store: ThreadStore) -> None:
    thread_id = await make_thread(store, "held")
    async with await store.acquire_writer(thread_id):
        with pytest.raises(WriterBusy):
            await store.archive_thread(thread_id)
    assert await store.archive_thread(thread_id) == [thread_id]
    assert await store.archive_thread(thread_id) == []
    with pytest.raises(ThreadNotFound):
        await store.archive_thread("T-unknown")


async def test_an_append_during_the_archive_keeps_the_thread_active_and_leaves_nothing(
    store: ThreadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = await make_thread(store, "racing")
    cold = store.lifecycle.cold
    original_put = cold.put

    async def put_then_append(key: str, data: bytes) -> None:
        await original_put(key, data)
        head = await store.recorder.head(thread_id)
        assert head is not None
        await store.append_deltas(thread_id, head.v, [TitleDelta(value="written meanwhile")])

    monkeypatch.setattr(cold, "put", put_then_append)
    with pytest.raises(VersionConflict):
        await store.archive_thread(thread_id)

    assert (await store.get_thread(thread_id)).title == "written meanwhile"
    assert await store.archived_thread(thread_id) is None
    assert await store.lifecycle.recorder.pending_lifecycle() == []
    assert await cold.keys() == []


# -- damaged archives ------------------------------------------------------------------


async def test_a_corrupted_object_names_the_thread_and_object_and_loses_nothing(
    tmp_path: Path,
) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        damaged = await make_thread(store, "damaged")
        await store.archive_thread(damaged)
        path = object_path(store, damaged)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        intact = await make_thread(store, "intact")
        await store.archive_thread(intact)

        with pytest.raises(ArchiveObjectCorrupt) as raised:
            await store.get_thread(damaged)
        assert raised.value.thread_id == damaged
        assert raised.value.object_url == path.as_uri()
        assert f"The archive object {path.as_uri()} of thread {damaged} is damaged" in str(
            raised.value
        )
        assert await store.archived_thread(damaged) is not None  # still archived, as it was
        assert path.read_bytes() == bytes(data)
        assert await store.restore_thread(intact) == [intact]


async def test_a_missing_object_names_the_thread_and_object_and_loses_nothing(
    tmp_path: Path,
) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        parent = await make_thread(store, "parent")
        child = await spawn(store, parent, "child")
        await store.archive_thread(parent)
        entry = await store.archived_thread(child)
        assert entry is not None
        url = store.lifecycle.cold.url_of(entry.object.key)
        Path(url.removeprefix("file://")).unlink()  # noqa: ASYNC240

        with pytest.raises(ArchiveObjectMissing, match=f"{url} of thread {child} is missing"):
            await store.restore_thread(parent)
        assert await store.archived_thread(parent) is not None
        assert await store.restore_thread(parent, with_subagents=False) == [parent]
        assert (await store.get_thread(parent)).child_thread_ids == (child,)
        report = await store.doctor()
        assert [(f.check, f.subject) for f in report.problems] == [("archive", child)]


# -- recovery of interrupted operations ------------------------------------------------


async def interrupted_archive(store: ThreadStore, thread_id: str, *, put: bool) -> LifecycleOp:
    """The state a crash leaves between recording an archive and committing it."""
    log = await store.recorder.deltas(thread_id)
    packed = pack(log, "op-crashed")
    op = LifecycleOp(id="op-crashed", kind="archive", started=1, objects=(packed.object,))
    await store.lifecycle.recorder.begin_lifecycle(op)
    if put:
        await store.lifecycle.cold.put(packed.object.key, packed.data)
    return op


async def test_recovery_finishes_an_archive_whose_objects_are_intact(store: ThreadStore) -> None:
    thread_id = await make_thread(store, "half moved")
    before = await snapshot(store, thread_id)
    await interrupted_archive(store, thread_id, put=True)

    done = await store.recover()

    assert done == [f"finished the interrupted archive of {thread_id}"]
    assert await store.recorder.head(thread_id) is None
    assert await store.archived_thread(thread_id) is not None
    assert await store.lifecycle.recorder.pending_lifecycle() == []
    await store.restore_thread(thread_id)
    assert await snapshot(store, thread_id) == before


async def test_recovery_undoes_an_archive_whose_object_was_not_written(
    store: ThreadStore,
) -> None:
    thread_id = await make_thread(store, "barely started")
    await interrupted_archive(store, thread_id, put=False)

    done = await store.recover()

    assert done == [f"undid the interrupted archive of {thread_id}: it stays active"]
    assert await store.recorder.head(thread_id) is not None
    assert await store.lifecycle.recorder.pending_lifecycle() == []
    assert await store.lifecycle.cold.keys() == []


async def test_recovery_leaves_an_archive_whose_leases_are_held(store: ThreadStore) -> None:
    thread_id = await make_thread(store, "in progress")
    op = await interrupted_archive(store, thread_id, put=True)
    lease = store.recorder.acquire_lease(thread_id)
    assert await store.recover() == []
    assert await store.lifecycle.recorder.pending_lifecycle() == [op]
    lease.release()


async def test_recovery_deletes_the_objects_of_a_committed_restore(store: ThreadStore) -> None:
    thread_id = await make_thread(store, "restored")
    await store.archive_thread(thread_id)
    entry = await store.archived_thread(thread_id)
    assert entry is not None
    log = await store.lifecycle.read_archived_log(entry)
    op = LifecycleOp(id="op-r", kind="restore", started=1, objects=(entry.object,))
    await store.lifecycle.recorder.commit_restore([log], op)  # then the crash, before the cleanup

    assert await store.recover() == [
        f"finished the restore of {thread_id}: deleted its 1 archive object(s)"
    ]
    assert await store.lifecycle.cold.keys() == []
    assert await store.lifecycle.recorder.pending_lifecycle() == []


async def test_open_recovers_and_logs_what_it_did(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cold = ColdStorage.local(tmp_path / "cold")
    async with ThreadStore(SqliteRecorder(tmp_path / "t.db"), cold_storage=cold) as store:
        thread_id = await make_thread(store, "crashed")
        await interrupted_archive(store, thread_id, put=True)
    with caplog.at_level("WARNING", logger="threadline.lifecycle.archive"):
        async with await ThreadStore.open(tmp_path / "t.db", archive_url=cold.url) as store:
            assert await store.archived_thread(thread_id) is not None
    assert f"recovery: finished the interrupted archive of {thread_id}" in caplog.messages
