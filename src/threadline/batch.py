"""Batch reads and batch writes.

:class:`BatchReader` loads many threads with one recorder call (one query on
SQLite), and concurrent reads of the same id share one in-flight load.

:class:`BatchWriter` collects the write operations that arrive within a
window (100 ms by default) from any number of callers, groups them by kind
and commits each kind in one transaction: creates, then updates (so that an
update may follow a create of the same window), then deletes. Each caller
gets its own result or its own error: one bad operation does not fail the
others. An operation whose caller was cancelled before its window closed is
not written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue

from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.errors import ThreadlineError, ThreadNotFound, WriterBusy
from threadline.events import THREAD_CREATED, THREAD_DELETED, THREAD_UPDATED, ThreadEvent
from threadline.ids import new_thread_id, now_ms
from threadline.model import Message, Thread, ThreadHead
from threadline.recorders.roles import Append, ThreadLog, WriterLease

DEFAULT_WINDOW = 0.1  # seconds
DEFAULT_MAX_OPERATIONS = 1000

# -- reads ---------------------------------------------------------------------------


@dataclass
class ReadStats:
    """What a :class:`BatchReader` did: ``loads`` recorder calls for
    ``loaded`` ids, and ``shared`` ids served by a load already in flight."""

    loads: int = 0
    loaded: int = 0
    shared: int = 0


class BatchReader:
    """Many threads in one load; concurrent reads of an id share its load."""

    def __init__(self, recorder: ThreadLog) -> None:
        self._recorder = recorder
        self._in_flight: dict[str, asyncio.Future[Thread | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = ReadStats()

    async def read(self, thread_ids: Sequence[str]) -> dict[str, Thread | None]:
        """Each requested id mapped to its current thread, or ``None`` if there is none."""
        wanted = list(dict.fromkeys(thread_ids))
        to_load = [i for i in wanted if i not in self._in_flight]
        self.stats.shared += len(wanted) - len(to_load)
        if to_load:
            loop = asyncio.get_running_loop()
            futures = {i: loop.create_future() for i in to_load}
            self._in_flight.update(futures)
            # The load runs as its own task: a caller that gives up does not
            # cancel it for the others waiting on it.
            task = loop.create_task(self._load(futures))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        waiting = {i: self._in_flight[i] for i in wanted}
        return {i: await asyncio.shield(future) for i, future in waiting.items()}

    async def _load(self, futures: dict[str, asyncio.Future[Thread | None]]) -> None:
        self.stats.loads += 1
        self.stats.loaded += len(futures)
        try:
            found = await self._recorder.load_many(list(futures))
        except BaseException as exc:
            # Every caller waiting on these ids gets the error; the task itself
            # ends quietly, as nobody awaits it.
            for future in futures.values():
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # retrieved here: nobody may be left waiting
                else:
                    future.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            for thread_id, future in futures.items():
                if not future.done():
                    future.set_result(found.get(thread_id))
        finally:
            for thread_id, future in futures.items():
                if self._in_flight.get(thread_id) is future:
                    del self._in_flight[thread_id]


# -- writes --------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateOp:
    """Create a thread (version 1, then one version per message). The
    environment is not captured: give ``env`` if it matters."""

    title: str | None = None
    id: str = field(default_factory=new_thread_id)
    messages: Sequence[Message] = ()
    env: dict[str, JsonValue] = field(default_factory=dict)
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    parent_thread_id: str | None = None
    origin_thread_id: str | None = None
    created: int = field(default_factory=now_ms)

    @property
    def thread_id(self) -> str:
        return self.id

    def deltas(self) -> list[Delta]:
        create = ThreadCreate(
            id=self.id,
            created=self.created,
            title=self.title,
            parent_thread_id=self.parent_thread_id,
            origin_thread_id=self.origin_thread_id,
            env=self.env,
            metadata=self.metadata,
        )
        return [create, *(MessageDelta.of(m) for m in self.messages)]


@dataclass(frozen=True)
class UpdateOp:
    """Append ``deltas`` to a thread that must be at ``expected_version``."""

    thread_id: str
    expected_version: int
    deltas: Sequence[Delta]


@dataclass(frozen=True)
class DeleteOp:
    """Delete a thread and its log (refused while a writer holds it)."""

    thread_id: str


WriteOp = CreateOp | UpdateOp | DeleteOp


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one operation: the new head (``None`` for a delete) or its error."""

    operation: WriteOp
    head: ThreadHead | None
    error: ThreadlineError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> ThreadHead | None:
        """The head, or the operation's error raised."""
        if self.error is not None:
            raise self.error
        return self.head


@dataclass(frozen=True)
class _Pending:
    operation: WriteOp
    append: Append | None  # what a create or an update appends
    future: asyncio.Future[ThreadHead | None]


class BatchWriter:
    """Group write operations arriving within ``window`` seconds into one
    transaction per kind. ``window`` may be changed at any time; it applies
    from the next window. A window with ``max_operations`` operations closes
    at once."""

    def __init__(
        self,
        recorder: ThreadLog,
        *,
        window: float = DEFAULT_WINDOW,
        max_operations: int = DEFAULT_MAX_OPERATIONS,
        emit: Callable[[ThreadEvent], None] | None = None,
    ) -> None:
        self._recorder = recorder
        self.window = window
        self.max_operations = max_operations
        self._emit = emit
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self.transactions = 0  # recorder calls that committed a group

    async def submit(self, operation: WriteOp) -> ThreadHead | None:
        """Queue ``operation`` in the current window; its head once committed
        (``None`` for a delete), or its own error."""
        return await self._enqueue(operation)

    async def write(self, operations: Sequence[WriteOp]) -> list[WriteOutcome]:
        """Queue ``operations`` in the current window; an outcome for each, in order."""
        futures = [self._enqueue(op) for op in operations]
        results = await asyncio.gather(*futures, return_exceptions=True)
        outcomes: list[WriteOutcome] = []
        for operation, result in zip(operations, results, strict=True):
            if isinstance(result, ThreadlineError):
                outcomes.append(WriteOutcome(operation, None, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                outcomes.append(WriteOutcome(operation, result, None))
        return outcomes

    def _enqueue(self, operation: WriteOp) -> asyncio.Future[ThreadHead | None]:
        append: Append | None = None
        if isinstance(operation, CreateOp):  # built here: a bad one fails its caller now
            append = (operation.id, 0, operation.deltas())
        elif isinstance(operation, UpdateOp):
            append = (operation.thread_id, operation.expected_version, list(operation.deltas))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ThreadHead | None] = loop.create_future()
        self._pending.append(_Pending(operation, append, future))
        if len(self._pending) >= self.max_operations:
            self._close_window()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._close_window)
        return future

    def _close_window(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._commit(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)

    async def flush(self) -> None:
        """Close the current window now and wait until everything queued is committed."""
        self._close_window()
        while self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)

    async def _commit(self, batch: list[_Pending]) -> None:
        live = [item for item in batch if not item.future.cancelled()]
        for kind in (CreateOp, UpdateOp, DeleteOp):
            group = [item for item in live if isinstance(item.operation, kind)]
            if not group:
                continue
            try:
                if kind is DeleteOp:
                    await self._delete_group(group)
                else:
                    await self._append_group(group)
            except BaseException as exc:
                # The transaction itself failed (a busy database, a closed
                # store): every caller of this kind still waiting gets that error.
                for item in group:
                    if item.future.done():
                        continue
                    if isinstance(exc, Exception):
                        item.future.set_exception(exc)
                    else:
                        item.future.cancel()
                if not isinstance(exc, Exception):
                    raise

    async def _append_group(self, group: list[_Pending]) -> None:
        appends = [item.append for item in group if item.append is not None]
        results = await self._recorder.append_each(appends)
        self.transactions += 1
        for item, result in zip(group, results, strict=True):
            if isinstance(result, ThreadlineError):
                _settle(item.future, error=result)
                continue
            if self._emit is not None:
                created = isinstance(item.operation, CreateOp)
                self._emit(
                    ThreadEvent(THREAD_CREATED if created else THREAD_UPDATED, result.id, result.v)
                )
            _settle(item.future, head=result)

    async def _delete_group(self, group: list[_Pending]) -> None:
        heads = await self._recorder.heads_many([item.operation.thread_id for item in group])
        leases: list[WriterLease] = []
        allowed: list[_Pending] = []
        try:
            for item in group:
                thread_id = item.operation.thread_id
                if thread_id not in heads:
                    _settle(item.future, error=ThreadNotFound(thread_id))
                    continue
                try:
                    leases.append(self._recorder.acquire_lease(thread_id))
                except WriterBusy as exc:
                    _settle(item.future, error=exc)
                    continue
                allowed.append(item)
            deleted = await self._recorder.delete_many([i.operation.thread_id for i in allowed])
        finally:
            for lease in leases:
                lease.release()
        self.transactions += 1
        for item, done in zip(allowed, deleted, strict=True):
            thread_id = item.operation.thread_id
            if not done:
                _settle(item.future, error=ThreadNotFound(thread_id))
                continue
            if self._emit is not None:
                self._emit(ThreadEvent(THREAD_DELETED, thread_id, heads[thread_id].v))
            _settle(item.future, head=None)


def _settle(
    future: asyncio.Future[ThreadHead | None],
    *,
    head: ThreadHead | None = None,
    error: ThreadlineError | None = None,
) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(head)
    else:
        future.set_exception(error)
