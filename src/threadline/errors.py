"""One tree of errors. Every message says which thread and what to do next.

Driver errors (sqlite3, later asyncpg and httpx) are translated into these in
one place per backend, always with ``raise ... from exc``.
"""

from __future__ import annotations


class ThreadlineError(Exception):
    """Root of every error threadline raises on purpose."""


class ThreadNotFound(ThreadlineError, KeyError):
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(thread_id)

    def __str__(self) -> str:
        return f"Thread {self.thread_id} not found (check the id with `threadline list`)"


class ThreadExists(ThreadlineError):
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(f"Thread {thread_id} already exists; choose another id or omit it")


class VersionConflict(ThreadlineError):
    """A write was based on a version that is no longer the head. Nothing was written."""

    def __init__(self, thread_id: str, expected: int, actual: int) -> None:
        self.thread_id = thread_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Thread {thread_id} is at version {actual}, not {expected}: "
            "reload it and apply your change again"
        )


class WriterBusy(ThreadlineError):
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(f"Thread {thread_id} is already being modified")


class WriterClosed(ThreadlineError):
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(
            f"The writer of thread {thread_id} was disposed; acquire a new one to keep writing"
        )


class InvalidDelta(ThreadlineError, ValueError):
    """A delta or a modification that cannot apply to the thread as it is."""


class InvalidModification(InvalidDelta):
    pass


class StoreBusy(ThreadlineError):
    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"The store {path} is locked by another process ({detail}); try again shortly"
        )


class StoreCorrupt(ThreadlineError):
    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(f"The store {path} is not a readable threadline database ({detail})")


class StoreClosed(ThreadlineError):
    def __init__(self) -> None:
        super().__init__("The store is closed; open it again with ThreadStore.open()")
