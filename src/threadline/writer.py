"""ThreadWriter: the one writer a thread has at a time.

Durability first: every change is committed before the call that made it
returns, so a crash loses nothing that was acknowledged (group commit in the
recorder keeps that cheap). The spec's *debounced autosave* is what spreads a
change beyond the local store: ``thread:updated`` events, which the sync queue
and other followers listen to, fire at most once per ``autosave_delay`` per
writer, carrying the newest version. ``dispose()`` fires the pending one at
once, releases the lease and ends every ``observe()`` iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from threadline.deltas import Delta, MessageDelta, MessageType, TruncateDelta, diff, fold
from threadline.errors import InvalidDelta, VersionConflict, WriterClosed
from threadline.events import THREAD_UPDATED, ThreadEvent
from threadline.model import Message, Thread
from threadline.recorders.base import WriterLease

if TYPE_CHECKING:
    from threadline.store import ThreadStore

_CONFLICT_RETRIES = 3
_END = object()

Modifier = Callable[[Thread], Thread | Awaitable[Thread]]

_MESSAGE_TYPES: dict[str, MessageType] = {
    "user": "user:message",
    "assistant": "assistant:message",
    "system": "system:message",
}


def message_delta(message: Message) -> MessageDelta:
    """``MessageDelta.of(message)`` without validating again what is known valid.

    ``message`` is a validated :class:`Message` (pydantic would not look into it
    again either), and the delta's type is the one its role names, which is all
    the delta's own validator checks (docs/performance.md).
    """
    kind = _MESSAGE_TYPES.get(message.role)
    if kind is None:  # only a Message made with model_construct can get here
        raise InvalidDelta(f"A message cannot have the role {message.role!r}")
    return MessageDelta._trusted({"type": kind, "message": message})


async def call_modifier(modifier: Modifier, thread: Thread) -> Thread:
    """Run a modifier that may be a plain function or a coroutine function."""
    result = modifier(thread)
    if inspect.isawaitable(result):
        return await result
    return result


class ThreadWriter:
    """Exclusive, durable writes to one thread. Get one from ``store.acquire_writer``."""

    def __init__(
        self,
        store: ThreadStore,
        thread: Thread,
        lease: WriterLease,
        *,
        autosave_delay: float = 1.0,
    ) -> None:
        self._store = store
        self._thread = thread
        self._lease = lease
        self._autosave_delay = autosave_delay
        self._lock = asyncio.Lock()
        self._observers: list[asyncio.Queue[Thread | object]] = []
        self._pending_event: asyncio.TimerHandle | None = None
        self._disposed = False

    @property
    def thread_id(self) -> str:
        return self._thread.id

    @property
    def thread(self) -> Thread:
        """The thread as last committed through this writer."""
        return self._thread

    @property
    def disposed(self) -> bool:
        return self._disposed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    # -- changes ----------------------------------------------------------

    async def modify(self, modifier: Modifier) -> Thread:
        """Apply the spec's modifier and return the committed thread.

        If the thread moved on underneath (a ``modify_thread`` call outside
        this writer), the writer reloads it and runs the modifier again on
        the new state, a few times at most, then raises :class:`VersionConflict`.
        """
        async with self._lock:
            self._check_live()
            for attempt in range(_CONFLICT_RETRIES + 1):
                base = self._thread
                changed = await call_modifier(modifier, base)
                try:
                    return await self._commit(base, diff(base, changed))
                except VersionConflict:
                    if attempt == _CONFLICT_RETRIES:
                        raise
                    self._thread = await self._store.get_thread(self.thread_id)
            raise AssertionError("unreachable")

    async def append(self, message: Message) -> Thread:
        """Append one message; returns the new thread once it is durable."""
        return await self.extend([message])

    async def extend(self, messages: Sequence[Message]) -> Thread:
        """Append several messages atomically (one commit, one version each)."""
        return await self._apply_deltas([message_delta(m) for m in messages])

    async def set_title(self, title: str | None) -> Thread:
        return await self.modify(lambda t: t.with_title(title))

    async def truncate(self, from_index: int) -> Thread:
        """Drop the messages from ``from_index`` on (the log keeps them)."""
        return await self._apply_deltas([TruncateDelta(from_index=from_index)])

    async def _apply_deltas(self, deltas: list[Delta]) -> Thread:
        async with self._lock:
            self._check_live()
            for attempt in range(_CONFLICT_RETRIES + 1):
                try:
                    return await self._commit(self._thread, deltas)
                except VersionConflict:
                    if attempt == _CONFLICT_RETRIES or not all(
                        isinstance(d, MessageDelta) for d in deltas
                    ):
                        raise
                    # Appends commute with anything: rebase them on the new head.
                    self._thread = await self._store.get_thread(self.thread_id)
            raise AssertionError("unreachable")

    async def _commit(self, base: Thread, deltas: list[Delta]) -> Thread:
        if not deltas:
            return base
        await self._store.recorder.append(base.id, base.v, deltas)
        self._thread = fold(deltas, base)
        for queue in self._observers:
            queue.put_nowait(self._thread)
        self._schedule_event()
        return self._thread

    def _check_live(self) -> None:
        if self._disposed:
            raise WriterClosed(self.thread_id)

    # -- debounced propagation ----------------------------------------------

    def _schedule_event(self) -> None:
        if self._pending_event is None:
            loop = asyncio.get_running_loop()
            self._pending_event = loop.call_later(self._autosave_delay, self._fire_event)

    def _fire_event(self) -> None:
        self._pending_event = None
        self._store.events.emit(ThreadEvent(THREAD_UPDATED, self.thread_id, self._thread.v))

    async def flush(self) -> None:
        """Fire the pending ``thread:updated`` event now instead of after the delay."""
        if self._pending_event is not None:
            self._pending_event.cancel()
            self._fire_event()

    # -- observing ---------------------------------------------------------

    async def observe(self) -> AsyncIterator[Thread]:
        """The current thread, then every committed state, until ``dispose()``."""
        queue: asyncio.Queue[Thread | object] = asyncio.Queue()
        queue.put_nowait(self._thread)
        if self._disposed:
            queue.put_nowait(_END)
        self._observers.append(queue)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                assert isinstance(item, Thread)
                yield item
        finally:
            with contextlib.suppress(ValueError):
                self._observers.remove(queue)

    async def dispose(self) -> None:
        """Final save: propagate the last change now, release the lease, end observers."""
        async with self._lock:
            if self._disposed:
                return
            self._disposed = True
            await self.flush()
            self._lease.release()
            self._store._writer_done(self)
            for queue in self._observers:
                queue.put_nowait(_END)
