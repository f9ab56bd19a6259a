"""The sync ledger: what a local recorder remembers about syncing with a server.

Per thread, the ledger keeps ``synced_v``: the local log's versions
``1..synced_v`` are on the server, delta for delta (the server's log has the
same prefix). Everything after it is **pending**. It also keeps the newest
server version it heard of (``remote_v``), the failures of the last attempts
(with the time of the next one: the back-off), and whether the newest sync
merged a conflict. Per server, it keeps the cursor of the server's change
feed, written in the same transaction as the pulled data it covers, so a
crash can neither skip a change nor apply one twice.

Pending is derived from the log (``v > synced_v``), not marked by writers, so
a crash between an append and a mark cannot lose a change. A thread deleted
locally forgets its ledger row in the same transaction.

:class:`LocalRecorder` is what the local tier of a
:class:`~threadline.tiered.TieredStore` and the
:class:`~threadline.sync.service.SyncService` need: a recorder with a ledger
(the SQLite recorder is one).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from threadline.deltas import Delta, ThreadCreate
from threadline.model import Thread, ThreadHead
from threadline.recorders.base import ThreadLog, ThreadRecorder

ThreadKind = Literal["main", "summary", "subagent"]
THREAD_KINDS: tuple[ThreadKind, ...] = ("main", "summary", "subagent")


def thread_kind(thread: Thread | ThreadHead | ThreadCreate) -> ThreadKind:
    """A sub-agent thread has a parent, a summary thread a source; the rest are main."""
    if thread.parent_thread_id is not None:
        return "subagent"
    if thread.origin_thread_id is not None:
        return "summary"
    return "main"


@dataclass(frozen=True, slots=True)
class SyncState:
    """One thread's sync state. ``local_v`` is 0 for a thread that is not stored
    locally; ``pending_since`` is the commit time (ms) of its oldest pending
    delta; ``next_attempt`` (ms) is when a failed thread is tried again;
    ``stuck_v`` is the local version a non-retryable failure refused (it is
    tried again once the thread changes); ``files_synced`` how many of its
    file changes (``1..files_synced``) the server has too."""

    thread_id: str
    local_v: int
    synced_v: int
    remote_v: int
    kind: ThreadKind
    pending_since: int | None = None
    failures: int = 0
    next_attempt: int | None = None
    error: str | None = None
    stuck_v: int | None = None
    merged_at: int | None = None
    conflict: str | None = None
    files_synced: int = 0

    @property
    def pending(self) -> bool:
        """Local deltas not on the server yet, or server deltas not here yet."""
        return self.local_v > self.synced_v or self.remote_v > self.synced_v

    @property
    def status(self) -> str:
        """``failing: <reason>``, ``conflict: <what>``, ``pending``,
        ``conflict-merged`` or ``synced``."""
        if self.error is not None:
            return f"failing: {self.error}"
        if self.conflict is not None:
            return f"conflict: {self.conflict}"
        if self.pending:
            return "pending"
        if self.merged_at is not None:
            return "conflict-merged"
        return "synced"


@dataclass(frozen=True, slots=True)
class SyncFailure:
    """A failed sync attempt of a thread, as the ledger records it."""

    error: str
    failures: int
    next_attempt: int | None
    stuck_v: int | None = None


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """Changes to one thread's ledger row (``None``: leave it as it is).

    ``remote_v`` only ever raises the known server version. ``succeeded``
    clears the failures; ``failure`` records one. ``merged`` sets (``True``)
    or clears (``False``) the conflict-merged mark. ``reset`` forgets what the
    server has (the thread is gone there: it is pushed again from scratch).
    ``conflict`` marks a conflict the sync settled without losing anything (a
    delete and a change that crossed): the status shows it until the thread
    changes again (its version passes the one it has now)."""

    thread_id: str
    synced_v: int | None = None
    remote_v: int | None = None
    succeeded: bool = False
    failure: SyncFailure | None = None
    merged: bool | None = None
    reset: bool = False
    conflict: str | None = None
    files_synced: int | None = None


@dataclass(frozen=True, slots=True)
class PendingDelete:
    """A local delete of a thread the server has, not on the server yet (a
    tombstone in the ledger). ``seen_v`` is the server version the delete saw
    (the thread's ``synced_v`` when it was deleted): the server deletes its
    copy only if it is still at that version, so a delete never wins over a
    change it did not see. ``at`` is when it was deleted (ms); the rest is the
    back-off of failed attempts, as for :class:`SyncState`."""

    thread_id: str
    seen_v: int
    at: int
    failures: int = 0
    next_attempt: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PulledThread:
    """What a pull learned of one thread: append ``deltas`` (the server's
    versions ``base+1 ...``) locally at ``base`` and mark them synced; or, with
    no deltas, only note that the server is at ``remote_v``; or, with
    ``deleted``, that the server deleted it. A thread deleted here whose delete
    is not on the server yet is not pulled back, unless ``conflict`` says why
    (the server refused the delete): then its pending delete is dropped, it is
    applied, and its ledger marks the conflict."""

    thread_id: str
    base: int
    deltas: Sequence[Delta] = ()
    remote_v: int = 0
    deleted: bool = False
    conflict: str | None = None


PullOutcome = Literal["applied", "noted", "deleted", "conflict"]
"""``applied``: the deltas are in; ``noted``: only the server version was
recorded (also when a local change raced the append: the push merges it);
``deleted``: the thread was deleted here too; ``conflict``: the thread has
pending local changes, so it is kept and will be pushed again whole."""


class SyncLedger(ThreadLog):
    """The sync ledger role: the sync state of a local recorder's threads (see
    the module docstring). What the :class:`~threadline.sync.service.SyncService`
    needs of its local store."""

    @abc.abstractmethod
    async def sync_pending(self) -> list[SyncState]:
        """Every thread with something to sync: local versions after ``synced_v``,
        or a server version past it."""

    @abc.abstractmethod
    async def sync_states(self, thread_ids: Sequence[str] | None = None) -> dict[str, SyncState]:
        """The state of each of ``thread_ids`` (of every thread with ``None``)
        that is stored locally or has a ledger row."""

    @abc.abstractmethod
    async def sync_cursor(self, remote: str) -> int | None:
        """The change-feed cursor of server ``remote`` (``None`` before the first pull)."""

    @abc.abstractmethod
    async def record_pull(
        self, remote: str, cursor: int | None, pulled: Sequence[PulledThread]
    ) -> list[PullOutcome]:
        """In one transaction: apply each of ``pulled`` (see :class:`PulledThread`;
        an append that meets a local change is only noted), and store ``cursor``
        as server ``remote`` 's feed cursor (unless ``None``)."""

    @abc.abstractmethod
    async def sync_file_backlog(self) -> list[SyncState]:
        """The threads on the server (``synced_v > 0``) whose local file log
        holds changes past their ``files_synced``."""

    @abc.abstractmethod
    async def sync_deletes(self) -> list[PendingDelete]:
        """The local deletes not on the server yet, oldest first. A delete by
        :meth:`~ThreadLog.delete` of a thread with synced versions leaves one,
        in its transaction; a delete pulled from the server does not."""

    @abc.abstractmethod
    async def settle_delete(self, thread_id: str, failure: SyncFailure | None = None) -> None:
        """Forget the pending delete of ``thread_id`` (the server took it, or
        refused it for a change it did not see), or with ``failure`` record a
        failed attempt to push it."""

    @abc.abstractmethod
    async def update_sync(self, updates: Sequence[SyncUpdate]) -> None:
        """Apply ``updates`` to the ledger, in one transaction."""

    @abc.abstractmethod
    async def rebase(
        self,
        thread_id: str,
        expected_version: int,
        keep: int,
        deltas: Sequence[Delta],
        update: SyncUpdate,
    ) -> ThreadHead:
        """After a merge, in one transaction: if the thread is still at
        ``expected_version`` (else :class:`VersionConflict`, nothing written),
        replace its versions after ``keep`` by ``deltas`` (the server's versions
        after ``keep``, then the merge's), rebuild its head and projections, and
        apply ``update``. The only write that replaces logged deltas: those after
        ``keep`` were never on the server, and the merge keeps what they did."""


class LocalRecorder(ThreadRecorder, SyncLedger):
    """A recorder that keeps a sync ledger: the local tier of a tiered store."""
