"""Group commit: concurrent writes that wait for one another go to the database together.

The PostgreSQL recorder numbers a workspace's changes under a lock that each
commit holds until its disk flush ends (so that the change feed is in commit
order), so one workspace's commits cannot share a flush: N concurrent appends
cost N flushes, one after the other, and N round trips. :class:`CommitGroups`
gives them back their share. An item submitted while a group is running waits,
and the items that waited go together as the next group (at most ``size``, at
most one per key, so that no item builds on another of its own group), in one
transaction with one flush. The SQLite recorder's writer thread does the same.

With nothing running, an item goes out at once, alone. A second group (up to
``slots``) starts beside a running one only once that one has run for
``patience`` seconds: a group stuck behind another transaction's row lock does
not hold up the rest of the workspace for longer than that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class CommitGroups(Generic[_T, _R]):
    """Runs submitted items in groups with ``run``, which returns one result or
    exception per item, in order; :meth:`submit` returns it or raises it."""

    def __init__(
        self,
        run: Callable[[list[_T]], Awaitable[Sequence[_R | Exception]]],
        key: Callable[[_T], Hashable],
        *,
        size: int = 64,
        slots: int = 2,
        patience: float = 0.05,
    ) -> None:
        self._run = run
        self._key = key
        self._size = size
        self._slots = slots
        self._patience = patience
        self._waiting: list[tuple[_T, asyncio.Future[_R]]] = []
        self._busy_keys: set[Hashable] = set()
        self._running: dict[asyncio.Task[None], float] = {}  # group -> when it started
        self._wake: asyncio.TimerHandle | None = None

    async def submit(self, item: _T) -> _R:
        future: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start_groups()
        return await future

    def _start_groups(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting and len(self._running) < self._slots:
            if self._running:
                due = max(self._running.values()) + self._patience
                if loop.time() < due:  # the running group is not stuck (yet)
                    if self._wake is None or self._wake.when() > due:
                        if self._wake is not None:
                            self._wake.cancel()
                        self._wake = loop.call_at(due, self._woken)
                    return
            group = self._next_group()
            if not group:
                return
            keys = {self._key(item) for item, _ in group}
            self._busy_keys |= keys
            task = loop.create_task(self._commit(group, keys))
            self._running[task] = loop.time()

    def _woken(self) -> None:
        self._wake = None
        self._start_groups()

    def _next_group(self) -> list[tuple[_T, asyncio.Future[_R]]]:
        """Takes the waiting items of the next group off the queue, oldest first."""
        group: list[tuple[_T, asyncio.Future[_R]]] = []
        keys: set[Hashable] = set()
        left: list[tuple[_T, asyncio.Future[_R]]] = []
        for item, future in self._waiting:
            if future.done():  # its caller gave up before it went out
                continue
            key = self._key(item)
            if len(group) < self._size and key not in keys and key not in self._busy_keys:
                group.append((item, future))
                keys.add(key)
            else:
                left.append((item, future))
        self._waiting = left
        return group

    async def _commit(
        self, group: list[tuple[_T, asyncio.Future[_R]]], keys: set[Hashable]
    ) -> None:
        try:
            results = await self._run([item for item, _ in group])
        except Exception as exc:  # every caller of the group gets it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for _, future in group:
                future.cancel()
            raise
        else:
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._busy_keys -= keys
            task = asyncio.current_task()
            if task is not None:
                self._running.pop(task, None)
            if self._wake is not None and not self._running:
                self._wake.cancel()
                self._wake = None
            self._start_groups()
