"""The roles a :class:`~threadline.tiered.TieredStore` serves through one tier:
the archive ledger (the local tier: archiving and restoring work on local
threads) and the file log (the tier that holds the thread: memory-only
threads track files in memory).

Each is a mixin over what it needs of the tiered store (:class:`TierAccess`);
the relationships, usage, search and feed roles, which merge both tiers'
answers, and the thread log itself live in :mod:`threadline.tiered`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

from threadline.files.log import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.model import ArchivedThread, LifecycleOp, ThreadHead
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.roles import ArchiveLedger, FileLog, RecordedDelta
from threadline.recorders.sync_state import LocalRecorder

if TYPE_CHECKING:
    from threadline.tiered import MemoryTier


class TierAccess(abc.ABC):
    """The tiers of a tiered store, as the role mixins below use them."""

    local: LocalRecorder
    memory: MemoryTier
    _ephemeral: MemoryRecorder
    _ephemeral_ids: set[str]

    @abc.abstractmethod
    def _is_ephemeral(self, thread_id: str) -> bool:
        """Whether the thread lives in memory only."""


class TieredArchiveLedger(TierAccess, ArchiveLedger):
    """The archive ledger of the local tier; a cached copy of an archived
    thread is dropped, and a memory-only thread's snapshot is rebuilt in memory."""

    async def begin_lifecycle(self, op: LifecycleOp) -> None:
        await self.local.begin_lifecycle(op)

    async def end_lifecycle(self, op_id: str) -> bool:
        return await self.local.end_lifecycle(op_id)

    async def pending_lifecycle(self) -> list[LifecycleOp]:
        return await self.local.pending_lifecycle()

    async def commit_archive(self, op_id: str, entries: Sequence[ArchivedThread]) -> None:
        for entry in entries:
            self.memory.drop(entry.id)
        await self.local.commit_archive(op_id, entries)

    async def commit_restore(
        self, logs: Sequence[Sequence[RecordedDelta]], op: LifecycleOp
    ) -> list[ThreadHead]:
        return await self.local.commit_restore(logs, op)

    async def archived(self, thread_id: str) -> ArchivedThread | None:
        return await self.local.archived(thread_id)

    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        return await self.local.list_archived(limit=limit, after=after)

    async def unreadable_heads(self) -> list[str]:
        return await self.local.unreadable_heads()

    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        self.memory.drop(thread_id)
        if self._is_ephemeral(thread_id):
            return await self._ephemeral.rebuild_snapshot(thread_id)
        return await self.local.rebuild_snapshot(thread_id)


class TieredFileLog(TierAccess, FileLog):
    """The file log of the tier that holds each thread; contents are looked up
    in the local tier first, then in memory."""

    def _tier(self, thread_id: str) -> FileLog:
        return self._ephemeral if self._is_ephemeral(thread_id) else self.local

    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        return await self._tier(thread_id).record_file_changes(
            thread_id, changes, contents, rollback=rollback
        )

    async def copy_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        return await self._tier(thread_id).copy_file_changes(thread_id, after, changes, contents)

    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        return await self._tier(thread_id).file_changes(
            thread_id, operation_id=operation_id, since_version=since_version
        )

    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        return await self._tier(thread_id).file_reverts(thread_id, seqs)

    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        return await self._tier(thread_id).latest_file_changes(thread_id, paths)

    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        chain = await self.local.content_chain(content_hash)
        if chain or not self._ephemeral_ids:
            return chain
        return await self._ephemeral.content_chain(content_hash)

    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        depths = await self.local.content_depths(hashes)
        if self._ephemeral_ids:
            rest = [h for h in hashes if h not in depths]
            depths.update(await self._ephemeral.content_depths(rest) if rest else {})
        return depths

    async def content_usage(self) -> ContentUsage:
        usage = await self.local.content_usage()
        if not self._ephemeral_ids:
            return usage
        more = await self._ephemeral.content_usage()
        return ContentUsage(
            contents=usage.contents + more.contents,
            stored_bytes=usage.stored_bytes + more.stored_bytes,
            raw_bytes=usage.raw_bytes + more.raw_bytes,
        )

    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        return await self._tier(thread_id).file_rollbacks(thread_id, unfinished=unfinished)

    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        await self._tier(thread_id).finish_rollback(thread_id, operation_id)
