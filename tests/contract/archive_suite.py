"""The contract of the :class:`~threadline.recorders.roles.ArchiveLedger` role:
archived metadata, whole-log restore, rebuilt snapshots and the records of
lifecycle operations in progress."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.filelog_suite import ONE, change
from tests.contract.suite import msg, rich_message
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    fold,
)
from threadline.errors import InvalidDelta, ThreadExists, ThreadNotFound, VersionConflict
from threadline.model import ArchivedObject, ArchivedThread, LifecycleOp, ThreadHead
from threadline.recorders.roles import ArchiveLedger, ChangeFeed, FileLog, RecordedDelta


def object_of(head: ThreadHead, key: str = "threads/k") -> ArchivedObject:
    return ArchivedObject(
        thread_id=head.id, key=f"{key}/{head.id}", checksum="0" * 64, size=1, raw_size=2, v=head.v
    )


def archive_op(op_id: str, *heads: ThreadHead, started: int = 1) -> LifecycleOp:
    return LifecycleOp(
        id=op_id, kind="archive", started=started, objects=tuple(object_of(h) for h in heads)
    )


def entry_of(head: ThreadHead, archived_at: int = 9_000) -> ArchivedThread:
    return ArchivedThread(
        head=head.model_copy(update={"archived_at": archived_at}), object=object_of(head)
    )


class ArchiveLedgerContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> ArchiveLedger:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[ArchiveLedger]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    async def create(
        self, recorder: ArchiveLedger, thread_id: str = "T-1", messages: int = 3
    ) -> list[RecordedDelta]:
        log: list[Delta] = [ThreadCreate(id=thread_id, title="first", created=500)]
        log += [MessageDelta.of(msg(i)) for i in range(messages)]
        await recorder.append(thread_id, 0, log)
        await recorder.append(
            thread_id,
            len(log),
            [MessageDelta.of(rich_message()), TruncateDelta(from_index=1), TitleDelta(value="t")],
        )
        return await recorder.deltas(thread_id)

    async def archive(self, recorder: ArchiveLedger, *thread_ids: str) -> list[ArchivedThread]:
        heads = [await recorder.head(thread_id) for thread_id in thread_ids]
        assert all(heads)
        entries = [entry_of(head) for head in heads if head is not None]
        await recorder.begin_lifecycle(archive_op("op-archive", *(e.head for e in entries)))
        await recorder.commit_archive("op-archive", entries)
        return entries

    # -- operation records -----------------------------------------------------

    async def test_lifecycle_ops_are_recorded_until_ended(self, recorder: ArchiveLedger) -> None:
        await self.create(recorder)
        head = await recorder.head("T-1")
        assert head is not None
        later, earlier = archive_op("op-b", head, started=20), archive_op("op-a", head, started=10)
        await recorder.begin_lifecycle(later)
        await recorder.begin_lifecycle(earlier)
        assert await recorder.pending_lifecycle() == [earlier, later]
        assert await recorder.end_lifecycle("op-a") is True
        assert await recorder.end_lifecycle("op-a") is False
        assert await recorder.pending_lifecycle() == [later]

    # -- archiving -------------------------------------------------------------

    async def test_commit_archive_replaces_the_thread_by_its_metadata(
        self, recorder: ArchiveLedger
    ) -> None:
        await self.create(recorder)
        await self.create(recorder, "T-2")
        [entry] = await self.archive(recorder, "T-1")
        assert await recorder.head("T-1") is None
        assert await recorder.load("T-1") is None
        assert await recorder.deltas("T-1") == []
        assert await recorder.page("T-1", limit=5) is None
        assert await recorder.archived("T-1") == entry
        assert await recorder.archived("T-2") is None
        assert await recorder.pending_lifecycle() == []
        assert [h.id for h in await recorder.list_heads(limit=10)] == ["T-2"]
        assert await recorder.list_archived(limit=10) == [entry]

    async def test_commit_archive_at_a_stale_version_changes_nothing(
        self, recorder: ArchiveLedger
    ) -> None:
        await self.create(recorder)
        head = await recorder.head("T-1")
        assert head is not None
        op = archive_op("op-1", head)
        await recorder.begin_lifecycle(op)
        await recorder.append("T-1", head.v, [TitleDelta(value="moved on")])
        with pytest.raises(VersionConflict) as raised:
            await recorder.commit_archive("op-1", [entry_of(head)])
        assert (raised.value.expected, raised.value.actual) == (head.v, head.v + 1)
        assert await recorder.archived("T-1") is None
        assert [r.v for r in await recorder.deltas("T-1")] == list(range(1, head.v + 2))
        assert await recorder.pending_lifecycle() == [op]

    async def test_commit_archive_is_all_or_nothing_across_threads(
        self, recorder: ArchiveLedger
    ) -> None:
        await self.create(recorder)
        head = await recorder.head("T-1")
        assert head is not None
        ghost = head.model_copy(update={"id": "T-ghost"})
        with pytest.raises(ThreadNotFound):
            await recorder.commit_archive("op-1", [entry_of(head), entry_of(ghost)])
        assert await recorder.head("T-1") == head
        assert await recorder.archived("T-1") is None

    async def test_an_archived_id_stays_taken(self, recorder: ArchiveLedger) -> None:
        await self.create(recorder)
        await self.archive(recorder, "T-1")
        with pytest.raises(ThreadExists):
            await recorder.append("T-1", 0, [ThreadCreate(id="T-1")])
        with pytest.raises(ThreadNotFound):
            await recorder.append("T-1", 6, [TitleDelta(value="x")])

    async def test_archiving_is_not_a_change_and_restoring_is(
        self, recorder: ArchiveLedger
    ) -> None:
        if not isinstance(recorder, ChangeFeed):
            pytest.skip(f"{type(recorder).__name__} has no change feed")
        feed = recorder
        log = await self.create(recorder)
        await self.create(recorder, "T-2")
        cursor = (await feed.changes_since(0, limit=100))[-1].cursor
        await self.archive(recorder, "T-1")
        assert await feed.changes_since(cursor, limit=100) == []  # no tombstone
        restore = LifecycleOp(id="op-r", kind="restore", started=5, objects=())
        await recorder.commit_restore([log], restore)
        [restored] = await feed.changes_since(cursor, limit=100)
        assert (restored.thread_id, restored.v, restored.deleted) == ("T-1", len(log), False)

    async def test_archiving_keeps_the_file_log(self, recorder: ArchiveLedger) -> None:
        if not isinstance(recorder, FileLog):
            pytest.skip(f"{type(recorder).__name__} has no file log")
        files = recorder
        log = await self.create(recorder)
        recorded = await files.record_file_changes(
            "T-1", [change("op-1", "a.txt", None, ONE)], [ONE]
        )
        await self.archive(recorder, "T-1")
        assert await files.file_changes("T-1") == recorded
        assert [c.hash for c in await files.content_chain(ONE.hash)] == [ONE.hash]
        with pytest.raises(ThreadNotFound):
            await files.record_file_changes("T-1", [change("op-2", "b.txt", None, ONE)], [])
        restore = LifecycleOp(id="op-r", kind="restore", started=5, objects=())
        await recorder.commit_restore([log], restore)
        assert await files.file_changes("T-1") == recorded

    async def test_list_archived_pages_by_newest_activity(self, recorder: ArchiveLedger) -> None:
        for i in range(4):
            await recorder.append(f"T-{i}", 0, [ThreadCreate(id=f"T-{i}", created=100 + i)])
        await self.archive(recorder, "T-0", "T-1", "T-2", "T-3")
        first = await recorder.list_archived(limit=3)
        assert [e.id for e in first] == ["T-3", "T-2", "T-1"]
        last = first[-1].head
        rest = await recorder.list_archived(limit=3, after=(last.last_activity, last.id))
        assert [e.id for e in rest] == ["T-0"]

    # -- restoring -------------------------------------------------------------

    async def test_commit_restore_puts_the_log_back_exactly(self, recorder: ArchiveLedger) -> None:
        log = await self.create(recorder)
        head = await recorder.head("T-1")
        thread = await recorder.load("T-1")
        assert head is not None
        await self.archive(recorder, "T-1")
        op = LifecycleOp(id="op-r", kind="restore", started=5, objects=(object_of(head),))

        heads = await recorder.commit_restore([log], op)

        assert heads == [head]
        assert await recorder.deltas("T-1") == log  # the same versions, deltas and times
        assert await recorder.head("T-1") == head
        assert await recorder.load("T-1") == thread == fold(r.delta for r in log)
        page = await recorder.page("T-1", limit=2)
        assert page is not None
        assert page[1] == list(fold(r.delta for r in log).messages[-2:])
        assert await recorder.archived("T-1") is None
        assert await recorder.pending_lifecycle() == [op]
        after = await recorder.append("T-1", len(log), [MessageDelta.of(msg(99))])
        assert after.v == len(log) + 1

    async def test_commit_restore_refuses_what_is_not_archived_and_changes_nothing(
        self, recorder: ArchiveLedger
    ) -> None:
        log = await self.create(recorder)
        other = await self.create(recorder, "T-2")
        await self.archive(recorder, "T-2")
        op = LifecycleOp(id="op-r", kind="restore", started=5, objects=())
        with pytest.raises(ThreadExists):
            await recorder.commit_restore([other, log], op)  # T-1 is active
        ghost = [RecordedDelta("T-9", 1, 1, ThreadCreate(id="T-9"))]
        with pytest.raises(ThreadNotFound):
            await recorder.commit_restore([other, ghost], op)
        with pytest.raises(VersionConflict):
            await recorder.commit_restore([other[:-1]], op)
        with pytest.raises(InvalidDelta):
            await recorder.commit_restore([other[1:]], op)
        assert await recorder.head("T-2") is None
        assert await recorder.archived("T-2") is not None
        assert await recorder.pending_lifecycle() == []

    async def test_restore_brings_linked_threads_back_together(
        self, recorder: ArchiveLedger
    ) -> None:
        parent = await self.create(recorder, "T-p")
        await recorder.append("T-c", 0, [ThreadCreate(id="T-c", parent_thread_id="T-p")])
        await recorder.append("T-p", len(parent), [ChildLinkDelta(thread_id="T-c")])
        logs = [await recorder.deltas("T-p"), await recorder.deltas("T-c")]
        await self.archive(recorder, "T-p", "T-c")
        op = LifecycleOp(id="op-r", kind="restore", started=5, objects=())
        await recorder.commit_restore(logs, op)
        assert [await recorder.deltas("T-p"), await recorder.deltas("T-c")] == logs
        restored = await recorder.head("T-p")
        assert restored is not None
        assert restored.child_thread_ids == ("T-c",)

    # -- snapshots ---------------------------------------------------------------

    async def test_rebuild_snapshot_recomputes_the_same_head_and_messages(
        self, recorder: ArchiveLedger
    ) -> None:
        log = await self.create(recorder)
        head = await recorder.head("T-1")
        assert await recorder.rebuild_snapshot("T-1") == head
        assert await recorder.load("T-1") == fold(r.delta for r in log)
        assert await recorder.rebuild_snapshot("T-none") is None
