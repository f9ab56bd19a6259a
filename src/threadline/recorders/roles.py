"""The storage roles: small contracts, each a capability a backend has or lacks.

:class:`ThreadLog` is the thread log itself (append, read, list, delete,
lease); every backend has it. The other roles extend it, one capability
each: :class:`LinkIndex`, :class:`UsageIndex`, :class:`SearchIndex`,
:class:`ChangeFeed`, :class:`ArchiveLedger` and :class:`FileLog` (and the sync
ledger of a local store, :class:`~threadline.recorders.sync_state.SyncLedger`).
A backend inherits exactly the roles it serves: the HTTP client
(:class:`~threadline.sync.client.RemoteRecorder`) has no archive ledger
and no file log, so the type checker refuses a service that would use them
on it, and :func:`file_log`, :func:`archive_ledger` and the like (one per
role) turn the same mistake at run time into a
:class:`~threadline.errors.RoleUnavailable` that names the role and backend.

Each service asks for the roles it uses: archiving an :class:`ArchiveLedger`,
file tracking a :class:`FileLog`, relationships a :class:`LinkIndex`, cost
roll-ups a :class:`UsageIndex`. Every role has its own contract test suite
(``tests/contract``), run on every backend that has the role.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from threadline.deltas import Delta
from threadline.errors import InvalidDelta, RoleUnavailable, ThreadlineError
from threadline.files.log import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.model import ArchivedThread, LifecycleOp, Message, Thread, ThreadHead
from threadline.search import SearchHit

if TYPE_CHECKING:
    from threadline.planner import UsageRow


@dataclass(frozen=True, slots=True)
class RecordedDelta:
    """A delta as stored: its thread, its version and when it was committed (ms)."""

    thread_id: str
    v: int
    at: int
    delta: Delta


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed (:meth:`ChangeFeed.changes_since`): thread
    ``thread_id`` is at version ``v`` since the commit numbered ``cursor`` (at
    ``at`` ms), or was deleted at version ``v`` (a tombstone)."""

    cursor: int
    thread_id: str
    v: int
    deleted: bool
    at: int


# -- what the roles' methods take and return ---------------------------------

LinkKind = Literal["child", "summary"]

Append = tuple[str, int, Sequence[Delta]]
"""One append of :meth:`ThreadLog.append_many`: thread id, expected version, deltas."""


@dataclass(frozen=True, slots=True)
class ThreadLink:
    """``child_id`` hangs under ``parent_id``: a sub-agent (``child``) of it, or a
    ``summary`` made from it. Recorded by either end: the parent's
    ``child:link``/``summary:link`` delta, or the ``parent_thread_id`` /
    ``origin_thread_id`` of the child's ``thread:create``."""

    parent_id: str
    child_id: str
    kind: LinkKind


@dataclass(frozen=True, slots=True)
class LinkGraph:
    """Links reachable from a thread, and the head of every linked thread that
    is active (a deleted one has none: report it missing, do not fail);
    ``archived`` names the linked threads that are archived rather than gone,
    ``deleted`` those deleted here (a tombstone in the change feed). A linked
    thread in none of these never reached this store: a sub-agent thread held
    back by its persistence policy (memory only, on the machine it ran on)."""

    links: tuple[ThreadLink, ...]
    heads: dict[str, ThreadHead]
    archived: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """Usage of the messages of one thread with one model on one UTC day.

    ``cost_usd`` is the sum of the messages' stored costs (see
    :mod:`threadline.pricing`), ``None`` when none has one:
    ``reported_messages`` of them reported theirs, ``computed_messages``
    were priced from tokens (``computed_cost_usd`` of the sum), and the rest
    are unpriced. ``cache_write_1h_tokens`` is the part of
    ``cache_write_tokens`` written to the 1-hour cache.
    """

    thread_id: str
    model: str | None
    day: int  # days since 1970-01-01 UTC of the messages' timestamps
    messages: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None
    cache_write_1h_tokens: int = 0
    reported_messages: int = 0
    computed_messages: int = 0
    computed_cost_usd: float = 0.0

    @property
    def unpriced_messages(self) -> int:
        return self.messages - self.reported_messages - self.computed_messages


class WriterLease(abc.ABC):
    """Exclusive right to write one thread, held until :meth:`release`.

    A lease held by a process that died must not block its successor: backends
    tie it to something the operating system or the database frees on death.
    """

    thread_id: str

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lease up. Idempotent."""


class ThreadLog(abc.ABC):
    """The thread log itself: append-only, versioned logs of deltas, their heads
    and message projections, read one by one or in batches, and writer leases.

    Every backend has this role; every other role extends it (an index, a
    feed or a ledger is always one of a log), so a service that asks for one
    role can also append and read."""

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
    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        """:meth:`append` to several threads in one transaction, all or nothing.

        Each ``(thread_id, expected_version, deltas)`` is checked and applied as
        :meth:`append` would, in order (a later one may append to a thread an
        earlier one created); if any fails, its error is raised and nothing at
        all is written. Returns the new heads, in order. This is what keeps a
        sub-agent and its parent's link to it together.
        """

    @abc.abstractmethod
    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        """Commit several independent appends in one transaction.

        Unlike :meth:`append_many`, each succeeds or fails alone: the result
        holds, in order, the new head or the :class:`ThreadlineError` that
        append raised (and wrote nothing for). A failure of the transaction
        itself (a busy database) is raised.
        """

    @abc.abstractmethod
    async def head(self, thread_id: str) -> ThreadHead | None:
        """The current head, or ``None`` if there is no such thread."""

    @abc.abstractmethod
    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        """The heads of ``thread_ids`` that exist, in one snapshot, one query."""

    @abc.abstractmethod
    async def load(self, thread_id: str) -> Thread | None:
        """The whole current thread (head and every message), read consistently."""

    @abc.abstractmethod
    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        """The whole current threads of ``thread_ids`` that exist, read in one
        snapshot with a number of queries that does not grow with the ids."""

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
    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        """Remove the thread and its log. ``False`` if there was none. With
        ``version``, only if the thread is at that version (checked in the
        delete's transaction), else :class:`VersionConflict`, nothing deleted.

        On a local store that syncs, deleting a thread the server has leaves a
        pending delete in its sync ledger, pushed by the next sync."""

    @abc.abstractmethod
    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        """:meth:`delete` several threads in one transaction; ``False`` for an unknown id."""

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


class LinkIndex(ThreadLog):
    """Links between threads (sub-agents, summaries), walked in one query."""

    @abc.abstractmethod
    async def subtree(self, thread_id: str) -> LinkGraph:
        """Every link reachable downwards from ``thread_id`` (its sub-agents and
        summaries, theirs, and so on), each once, and the heads of the threads
        among them (``thread_id`` included) that exist. One query on SQL
        backends, however deep the tree; cycles (which only hand-made links can
        make) end the walk instead of looping."""

    @abc.abstractmethod
    async def ancestry(self, thread_id: str) -> LinkGraph:
        """Every link reachable upwards from ``thread_id`` (its parent or source,
        theirs, and so on), each once, and the heads of the threads among them
        (``thread_id`` included) that exist. One query on SQL backends."""


class UsageIndex(ThreadLog):
    """Token usage and cost of every message ever appended, rolled up."""

    @abc.abstractmethod
    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        """Usage of every message ever appended (truncated ones too: spent is
        spent) grouped by thread, model and UTC day: of every thread when
        ``thread_ids`` is ``None``, else of those threads, and with
        ``subtrees`` of every thread reachable downwards from them too (each
        counted once). Kept in the same transaction as each append, so this
        does not read messages; unknown ids contribute nothing."""


class UsagePricing(ThreadLog):
    """The stored costs of usage rows, priced again (``threadline cost --reprice``)."""

    @abc.abstractmethod
    async def reprice_usage(
        self, price: Callable[[UsageRow], UsageRow], *, never_priced: bool = False
    ) -> int:
        """Set each stored usage row's cost, source and price list to those of
        ``price(row)`` (of the rows never priced, from a store older than
        stored costs, when ``never_priced``), in one transaction. Returns how
        many rows changed."""


class SearchIndex(ThreadLog):
    """Full-text search over the current messages and titles."""

    @abc.abstractmethod
    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Full-text search over the current messages (content, tool inputs and
        outputs) and titles of active threads, best match first, at most ``limit``
        hits (see :mod:`threadline.search` for the query syntax).

        The index is part of the thread's state: it is updated in the same
        transaction as the append, truncate or delete that changes it, so a
        committed message is immediately findable and a truncated or deleted
        one never is. Raises :class:`ValueError` for a query without a word.
        """


class ChangeFeed(ThreadLog):
    """The ordered feed of committed changes (the sync server's ``/v1/changes``)."""

    @abc.abstractmethod
    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        """Threads changed by commits numbered after ``cursor``, in commit order,
        at most ``limit``: each thread once, at its newest change (an append, or
        a delete as a tombstone with ``deleted`` set; archiving and rebuilding a
        snapshot are not changes, restoring is). Start from ``cursor=0``; go on
        from the last change's ``cursor``.

        Numbers grow in commit order: a commit never gets a number at or below
        one a reader has already been given, so a follower that keeps reading
        from its last cursor sees every change, none twice.
        """


class ArchiveLedger(ThreadLog):
    """What archiving, restoring and crash recovery need of storage (driven by
    :mod:`threadline.lifecycle.archive`): durable lifecycle ops, the archived metadata
    of threads moved to cold storage, and rebuilding a head from its log."""

    @abc.abstractmethod
    async def begin_lifecycle(self, op: LifecycleOp) -> None:
        """Record ``op`` durably, so that a store opened after a crash finds it
        (replacing a recorded op of the same id)."""

    @abc.abstractmethod
    async def end_lifecycle(self, op_id: str) -> bool:
        """Drop the record of op ``op_id``. ``False`` if there was none."""

    @abc.abstractmethod
    async def pending_lifecycle(self) -> list[LifecycleOp]:
        """Every recorded op, oldest first."""

    @abc.abstractmethod
    async def commit_archive(self, op_id: str, entries: Sequence[ArchivedThread]) -> None:
        """In one transaction: for each entry, check that its thread is active at
        exactly ``entry.object.v`` (else :class:`VersionConflict`, or
        :class:`ThreadNotFound` if it is not active), remove the thread's head,
        log and messages, and keep ``entry`` as its archived metadata; then drop
        op ``op_id``. All or nothing.

        An archived thread's id stays taken: creating a thread with it raises
        :class:`ThreadExists`.
        """

    @abc.abstractmethod
    async def commit_restore(
        self, logs: Sequence[Sequence[RecordedDelta]], op: LifecycleOp
    ) -> list[ThreadHead]:
        """In one transaction: put each archived thread's whole log back exactly as
        recorded (the same versions, deltas and commit times ``at``), with its
        head and message projection; drop those threads' archived metadata; and
        record ``op`` (the objects left to delete). All or nothing.

        Each log must be the complete log ``1..v`` of one thread that is archived
        at version ``v`` (:class:`ThreadNotFound` if it is not archived,
        :class:`ThreadExists` if it is active, :class:`VersionConflict` if the
        archived version differs, :class:`InvalidDelta` for a log that does not
        fold). Returns the restored heads.
        """

    @abc.abstractmethod
    async def archived(self, thread_id: str) -> ArchivedThread | None:
        """The archived metadata of a thread, or ``None`` if it is not archived."""

    @abc.abstractmethod
    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        """Archived threads by newest activity first, paged like :meth:`ThreadLog.list_heads`."""

    @abc.abstractmethod
    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        """Recompute the head and the message projection of an active thread from
        its log (they are caches of it) and store them; ``None`` if not active."""

    async def unreadable_heads(self) -> list[str]:
        """Ids of active threads whose stored head cannot be read back (damaged
        bytes): :meth:`rebuild_snapshot` makes it again from the log. A backend that
        keeps heads as objects, not bytes, has none."""
        return []


class FileLog(ThreadLog):
    """The files each thread's tool calls changed, their contents, and the
    rollback journal (driven by :mod:`threadline.files`). The sync copies a
    thread's file changes and their contents to the server and the other
    replicas (:meth:`copy_file_changes`); rollbacks only happen where the files are."""

    @abc.abstractmethod
    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        """In one transaction, durable on return: store each of ``contents`` whose
        hash is not stored yet (a stored one is kept as it is); append
        ``changes`` to the thread's file log as the next numbers ``seq``, in
        order, stamped with the thread's current version and the time; and, with
        ``rollback``, open its journal entry (unfinished).

        Raises :class:`ThreadNotFound` for an unknown or archived thread, and
        :class:`ContentMissing` if a change's state or a content's ``base`` names
        a hash that is neither stored nor given. All or nothing.

        :meth:`ThreadLog.delete` of a thread deletes its file log and journal too, and
        every content that no remaining change refers to and no remaining
        content uses as its base.
        """

    @abc.abstractmethod
    async def copy_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        """Store another replica's file changes of the thread as they are (their
        numbers, thread versions and times), in one transaction: only if the
        thread's file log holds exactly ``after`` changes (else
        :class:`VersionConflict` with the number it holds) and ``changes`` are
        numbered ``after + 1 ...`` (else :class:`InvalidFileChange`). Contents
        as in :meth:`record_file_changes` (:class:`ContentMissing` for a hash
        neither stored nor given). Returns how many changes the log holds now.
        What the sync of file changes writes, on the server and on replicas."""

    @abc.abstractmethod
    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        """The thread's file changes, oldest first: all of them, or those of one
        operation, or those recorded at ``thread_version >= since_version``."""

    @abc.abstractmethod
    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        """The changes that revert any of ``seqs``, the changes that revert those,
        and so on, each once, oldest first."""

    @abc.abstractmethod
    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        """The newest change of each of ``paths`` that has one."""

    @abc.abstractmethod
    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        """The stored content of ``content_hash``, then its base, the base's base
        and so on down to a content without one; empty if it is not stored."""

    @abc.abstractmethod
    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        """The ``depth`` of each of ``hashes`` that is stored."""

    @abc.abstractmethod
    async def content_usage(self) -> ContentUsage:
        """How many contents are stored, in how many bytes, holding how many."""

    @abc.abstractmethod
    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        """The thread's rollback journal, oldest first (only unfinished entries
        with ``unfinished``)."""

    @abc.abstractmethod
    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        """Mark the thread's rollback ``operation_id`` finished (idempotent);
        :class:`OperationNotFound` if the journal has no such entry."""


def whole_log_thread_id(log: Sequence[RecordedDelta]) -> str:
    """The thread of a whole log (for :meth:`ArchiveLedger.commit_restore`), checked:
    versions ``1..v`` of one thread, else :class:`InvalidDelta`."""
    if not log:
        raise InvalidDelta("An empty log is not a thread")
    thread_id = log[0].thread_id
    for number, record in enumerate(log, start=1):
        if record.thread_id != thread_id or record.v != number:
            raise InvalidDelta(
                f"The log of thread {thread_id} is not versions 1..{len(log)} of one thread "
                f"(found {record.thread_id} v{record.v} at position {number})"
            )
    return thread_id


def _missing(recorder: ThreadLog, role: str, purpose: str) -> RoleUnavailable:
    return RoleUnavailable(role, type(recorder).__name__, recorder.location, purpose)


# One function per role (not one generic over ``type[R]``: mypy refuses an
# abstract class where ``type[R]`` is expected).


def link_index(recorder: ThreadLog, purpose: str = "Walking thread links") -> LinkIndex:
    """``recorder`` as a :class:`LinkIndex`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, LinkIndex):
        return recorder
    raise _missing(recorder, "LinkIndex", purpose)


def usage_index(recorder: ThreadLog, purpose: str = "Rolling up usage") -> UsageIndex:
    """``recorder`` as a :class:`UsageIndex`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, UsageIndex):
        return recorder
    raise _missing(recorder, "UsageIndex", purpose)


def usage_pricing(recorder: ThreadLog, purpose: str = "Repricing usage") -> UsagePricing:
    """``recorder`` as a :class:`UsagePricing`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, UsagePricing):
        return recorder
    raise _missing(recorder, "UsagePricing", purpose)


def search_index(recorder: ThreadLog, purpose: str = "Searching") -> SearchIndex:
    """``recorder`` as a :class:`SearchIndex`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, SearchIndex):
        return recorder
    raise _missing(recorder, "SearchIndex", purpose)


def change_feed(recorder: ThreadLog, purpose: str = "Following changes") -> ChangeFeed:
    """``recorder`` as a :class:`ChangeFeed`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, ChangeFeed):
        return recorder
    raise _missing(recorder, "ChangeFeed", purpose)


def archive_ledger(recorder: ThreadLog, purpose: str = "Archiving") -> ArchiveLedger:
    """``recorder`` as an :class:`ArchiveLedger`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, ArchiveLedger):
        return recorder
    raise _missing(recorder, "ArchiveLedger", purpose)


def file_log(recorder: ThreadLog, purpose: str = "File change tracking") -> FileLog:
    """``recorder`` as a :class:`FileLog`, else :class:`RoleUnavailable`."""
    if isinstance(recorder, FileLog):
        return recorder
    raise _missing(recorder, "FileLog", purpose)
