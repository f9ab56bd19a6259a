"""ThreadStore: the facade users call. It talks only to the storage roles (recorders.roles)."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from pydantic import JsonValue

from threadline import batch, costs, environment, relations
from threadline.deltas import Delta, MessageDelta, ThreadCreate, diff, fold
from threadline.errors import (
    StoreClosed,
    ThreadArchived,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.events import (
    THREAD_ARCHIVED,
    THREAD_CREATED,
    THREAD_DELETED,
    THREAD_RESTORED,
    THREAD_UPDATED,
    EventBus,
    ThreadEvent,
)
from threadline.files.log import ChangeType, FileChange
from threadline.files.rollback import RollbackReport
from threadline.files.tracking import FileOperation, FileTracker, ToolFiles
from threadline.ids import new_thread_id, now_ms, parse_list_cursor
from threadline.lifecycle.archive import ColdStorage, Lifecycle, Progress, default_cold_storage
from threadline.lifecycle.doctor import DoctorReport, run_doctor
from threadline.model import (
    ArchivedThread,
    Message,
    Thread,
    ThreadHead,
    ThreadListPage,
    ThreadPage,
)
from threadline.recorders.base import Append, RecordedDelta
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.roles import (
    ArchiveLedger,
    ThreadLog,
    archive_ledger,
    file_log,
    search_index,
)
from threadline.recorders.sqlite import SqliteRecorder
from threadline.recorders.sqlite_writer import Synchronous
from threadline.search import SearchHit
from threadline.tiered import TieredStore
from threadline.writer import Modifier, ThreadWriter, call_modifier, message_delta

_T = TypeVar("_T")


class VersionNotFound(ThreadlineError):
    def __init__(self, thread_id: str, version: int, head: int) -> None:
        self.thread_id = thread_id
        super().__init__(
            f"Thread {thread_id} has versions 1..{head}; version {version} does not exist"
        )


def default_home() -> Path:
    """``$THREADLINE_HOME``, else ``~/.threadline``."""
    return Path(os.environ.get("THREADLINE_HOME") or Path.home() / ".threadline")


def default_db_path() -> Path:
    return default_home() / "threads.db"


def _encode_cursor(last_activity: int, thread_id: str) -> str:
    return f"{last_activity}:{thread_id}"


def _decode_cursor(cursor: str) -> tuple[int, str]:
    parsed = parse_list_cursor(cursor)
    if parsed is None:
        raise ValueError(f"Not a thread list cursor: {cursor!r}")
    return parsed


class ThreadStore:
    """Versioned thread storage: create, read, modify, page, write exclusively.

    Every change is a list of deltas appended at the version it was based on;
    a stale change raises :class:`VersionConflict` and writes nothing. A call
    that changes a thread returns only once the change is durable.
    """

    def __init__(
        self,
        recorder: ThreadLog,
        *,
        cold_storage: ColdStorage | str | None = None,
        restore_on_read: bool = True,
    ) -> None:
        """``cold_storage`` is where archived threads go (a :class:`ColdStorage` or
        a URL; default: see :func:`threadline.lifecycle.archive.default_cold_storage`).
        With ``restore_on_read=False`` reading an archived thread raises
        :class:`ThreadArchived` instead of restoring it.

        ``recorder`` may be any backend: an operation whose storage role it
        lacks (archiving without an
        :class:`~threadline.recorders.roles.ArchiveLedger`, file tracking
        without a :class:`~threadline.recorders.roles.FileLog`, ...) raises
        :class:`~threadline.errors.RoleUnavailable`; reads and listings cover
        only active threads on a backend that keeps no archive."""
        self.recorder: ThreadLog = recorder
        self._cold_storage = cold_storage
        self._restore_on_read = restore_on_read
        self._lifecycle: Lifecycle | None = None
        self.events = EventBus()
        if isinstance(recorder, TieredStore):  # threads changed by the sync, as local changes
            recorder.events.subscribe(self.events.emit)
        self._writers: dict[str, ThreadWriter] = {}
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
        archive_url: str | None = None,
        restore_on_read: bool = True,
    ) -> ThreadStore:
        """Open a store: a SQLite file, ``":memory:"`` (in-memory), or the default
        under ``$THREADLINE_HOME`` when ``path`` is ``None``.

        ``synchronous`` is SQLite's durability setting (``FULL``: a commit is on
        disk before it returns); ``busy_timeout_ms`` is how long to wait for
        another process's write lock before raising :class:`StoreBusy`.

        ``archive_url`` and ``restore_on_read`` configure archiving (see
        ``__init__``). Work that a crash interrupted (an archive or a restore)
        is finished or undone before this returns, and logged."""
        if path is not None and str(path) == ":memory:":
            return cls(MemoryRecorder(), cold_storage=archive_url, restore_on_read=restore_on_read)
        target = default_db_path() if path is None else Path(path)
        recorder = await asyncio.to_thread(
            SqliteRecorder, target, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
        )
        store = cls(recorder, cold_storage=archive_url, restore_on_read=restore_on_read)
        try:
            await store.recover()
        except BaseException:
            await store.close()
            raise
        return store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    # -- creating and reading ---------------------------------------------

    async def create_thread(
        self,
        *,
        title: str | None = None,
        id: str | None = None,
        env: dict[str, JsonValue] | None = None,
        metadata: dict[str, JsonValue] | None = None,
        messages: Sequence[Message] = (),
        parent_thread_id: str | None = None,
        origin_thread_id: str | None = None,
        created: int | None = None,
        capture_environment: bool = True,
    ) -> Thread:
        """Create a thread (version 1, plus one version per initial message).

        With ``capture_environment`` the working directory, git branch and
        commit, OS and versions are recorded in ``env``; keys given in ``env``
        win over captured ones.
        """
        self._check_open()
        context: dict[str, JsonValue] = {}
        if capture_environment:
            cwd = env.get("cwd") if env else None
            context = await asyncio.to_thread(
                environment.capture_environment, cwd if isinstance(cwd, str) else None
            )
        create = ThreadCreate(
            id=id or new_thread_id(),
            created=created if created is not None else now_ms(),
            title=title,
            parent_thread_id=parent_thread_id,
            origin_thread_id=origin_thread_id,
            env={**context, **(env or {})},
            metadata=metadata or {},
        )
        deltas: list[Delta] = [create, *(MessageDelta.of(m) for m in messages)]
        await self.recorder.append(create.id, 0, deltas)
        thread = fold(deltas)
        self.events.emit(ThreadEvent(THREAD_CREATED, thread.id, thread.v))
        return thread

    async def get_thread(self, thread_id: str) -> Thread:
        """The whole thread at its newest version."""
        self._check_open()
        thread = await self.recorder.load(thread_id)
        if thread is None and await self._restore_if_archived(thread_id):
            thread = await self.recorder.load(thread_id)
        if thread is None:
            raise ThreadNotFound(thread_id)
        return thread

    async def thread_at(self, thread_id: str, version: int) -> Thread:
        """The thread as it was at ``version`` (the fold of its log up to it)."""
        self._check_open()
        log = await self.recorder.deltas(thread_id, upto=version)
        if not log and await self._restore_if_archived(thread_id):
            log = await self.recorder.deltas(thread_id, upto=version)
        if not log:
            raise ThreadNotFound(thread_id)
        if version < 1 or log[-1].v != version:
            head = await self.recorder.head(thread_id)
            raise VersionNotFound(thread_id, version, head.v if head else 0)
        return fold(r.delta for r in log)

    async def history(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        """The logged deltas of a thread (versions ``after+1..upto``)."""
        self._check_open()
        log = await self.recorder.deltas(thread_id, after=after, upto=upto)
        if not log and await self.recorder.head(thread_id) is None:
            if not await self._restore_if_archived(thread_id):
                raise ThreadNotFound(thread_id)
            log = await self.recorder.deltas(thread_id, after=after, upto=upto)
        return log

    async def load_thread(
        self,
        thread_id: str,
        limit: int = 50,
        offset: int = 0,
        *,
        before: int | None = None,
    ) -> ThreadPage:
        """A page of messages, oldest first, counted back from the newest.

        ``offset`` skips that many of the newest messages; ``before`` is a
        message position (``page.first_index`` of the page you have) to read
        the page before it. ``has_more`` says whether older messages remain.
        """
        self._check_open()
        if limit < 0 or offset < 0 or (before is not None and before < 0):
            raise ValueError("limit, offset and before must not be negative")
        found = await self.recorder.page(thread_id, limit=limit, offset=offset, before=before)
        if found is None and await self._restore_if_archived(thread_id):
            found = await self.recorder.page(thread_id, limit=limit, offset=offset, before=before)
        if found is None:
            raise ThreadNotFound(thread_id)
        head, messages = found
        end = (head.message_count if before is None else min(before, head.message_count)) - offset
        start = max(0, end - limit)
        return ThreadPage(
            head=head,
            messages=tuple(messages),
            offset=head.message_count - max(0, end),
            has_more=start > 0,
        )

    async def list_threads(
        self, limit: int = 50, cursor: str | None = None, *, include_archived: bool = True
    ) -> ThreadListPage:
        """Threads by newest activity first; pass ``next_cursor`` back for the next page.

        Archived threads are listed too (their head has ``archived_at`` set)
        unless ``include_archived`` is false."""
        self._check_open()
        after = _decode_cursor(cursor) if cursor else None
        heads = await self.recorder.list_heads(limit=limit + 1, after=after)
        if include_archived and isinstance(self.recorder, ArchiveLedger):
            archived = await self.recorder.list_archived(limit=limit + 1, after=after)
            heads = sorted(
                [*heads, *(entry.head for entry in archived)],
                key=lambda head: (head.last_activity, head.id),
                reverse=True,
            )
        more = len(heads) > limit
        heads = heads[:limit]
        next_cursor = (
            _encode_cursor(heads[-1].last_activity, heads[-1].id) if more and heads else None
        )
        return ThreadListPage(threads=tuple(heads), next_cursor=next_cursor)

    # -- changing ---------------------------------------------------------

    async def modify_thread(
        self, thread_id: str, modifier: Modifier, expected_version: int | None = None
    ) -> Thread:
        """Apply the spec's modifier: it gets the thread and returns it changed
        with a greater ``v``; the store commits the difference atomically.

        With ``expected_version``, the change is refused with
        :class:`VersionConflict` if the thread has moved on from it.
        """
        self._check_open()
        thread = await self.get_thread(thread_id)
        if expected_version is not None and thread.v != expected_version:
            raise VersionConflict(thread_id, expected_version, thread.v)
        return await self.commit_change(thread, await call_modifier(modifier, thread))

    async def commit_change(self, base: Thread, changed: Thread) -> Thread:
        """Commit the deltas between ``base`` (a stored version) and ``changed``."""
        deltas = diff(base, changed)
        if not deltas:
            return base
        await self.recorder.append(base.id, base.v, deltas)
        thread = fold(deltas, base)
        self.events.emit(ThreadEvent(THREAD_UPDATED, thread.id, thread.v))
        return thread

    async def append_deltas(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> int:
        """Append ready-made deltas at ``expected_version``; returns the new version."""
        self._check_open()
        head = await self.recorder.append(thread_id, expected_version, deltas)
        self.events.emit(ThreadEvent(THREAD_UPDATED, thread_id, head.v))
        return head.v

    async def append_together(self, appends: Sequence[Append]) -> list[ThreadHead]:
        """Append to several threads in one transaction, all or nothing: each
        ``(thread_id, expected_version, deltas)`` as :meth:`append_deltas` would
        (``0`` creates). Importers write a session, its sub-agent and summary
        threads and the links between them this way. Returns the new heads."""
        self._check_open()
        heads = await self.recorder.append_many(appends)
        for (thread_id, expected, _), head in zip(appends, heads, strict=True):
            kind = THREAD_CREATED if expected == 0 else THREAD_UPDATED
            self.events.emit(ThreadEvent(kind, thread_id, head.v))
        return heads

    async def append_message(
        self, thread_id: str, message: Message, expected_version: int | None = None
    ) -> int:
        """Append one message without reading the thread; returns the new version.

        Without ``expected_version`` the message goes on top of whatever the
        head is (an append commutes with any change, so a race is retried);
        with it, a moved head raises :class:`VersionConflict`.
        """
        self._check_open()
        delta = message_delta(message)
        if expected_version is not None:
            return await self.append_deltas(thread_id, expected_version, [delta])
        while True:  # each lost race means another writer made progress
            head = await self.recorder.head(thread_id)
            if head is None:
                raise ThreadNotFound(thread_id)
            try:
                return await self.append_deltas(thread_id, head.v, [delta])
            except VersionConflict:
                continue

    async def delete_thread(self, thread_id: str, *, tree: bool = False) -> list[str]:
        """Delete a thread and its whole log; with ``tree``, also every sub-agent
        and summary thread under it, at any depth (the deepest first; linked
        threads already gone are skipped). Returns the ids deleted, the thread
        itself last. Refused while a writer holds any of them.

        On a :class:`~threadline.tiered.TieredStore` that syncs, the delete
        travels to the server and the other replicas, unless the server changed
        the thread after the version this replica had (see docs/sync.md)."""
        self._check_open()
        if not tree:
            await self._delete_one(thread_id)
            return [thread_id]
        nodes = (await self.get_thread_tree(thread_id)).nodes
        below = [n.id for n in sorted(nodes[1:], key=lambda n: -n.depth) if n.head is not None]
        for node_id in (*below, thread_id):
            if node_id in self._writers:
                raise WriterBusy(node_id)
        for node_id in below:
            await self._delete_one(node_id)
        await self._delete_one(thread_id)
        return [*below, thread_id]

    async def _delete_one(self, thread_id: str) -> None:
        if thread_id in self._writers:
            raise WriterBusy(thread_id)
        lease = self.recorder.acquire_lease(thread_id)
        try:
            head = await self.recorder.head(thread_id)
            if head is None or not await self.recorder.delete(thread_id):
                raise ThreadNotFound(thread_id)
        finally:
            lease.release()
        self.events.emit(ThreadEvent(THREAD_DELETED, thread_id, head.v))

    # -- search -------------------------------------------------------------

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Full-text search over message content, tool inputs and outputs, and
        titles: the best ``limit`` hits, each with its thread and message ids and
        a snippet (query syntax in :mod:`threadline.search`)."""
        self._check_open()
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return await search_index(self.recorder, "Search").search(query, limit=limit)

    # -- exclusive writers -------------------------------------------------

    async def acquire_writer(self, thread_id: str, *, autosave_delay: float = 1.0) -> ThreadWriter:
        """The exclusive writer of a thread, or :class:`WriterBusy` if another
        writer (in this process or another on the same database) holds it."""
        self._check_open()
        if thread_id in self._writers:
            raise WriterBusy(thread_id)
        lease = self.recorder.acquire_lease(thread_id)
        try:
            thread = await self.get_thread(thread_id)
        except BaseException:
            lease.release()
            raise
        writer = ThreadWriter(self, thread, lease, autosave_delay=autosave_delay)
        self._writers[thread_id] = writer
        return writer

    def _writer_done(self, writer: ThreadWriter) -> None:
        if self._writers.get(writer.thread_id) is writer:
            del self._writers[writer.thread_id]

    async def close(self) -> None:
        """Dispose every open writer (final save), then close the recorder."""
        if self._closed:
            return
        for writer in list(self._writers.values()):
            await writer.dispose()
        if "batch_writer" in self.__dict__:  # commit what batch_write still holds
            await self.batch_writer.flush()
        self._closed = True
        await self.recorder.close()

    # -- lifecycle: archive, restore, recovery, doctor (threadline.lifecycle.archive) --

    @property
    def lifecycle(self) -> Lifecycle:
        """Archive, restore and recovery of this store's threads (made on first use,
        so the default archive folder is created only when something is archived)."""
        if self._lifecycle is None:
            ledger = archive_ledger(self.recorder, "Archiving and restoring")
            cold = self._cold_storage
            if not isinstance(cold, ColdStorage):
                cold = default_cold_storage(self.recorder.location, cold)
            self._lifecycle = Lifecycle(ledger, cold)
        return self._lifecycle

    async def archive_inactive_threads(
        self,
        older_than: timedelta,
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Move every thread whose last activity (newest message, else creation) is
        older than ``older_than`` to cold storage, with its sub-agent threads (a
        family goes only if all of it is inactive); returns the ids archived
        (with ``dry_run``, the ids that would be, changing nothing).

        Their metadata stays listed (``list_threads``); their logs go to one
        zstd-compressed, checksummed object each. A thread written to meanwhile
        stays active. ``progress(done, total)`` is called as threads are done.
        """
        self._check_open()
        archived = await self.lifecycle.archive_inactive(
            older_than, concurrency=concurrency, progress=progress, dry_run=dry_run
        )
        if dry_run:
            return archived
        for thread_id in archived:
            self.events.emit(ThreadEvent(THREAD_ARCHIVED, thread_id, 0))
        return archived

    async def inactive_threads(self, older_than: timedelta) -> list[list[ThreadHead]]:
        """What :meth:`archive_inactive_threads` would archive now, as families
        (a thread, then its sub-agent threads), oldest first: the dry run."""
        self._check_open()
        return await self.lifecycle.inactive_families(older_than, now_ms())

    async def archive_thread(self, thread_id: str, *, dry_run: bool = False) -> list[str]:
        """Move one thread and its sub-agent threads to cold storage now, whatever
        their activity; returns their ids (``[]`` if already archived; with
        ``dry_run``, the ids that would move). :class:`WriterBusy` while a writer
        holds one of them."""
        self._check_open()
        archived = await self.lifecycle.archive(thread_id, dry_run=dry_run)
        if dry_run:
            return archived
        for archived_id in archived:
            self.events.emit(ThreadEvent(THREAD_ARCHIVED, archived_id, 0))
        return archived

    async def restore_thread(
        self,
        thread_id: str,
        *,
        with_subagents: bool = True,
        progress: Progress | None = None,
    ) -> list[str]:
        """Bring an archived thread back to active storage bit for bit (the same
        versions, deltas, ids and commit times), with its archived sub-agent
        threads unless ``with_subagents`` is false; returns the ids restored
        (``[]`` if it is active). A missing or damaged archive object raises
        :class:`ArchiveObjectMissing` / :class:`ArchiveObjectCorrupt`, naming
        the thread and the object, and changes nothing."""
        self._check_open()
        restored = await self.lifecycle.restore(
            thread_id, with_subagents=with_subagents, progress=progress
        )
        for restored_id in restored:
            head = await self.recorder.head(restored_id)
            self.events.emit(ThreadEvent(THREAD_RESTORED, restored_id, head.v if head else 0))
        return restored

    async def archived_thread(self, thread_id: str) -> ArchivedThread | None:
        """The metadata kept for an archived thread, or ``None`` if it is not archived."""
        self._check_open()
        return await archive_ledger(self.recorder, "Archived metadata").archived(thread_id)

    async def recover(self) -> list[str]:
        """Finish or undo archives and restores that a crash interrupted (``open``
        does this); returns one line per operation handled, also logged."""
        self._check_open()
        if not isinstance(self.recorder, ArchiveLedger):
            return []  # nothing is archived here, so nothing was interrupted
        if not await self.recorder.pending_lifecycle():
            return []
        return await self.lifecycle.recover()

    async def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check heads against logs, totals against messages, relationship links,
        and archive objects against their metadata; with ``repair``, fix what can
        be fixed (see :mod:`threadline.lifecycle.doctor`)."""
        self._check_open()
        return await run_doctor(self.lifecycle, repair=repair)

    async def _restore_if_archived(self, thread_id: str) -> bool:
        """For a read that found no active thread: restore it if it is archived
        (or raise :class:`ThreadArchived` if this store does not restore on read)."""
        if not isinstance(self.recorder, ArchiveLedger):
            return False  # a backend without an archive ledger archives nothing here
        entry = await self.recorder.archived(thread_id)
        if entry is None:
            return False
        if not self._restore_on_read:
            raise ThreadArchived(thread_id, entry.head.archived_at or 0)
        await self.restore_thread(thread_id)
        return True

    # -- relationships, costs, batches (threadline.relations, .costs, .batch) --

    async def spawn_subagent_thread(self, parent_id: str, task_description: str) -> Thread:
        """A new sub-agent thread of ``parent_id``: titled ``Task: <description>``,
        whose first message is the task (role ``user``), with the parent's
        ``env``. The child and the parent's ``child:link`` (one version more on
        the parent) are committed in one transaction. :class:`ThreadNotFound`
        if there is no such parent."""
        self._check_open()
        return await relations.spawn_subagent_thread(self, parent_id, task_description)

    async def create_summary_thread(self, source_id: str, summary_content: str) -> Thread:
        """A new summary thread of ``source_id``: titled ``Summary: <source title
        or 'Conversation'>``, with one assistant message holding the summary.
        The summary and the source's ``summary:link`` (one version more on the
        source) are committed in one transaction. :class:`ThreadNotFound` if
        there is no such source."""
        self._check_open()
        return await relations.create_summary_thread(self, source_id, summary_content)

    async def get_related_threads(self, thread_id: str) -> relations.RelatedThreads:
        """The heads of a thread and of its parent, origin, summaries and children;
        linked threads that no longer exist are listed in ``missing``."""
        self._check_open()
        return await relations.get_related_threads(self, thread_id)

    async def get_thread_tree(self, thread_id: str) -> relations.ThreadTree:
        """The thread and every sub-agent and summary thread under it, at any
        depth (one query on SQLite); missing ones are nodes without a head."""
        self._check_open()
        return await relations.get_thread_tree(self, thread_id)

    async def get_root_thread(self, thread_id: str) -> relations.RootThread:
        """The top of the tree a thread belongs to (one query on SQLite)."""
        self._check_open()
        return await relations.get_root_thread(self, thread_id)

    async def cost_report(
        self,
        thread_id: str | None = None,
        *,
        tree: bool = False,
        by: costs.GroupBy | None = None,
    ) -> costs.CostReport:
        """What a thread cost (with ``tree``, with all its sub-agents and summaries),
        or every thread when ``thread_id`` is ``None``; grouped ``by`` model, day or
        thread. Costs the agents did not record were computed from tokens when
        the messages were written, and are reported apart (see :mod:`threadline.costs`)."""
        self._check_open()
        return await costs.cost_report(self, thread_id, tree=tree, by=by)

    async def thread_costs(self, thread_ids: Sequence[str]) -> dict[str, costs.CostLine]:
        """Each thread's own cost, from the figures stored when its messages were
        written (one query): what ``list``, ``show``, ``export`` and the viewer print."""
        self._check_open()
        return await costs.thread_costs(self, thread_ids)

    async def reprice(self) -> int:
        """Price every stored usage row again with the installed price list
        (``threadline cost --reprice``; reported costs stay). Returns how many
        rows' figures changed."""
        self._check_open()
        return await costs.reprice(self)

    @functools.cached_property
    def batch_reader(self) -> batch.BatchReader:
        """The reader behind :meth:`batch_read` (its ``stats`` show shared loads)."""
        return batch.BatchReader(self.recorder)

    @functools.cached_property
    def batch_writer(self) -> batch.BatchWriter:
        """The writer behind :meth:`batch_write`; set its ``window`` (seconds,
        0.1 by default) to change how long operations are collected."""
        return batch.BatchWriter(self.recorder, emit=self.events.emit)

    async def batch_read(self, thread_ids: Sequence[str]) -> dict[str, Thread | None]:
        """Many threads in one load (one query on SQLite): each id mapped to its
        thread, or ``None`` if there is none. Concurrent reads of the same id
        share one load in flight."""
        self._check_open()
        return await self.batch_reader.read(thread_ids)

    async def batch_write(self, operations: Sequence[batch.WriteOp]) -> list[batch.WriteOutcome]:
        """Queue :class:`~threadline.batch.CreateOp`, ``UpdateOp`` and ``DeleteOp``
        operations in the current window; with those of any other caller in the
        same window they are committed in one transaction per kind. Returns an
        outcome per operation, in order: its head or its own error."""
        self._check_open()
        return await self.batch_writer.write(operations)

    # -- files: change tracking and rollback (threadline.files) --------------

    @functools.cached_property
    def files(self) -> FileTracker:
        """The file tracker behind the methods below (its decoded-content cache
        lives as long as the store)."""
        return FileTracker(file_log(self.recorder, "File change tracking"))

    async def _on_thread(self, thread_id: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a file call on a thread, restoring the thread first if it is archived."""
        self._check_open()
        try:
            return await call()
        except ThreadNotFound:
            if not await self._restore_if_archived(thread_id):
                raise
            return await call()

    async def record_file_change(
        self,
        thread_id: str,
        operation_id: str,
        *,
        path: str | os.PathLike[str],
        type: ChangeType,
        new_content: bytes | str | None = None,
        mode: int | None = None,
    ) -> FileChange:
        """Record, before a tool writes, that operation ``operation_id`` (its tool
        call) creates, modifies or deletes ``path`` (inside the thread's
        ``env.cwd``), leaving ``new_content``. The content before is read from
        disk now; the record is durable when this returns. See
        :meth:`FileTracker.record_change <threadline.files.FileTracker.record_change>`.
        """
        return await self._on_thread(
            thread_id,
            lambda: self.files.record_change(
                thread_id, operation_id, path=path, type=type, new_content=new_content, mode=mode
            ),
        )

    def track_files(self, thread_id: str, operation_id: str) -> ToolFiles:
        """``async with store.track_files(thread_id, tool_call_id) as files:`` —
        every ``files.write(...)``/``files.delete(...)`` is recorded, then made."""
        self._check_open()
        return self.files.track(thread_id, operation_id)

    async def file_changes(
        self, thread_id: str, *, operation_id: str | None = None
    ) -> list[FileChange]:
        """The thread's recorded file changes, oldest first (of one operation)."""
        return await self._on_thread(
            thread_id, lambda: self.files.changes(thread_id, operation_id=operation_id)
        )

    async def file_operations(
        self, thread_id: str, *, operation_id: str | None = None, diffs: bool = True
    ) -> list[FileOperation]:
        """The thread's file changes by operation, each with its unified diff."""
        return await self._on_thread(
            thread_id,
            lambda: self.files.operations(thread_id, operation_id=operation_id, diffs=diffs),
        )

    async def file_content(self, content_hash: str) -> bytes:
        """The bytes of a recorded content (a ``FileState.hash``)."""
        self._check_open()
        return await self.files.content(content_hash)

    async def rollback_operation(
        self, thread_id: str, operation_id: str, *, force: bool = False, dry_run: bool = False
    ) -> RollbackReport:
        """Undo every file change of ``operation_id``, newest first, and report
        per file what was done and what was refused (a file edited since the
        change is refused unless ``force``). The rollback is recorded as an
        operation of its own (``report.operation_id``): roll that back to undo
        it. ``dry_run`` reports without writing anything. Running a rollback
        that was interrupted again finishes it."""
        return await self._on_thread(
            thread_id,
            lambda: self.files.rollback_operation(
                thread_id, operation_id, force=force, dry_run=dry_run
            ),
        )

    async def rollback_to(
        self, thread_id: str, message_id: str, *, force: bool = False, dry_run: bool = False
    ) -> RollbackReport:
        """Undo every file change recorded after message ``message_id`` was
        appended (the "rewind"), with the same reporting, recording, ``force``
        and ``dry_run`` as :meth:`rollback_operation`."""
        return await self._on_thread(
            thread_id,
            lambda: self.files.rollback_to(thread_id, message_id, force=force, dry_run=dry_run),
        )
