"""ThreadStore: the facade users call. It talks only to the recorder contract."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import JsonValue

from threadline import environment
from threadline.deltas import Delta, MessageDelta, ThreadCreate, diff, fold
from threadline.errors import (
    StoreClosed,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.events import (
    THREAD_CREATED,
    THREAD_DELETED,
    THREAD_UPDATED,
    EventBus,
    ThreadEvent,
)
from threadline.ids import new_thread_id, now_ms
from threadline.model import Message, Thread, ThreadListPage, ThreadPage
from threadline.recorders.base import RecordedDelta, ThreadRecorder
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.sqlite import SqliteRecorder, Synchronous
from threadline.writer import Modifier, ThreadWriter, call_modifier


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
    stamp, sep, thread_id = cursor.partition(":")
    if not sep or not stamp.isdigit():
        raise ValueError(f"Not a thread list cursor: {cursor!r}")
    return int(stamp), thread_id


class ThreadStore:
    """Versioned thread storage: create, read, modify, page, write exclusively.

    Every change is a list of deltas appended at the version it was based on;
    a stale change raises :class:`VersionConflict` and writes nothing. A call
    that changes a thread returns only once the change is durable.
    """

    def __init__(self, recorder: ThreadRecorder) -> None:
        self.recorder = recorder
        self.events = EventBus()
        self._writers: dict[str, ThreadWriter] = {}
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> ThreadStore:
        """Open a store: a SQLite file, ``":memory:"`` (in-memory), or the default
        under ``$THREADLINE_HOME`` when ``path`` is ``None``.

        ``synchronous`` is SQLite's durability setting (``FULL``: a commit is on
        disk before it returns); ``busy_timeout_ms`` is how long to wait for
        another process's write lock before raising :class:`StoreBusy`."""
        if path is not None and str(path) == ":memory:":
            return cls(MemoryRecorder())
        target = default_db_path() if path is None else Path(path)
        recorder = await asyncio.to_thread(
            SqliteRecorder, target, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
        )
        return cls(recorder)

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
        if thread is None:
            raise ThreadNotFound(thread_id)
        return thread

    async def thread_at(self, thread_id: str, version: int) -> Thread:
        """The thread as it was at ``version`` (the fold of its log up to it)."""
        self._check_open()
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
            raise ThreadNotFound(thread_id)
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

    async def list_threads(self, limit: int = 50, cursor: str | None = None) -> ThreadListPage:
        """Threads by newest activity first; pass ``next_cursor`` back for the next page."""
        self._check_open()
        after = _decode_cursor(cursor) if cursor else None
        heads = await self.recorder.list_heads(limit=limit + 1, after=after)
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

    async def append_message(
        self, thread_id: str, message: Message, expected_version: int | None = None
    ) -> int:
        """Append one message without reading the thread; returns the new version.

        Without ``expected_version`` the message goes on top of whatever the
        head is (an append commutes with any change, so a race is retried);
        with it, a moved head raises :class:`VersionConflict`.
        """
        self._check_open()
        delta = MessageDelta.of(message)
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

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and its whole log. Refused while a writer holds it."""
        self._check_open()
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
        self._closed = True
        await self.recorder.close()
