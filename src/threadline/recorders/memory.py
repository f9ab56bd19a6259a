"""In-memory recorder: the fastest backend and the fake unit tests use.

It keeps nothing across processes; it passes the same contract suite as the
durable backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from threadline.deltas import Delta, MessageDelta, ThreadCreate, TruncateDelta, apply_head
from threadline.errors import (
    InvalidDelta,
    StoreClosed,
    ThreadExists,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.ids import now_ms
from threadline.model import Message, Thread, ThreadHead
from threadline.recorders.base import RecordedDelta, ThreadRecorder, WriterLease


@dataclass
class _Entry:
    head: ThreadHead
    log: list[RecordedDelta] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


class _MemoryLease(WriterLease):
    def __init__(self, held: set[str], thread_id: str) -> None:
        self._held = held
        self.thread_id = thread_id

    def release(self) -> None:
        self._held.discard(self.thread_id)


class MemoryRecorder(ThreadRecorder):
    def __init__(self) -> None:
        self._threads: dict[str, _Entry] = {}
        self._leases: set[str] = set()
        self._closed = False

    @property
    def location(self) -> str:
        return ":memory:"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        self._check_open()
        if not deltas:
            raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        entry = self._threads.get(thread_id)
        if expected_version == 0:
            if entry is not None:
                raise ThreadExists(thread_id)
            first = deltas[0]
            if not isinstance(first, ThreadCreate) or first.id != thread_id:
                raise InvalidDelta(f"Thread {thread_id} must start with its thread:create delta")
            head: ThreadHead | None = None
        else:
            if entry is None:
                raise ThreadNotFound(thread_id)
            if entry.head.v != expected_version:
                raise VersionConflict(thread_id, expected_version, entry.head.v)
            head = entry.head
        # Everything is computed before anything is stored: all or nothing.
        at = now_ms()
        recorded: list[RecordedDelta] = []
        for delta in deltas:
            head = apply_head(head, delta)
            recorded.append(RecordedDelta(thread_id, head.v, at, delta))
        assert head is not None
        if entry is None:
            entry = self._threads[thread_id] = _Entry(head)
        for record in recorded:
            if isinstance(record.delta, MessageDelta):
                entry.messages.append(record.delta.message)
            elif isinstance(record.delta, TruncateDelta):
                del entry.messages[record.delta.from_index :]
        entry.head = head
        entry.log.extend(recorded)
        return head

    async def head(self, thread_id: str) -> ThreadHead | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        return None if entry is None else entry.head

    async def load(self, thread_id: str) -> Thread | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        fields = entry.head.model_dump(exclude={"message_count", "last_activity", "totals"})
        return Thread.model_construct(**fields, messages=tuple(entry.messages))

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        count = len(entry.messages)
        end = max(0, (count if before is None else min(before, count)) - offset)
        return entry.head, entry.messages[max(0, end - limit) : end]

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return []
        return [r for r in entry.log[after:] if upto is None or r.v <= upto]

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        self._check_open()
        heads = sorted(
            (e.head for e in self._threads.values()),
            key=lambda h: (h.last_activity, h.id),
            reverse=True,
        )
        if after is not None:
            heads = [h for h in heads if (h.last_activity, h.id) < after]
        return heads[:limit]

    async def delete(self, thread_id: str) -> bool:
        self._check_open()
        return self._threads.pop(thread_id, None) is not None

    def acquire_lease(self, thread_id: str) -> WriterLease:
        self._check_open()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        self._leases.add(thread_id)
        return _MemoryLease(self._leases, thread_id)

    async def close(self) -> None:
        self._closed = True
