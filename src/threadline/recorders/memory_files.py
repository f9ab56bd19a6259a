"""The in-memory side of file tracking, used by :class:`~threadline.recorders.MemoryRecorder`.

Plain dictionaries: the file log of each thread, the contents by hash with
a count of what refers to each (changes, and contents using it as a base),
the revert index and the rollback journal. Every check is made before
anything is stored, so a refused write leaves nothing behind.
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from threadline.errors import (
    ContentMissing,
    InvalidFileChange,
    OperationNotFound,
    VersionConflict,
)
from threadline.files.log import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
    check_copy,
    content_hashes,
)
from threadline.ids import now_ms


@dataclass
class MemoryFileLog:
    contents: dict[str, StoredContent] = field(default_factory=dict)
    references: Counter[str] = field(default_factory=Counter)
    logs: dict[str, list[FileChange]] = field(default_factory=dict)
    reverted_by: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    rollbacks: dict[str, dict[str, FileRollback]] = field(default_factory=dict)

    def record(
        self,
        thread_id: str,
        version: int,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        rollback: NewRollback | None,
    ) -> list[FileChange]:
        given = {c.hash: c for c in contents}
        needed = {c.base for c in contents if c.base is not None}
        for change in changes:
            needed.update(content_hashes(change))
        missing = sorted(h for h in needed if h not in self.contents and h not in given)
        if missing:
            raise ContentMissing(thread_id, missing)
        journal = self.rollbacks.setdefault(thread_id, {})
        if rollback is not None and rollback.operation_id in journal:
            raise InvalidFileChange(
                thread_id, rollback.operation_id, "a rollback with this id is already recorded"
            )
        log = self.logs.get(thread_id, [])
        at = now_ms()
        recorded = [
            FileChange(
                thread_id=thread_id,
                seq=len(log) + number,
                operation_id=change.operation_id,
                path=change.path,
                type=change.type,
                before=change.before,
                after=change.after,
                dirs=change.dirs,
                reverts=change.reverts,
                thread_version=version,
                at=at,
            )
            for number, change in enumerate(changes, start=1)
        ]
        for content in given.values():
            if content.hash not in self.contents:
                self.contents[content.hash] = content
                if content.base is not None:
                    self.references[content.base] += 1
        if rollback is not None:
            journal[rollback.operation_id] = FileRollback(
                thread_id=thread_id,
                operation_id=rollback.operation_id,
                undoes_operation=rollback.undoes_operation,
                after_message=rollback.after_message,
                started=now_ms(),
            )
        self.logs.setdefault(thread_id, []).extend(recorded)
        for stored in recorded:
            self.references.update(content_hashes(stored))
            for reverted in stored.reverts:
                self.reverted_by.setdefault((thread_id, reverted), []).append(stored.seq)
        return recorded

    def copy(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        log = self.logs.get(thread_id, [])
        if len(log) != after:
            raise VersionConflict(thread_id, after, len(log))
        check_copy(thread_id, after, changes)
        given = {c.hash: c for c in contents}
        needed = {c.base for c in contents if c.base is not None}
        for change in changes:
            needed.update(content_hashes(change))
        missing = sorted(h for h in needed if h not in self.contents and h not in given)
        if missing:
            raise ContentMissing(thread_id, missing)
        for content in given.values():
            if content.hash not in self.contents:
                self.contents[content.hash] = content
                if content.base is not None:
                    self.references[content.base] += 1
        self.logs.setdefault(thread_id, []).extend(changes)
        for stored in changes:
            self.references.update(content_hashes(stored))
            for reverted in stored.reverts:
                self.reverted_by.setdefault((thread_id, reverted), []).append(stored.seq)
        return after + len(changes)

    def changes(
        self, thread_id: str, operation_id: str | None, since_version: int | None
    ) -> list[FileChange]:
        return [
            c
            for c in self.logs.get(thread_id, [])
            if (operation_id is None or c.operation_id == operation_id)
            and (since_version is None or c.thread_version >= since_version)
        ]

    def reverts_of(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        log = self.logs.get(thread_id, [])
        found: set[int] = set()
        waiting = list(seqs)
        while waiting:
            for seq in self.reverted_by.get((thread_id, waiting.pop()), []):
                if seq not in found:
                    found.add(seq)
                    waiting.append(seq)
        return [log[seq - 1] for seq in sorted(found)]

    def latest(self, thread_id: str, paths: Sequence[str]) -> dict[str, FileChange]:
        wanted = set(paths)
        found: dict[str, FileChange] = {}
        for change in reversed(self.logs.get(thread_id, [])):
            if change.path in wanted and change.path not in found:
                found[change.path] = change
        return found

    def chain(self, content_hash: str) -> list[StoredContent]:
        found: list[StoredContent] = []
        content = self.contents.get(content_hash)
        while content is not None:
            found.append(content)
            content = None if content.base is None else self.contents.get(content.base)
        return found

    def depths(self, hashes: Sequence[str]) -> dict[str, int]:
        return {h: self.contents[h].depth for h in hashes if h in self.contents}

    def usage(self) -> ContentUsage:
        return ContentUsage(
            contents=len(self.contents),
            stored_bytes=sum(len(c.data) for c in self.contents.values()),
            raw_bytes=sum(c.size for c in self.contents.values()),
        )

    def journal(self, thread_id: str, unfinished: bool) -> list[FileRollback]:
        entries = self.rollbacks.get(thread_id, {}).values()
        return sorted(
            (e for e in entries if not unfinished or e.finished is None),
            key=lambda e: (e.started, e.operation_id),
        )

    def finish(self, thread_id: str, operation_id: str) -> None:
        journal = self.rollbacks.get(thread_id, {})
        entry = journal.get(operation_id)
        if entry is None:
            raise OperationNotFound(thread_id, operation_id)
        if entry.finished is None:
            journal[operation_id] = entry.model_copy(update={"finished": now_ms()})

    def forget(self, thread_id: str) -> None:
        """Drop a deleted thread's file log and journal, and the contents nothing
        refers to any more."""
        self.rollbacks.pop(thread_id, None)
        for change in self.logs.pop(thread_id, []):
            self.reverted_by.pop((thread_id, change.seq), None)
            for content_hash in content_hashes(change):
                self._release(content_hash)

    def _release(self, content_hash: str) -> None:
        waiting = [content_hash]
        while waiting:
            current = waiting.pop()
            self.references[current] -= 1
            if self.references[current] > 0:
                continue
            del self.references[current]
            content = self.contents.pop(current, None)
            if content is not None and content.base is not None:
                waiting.append(content.base)


class MemoryFileMethods(abc.ABC):
    """The file-log methods of :class:`~threadline.recorders.MemoryRecorder`,
    over a :class:`MemoryFileLog`. The recorder gives ``_check_open`` and
    ``_version``."""

    def __init__(self) -> None:
        self._files = MemoryFileLog()

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise :class:`StoreClosed` if the recorder is closed."""

    @abc.abstractmethod
    def _version(self, thread_id: str) -> int:
        """The thread's version, or :class:`ThreadNotFound`."""

    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        self._check_open()
        version = self._version(thread_id)
        return self._files.record(thread_id, version, changes, contents, rollback)

    async def copy_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        self._check_open()
        self._version(thread_id)
        return self._files.copy(thread_id, after, changes, contents)

    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        self._check_open()
        return self._files.changes(thread_id, operation_id, since_version)

    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        self._check_open()
        return self._files.reverts_of(thread_id, seqs)

    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        self._check_open()
        return self._files.latest(thread_id, paths)

    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        self._check_open()
        return self._files.chain(content_hash)

    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        self._check_open()
        return self._files.depths(hashes)

    async def content_usage(self) -> ContentUsage:
        self._check_open()
        return self._files.usage()

    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        self._check_open()
        return self._files.journal(thread_id, unfinished)

    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        self._check_open()
        self._files.finish(thread_id, operation_id)
