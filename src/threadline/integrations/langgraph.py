"""LangGraph checkpointers backed by threadline (``pip install 'threadline[langgraph]'``).

:class:`ThreadlineSaver` (sync) and :class:`AsyncThreadlineSaver` (async)
follow LangGraph's own savers::

    with ThreadlineSaver.from_path("threads.db") as saver:
        graph = builder.compile(checkpointer=saver)

    async with AsyncThreadlineSaver.from_path("threads.db") as saver:
        graph = builder.compile(checkpointer=saver)

and both accept an open :class:`~threadline.ThreadStore` (SQLite, PostgreSQL
through a tiered store, ...): ``AsyncThreadlineSaver(store)``. Each LangGraph
(thread_id, checkpoint_ns) is one threadline thread (``saver.threadline_thread_id(config)``)
whose messages are the graph's ``messages`` channel; docs/langgraph.md
describes the mapping.
"""

from __future__ import annotations

import abc
import asyncio
import os
import random
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from threadline.integrations.langgraph_store import CheckpointStore, thread_key
from threadline.integrations.portal import Portal
from threadline.store import ThreadStore

__all__ = ["AsyncThreadlineSaver", "ThreadlineSaver", "thread_key"]

_T = TypeVar("_T")


class _ThreadlineCheckpointer(BaseCheckpointSaver[int], abc.ABC):
    """What both savers share: the mapping onto a :class:`ThreadStore`, and
    every checkpointer method, written once. A saver says how its methods
    reach the store's loop: :meth:`_blocking` runs a coroutine there and waits
    (the sync methods), :meth:`_awaiting` awaits it from the caller's loop
    (the async ones)."""

    def __init__(
        self,
        store: ThreadStore,
        *,
        serde: SerializerProtocol | None = None,
        messages_channel: str | None = "messages",
    ) -> None:
        super().__init__(serde=serde)
        self.store = store
        self._checkpoints = CheckpointStore(store, self.serde, messages_channel=messages_channel)

    def threadline_thread_id(self, config: RunnableConfig) -> str:
        """The threadline thread that stores a LangGraph config's (thread_id,
        checkpoint_ns); its metadata's ``langgraph`` names them."""
        return self._checkpoints.threadline_thread_id(config)

    # LangGraph types a saver's versions as one type; threadline's are ints, and
    # a thread whose checkpoints came from LangGraph's own savers keeps theirs.
    def get_next_version(  # type: ignore[override]
        self, current: int | str | None, channel: None
    ) -> int | str:
        """Integers (LangGraph's default); a thread whose checkpoints came from
        one of LangGraph's own savers (``"<n>.<random>"`` strings) goes on in
        their format."""
        if isinstance(current, str):
            return f"{int(current.split('.')[0]) + 1:032}.{random.random():016}"
        return super().get_next_version(current, channel)

    @abc.abstractmethod
    def _blocking(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the store's loop and wait for it (from any thread)."""

    @abc.abstractmethod
    async def _awaiting(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coro`` on the store's loop, from the caller's loop."""

    # -- async --------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._awaiting(self._checkpoints.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await self._awaiting(
            self._checkpoints.find_checkpoints(config, filter=filter, before=before, limit=limit)
        )
        for item in found:  # each tuple made when it is asked for
            yield await self._awaiting(self._checkpoints.checkpoint_tuple(*item))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._awaiting(
            self._checkpoints.put(config, checkpoint, metadata, new_versions)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._awaiting(self._checkpoints.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._awaiting(self._checkpoints.delete_thread(str(thread_id)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Forget the checkpoints (and writes) of these runs in every thread
        (a scan of the store's LangGraph threads)."""
        await self._awaiting(self._checkpoints.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every namespace, checkpoint, write and message to a new thread id."""
        await self._awaiting(
            self._checkpoints.copy_thread(str(source_thread_id), str(target_thread_id))
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest`` keeps each namespace's latest checkpoint and the
        ancestors its delta channels need; ``delete`` forgets every checkpoint.
        The thread's messages and log stay readable."""
        await self._awaiting(self._checkpoints.prune([str(t) for t in thread_ids], strategy))

    # -- sync ---------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._blocking(self._checkpoints.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        found = self._blocking(
            self._checkpoints.find_checkpoints(config, filter=filter, before=before, limit=limit)
        )
        for item in found:  # each tuple made when it is asked for
            yield self._blocking(self._checkpoints.checkpoint_tuple(*item))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._blocking(self._checkpoints.put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._blocking(self._checkpoints.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._blocking(self._checkpoints.delete_thread(str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._blocking(self._checkpoints.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._blocking(self._checkpoints.copy_thread(str(source_thread_id), str(target_thread_id)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._blocking(self._checkpoints.prune([str(t) for t in thread_ids], strategy))


class AsyncThreadlineSaver(_ThreadlineCheckpointer):
    """An async LangGraph checkpointer storing in a :class:`ThreadStore`.

    Use it from the event loop it was made on. Its sync methods work from
    other threads (LangGraph calls them there), as ``AsyncSqliteSaver``'s do.
    """

    def __init__(
        self,
        store: ThreadStore,
        *,
        serde: SerializerProtocol | None = None,
        messages_channel: str | None = "messages",
    ) -> None:
        """``store`` stays the caller's (it is not closed by the saver);
        ``messages_channel`` is the channel mirrored as the thread's messages
        (``None``: none)."""
        super().__init__(store, serde=serde, messages_channel=messages_channel)
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    @classmethod
    @asynccontextmanager
    async def from_path(
        cls, path: str | os.PathLike[str], **kwargs: Any
    ) -> AsyncIterator[AsyncThreadlineSaver]:
        """A saver on the SQLite store at ``path`` (``":memory:"`` for a
        throwaway one), closed on exit."""
        store = await ThreadStore.open(path)
        try:
            yield cls(store, **kwargs)
        finally:
            await store.close()

    async def _awaiting(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await coro  # the saver's loop is the caller's

    def _blocking(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """From another thread (LangGraph's sync calls): run on the saver's loop."""
        loop = self.loop
        if loop is None:
            coro.close()
            raise RuntimeError(
                "AsyncThreadlineSaver was made outside an event loop: use its async "
                "methods, or ThreadlineSaver for sync code"
            )
        try:
            if asyncio.get_running_loop() is loop:
                coro.close()
                raise asyncio.InvalidStateError(
                    "Synchronous calls to AsyncThreadlineSaver are only allowed from a "
                    "different thread; from the main thread use the async methods "
                    "(graph.ainvoke, graph.aget_state, ...)"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


class ThreadlineSaver(_ThreadlineCheckpointer):
    """A sync LangGraph checkpointer storing in a :class:`ThreadStore`.

    Its work runs on an event loop of its own (a background thread), so it can
    be called from any thread, inside a running event loop or outside one.
    Its async methods run there too. Call :meth:`close` (or use
    :meth:`from_path`) to stop that loop.
    """

    def __init__(
        self,
        store: ThreadStore,
        *,
        serde: SerializerProtocol | None = None,
        messages_channel: str | None = "messages",
    ) -> None:
        """``store`` stays the caller's (it is not closed by the saver). A
        SQLite store may be opened on any loop; a PostgreSQL one must be opened
        on this saver's (``saver.run(...)``), or use :class:`AsyncThreadlineSaver`."""
        super().__init__(store, serde=serde, messages_channel=messages_channel)
        self._portal = Portal("threadline-langgraph")

    @classmethod
    @contextmanager
    def from_path(cls, path: str | os.PathLike[str], **kwargs: Any) -> Iterator[Self]:
        """A saver on the SQLite store at ``path`` (``":memory:"`` for a
        throwaway one), closed on exit."""
        portal = Portal("threadline-langgraph")
        try:
            store = portal.call(ThreadStore.open(path))
        except BaseException:
            portal.close()
            raise
        saver = cls.__new__(cls)
        _ThreadlineCheckpointer.__init__(saver, store, **kwargs)
        saver._portal = portal
        try:
            yield saver
        finally:
            try:
                portal.call(store.close())
            finally:
                portal.close()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the saver's loop (e.g. a store's own calls)."""
        return self._portal.call(coro)

    def close(self) -> None:
        """Stop the saver's loop (the store stays open). Idempotent."""
        self._portal.close()

    def _blocking(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.run(coro)

    async def _awaiting(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await self._portal.run(coro)  # on the saver's loop, from the caller's
