"""The in-process event bus: ``thread:created``, ``thread:updated``, ``thread:deleted``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

THREAD_CREATED = "thread:created"
THREAD_UPDATED = "thread:updated"
THREAD_DELETED = "thread:deleted"
THREAD_ARCHIVED = "thread:archived"  # moved to cold storage (threadline.lifecycle.archive)
THREAD_RESTORED = "thread:restored"  # back from cold storage, at the same version


@dataclass(frozen=True, slots=True)
class ThreadEvent:
    type: str
    thread_id: str
    v: int


Subscriber = Callable[[ThreadEvent], None]


class EventBus:
    """Synchronous fan-out to subscribers; a failing subscriber is logged, not propagated."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[frozenset[str] | None, Subscriber]] = []

    def subscribe(
        self, callback: Subscriber, types: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``callback`` for every event (or those of ``types``); returns an unsubscribe."""
        entry = (None if types is None else frozenset(types), callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, event: ThreadEvent) -> None:
        for types, callback in list(self._subscribers):
            if types is not None and event.type not in types:
                continue
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber failed on %s for %s", event.type, event.thread_id)
