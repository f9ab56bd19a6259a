"""An event loop on a thread of its own, for integrations that are called from
any thread and any event loop (a sync LangGraph saver, an Agents SDK session
used from several loops): a store belongs to the loop it was opened on, so
its work runs there, and callers wait for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class Portal:
    """An event loop running on its own (daemon) thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the portal's loop and wait for it (from another thread)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("A portal cannot be called from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the portal's loop, awaited from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
