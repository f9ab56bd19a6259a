"""The recorder contract: what every storage backend does, and nothing more.

A recorder stores, per thread, an append-only log of deltas numbered
``1..v``, a snapshot of the folded head, and a projection of the current
messages indexed by position. Every backend passes the same contract suite
(``tests/contract``). The :class:`~threadline.store.ThreadStore` talks only to
this interface, never to SQL.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from threadline.deltas import Delta
from threadline.model import Message, Thread, ThreadHead


@dataclass(frozen=True, slots=True)
class RecordedDelta:
    """A delta as stored: its thread, its version and when it was committed (ms)."""

    thread_id: str
    v: int
    at: int
    delta: Delta


class WriterLease(abc.ABC):
    """Exclusive right to write one thread, held until :meth:`release`.

    A lease held by a process that died must not block its successor: backends
    tie it to something the operating system or the database frees on death.
    """

    thread_id: str

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lease up. Idempotent."""


class ThreadRecorder(abc.ABC):
    """Append-only, versioned storage of thread logs."""

    @abc.abstractmethod
    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        """Atomically append ``deltas`` as versions ``expected_version+1 ...``.

        Succeeds only if the stored head is exactly ``expected_version``; else
        raises :class:`~threadline.errors.VersionConflict` and writes nothing.
        ``expected_version=0`` creates the thread: ``deltas[0]`` must be a
        ``thread:create`` for ``thread_id`` (:class:`ThreadExists` if taken).
        An unknown thread raises :class:`ThreadNotFound`; a delta that cannot
        apply raises :class:`InvalidDelta`. Returns the new head once the
        deltas are durable.
        """

    @abc.abstractmethod
    async def head(self, thread_id: str) -> ThreadHead | None:
        """The current head, or ``None`` if there is no such thread."""

    @abc.abstractmethod
    async def load(self, thread_id: str) -> Thread | None:
        """The whole current thread (head and every message), read consistently."""

    @abc.abstractmethod
    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        """The head and up to ``limit`` messages ending ``offset`` positions before
        ``before``, oldest first: positions ``[end - limit, end)`` with
        ``end = min(before, message_count) - offset``; ``before=None`` means the
        end of the thread (the newest page). Read in one snapshot. Its cost
        depends on ``limit``, not on the thread's length.
        """

    @abc.abstractmethod
    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        """The logged deltas with ``after < v <= upto``, oldest first."""

    @abc.abstractmethod
    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        """Heads by newest activity first; ``after`` is the (last_activity, id) of the
        last head of the previous page."""

    @abc.abstractmethod
    async def delete(self, thread_id: str) -> bool:
        """Remove the thread and its log. ``False`` if there was none."""

    @abc.abstractmethod
    def acquire_lease(self, thread_id: str) -> WriterLease:
        """Take the exclusive writer lease of a thread or raise :class:`WriterBusy`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and free resources. Idempotent."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages (a path, a URL, ``:memory:``)."""
