"""One tree of errors. Every message says which thread and what to do next.

Driver errors (sqlite3, later asyncpg and httpx) are translated into these in
one place per backend, always with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import ClassVar


class ThreadlineError(Exception):
    """Root of every error threadline raises on purpose.

    ``retryable`` says whether the same call may succeed if simply made again
    later (a busy database, and later a network failure, a timeout or a server
    error >= 500): :func:`threadline.retry.with_retry` retries exactly those.
    """

    retryable: ClassVar[bool] = False


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
    retryable = True

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"The store {path} is locked by another process ({detail}); try again shortly"
        )


class StoreCorrupt(ThreadlineError):
    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(f"The store {path} is not a readable threadline database ({detail})")


class StoreFull(ThreadlineError):
    """The disk (or the file system's quota) holding the store is full. Nothing of
    the failed write was kept; it can be made again once there is space."""

    retryable = True

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"The disk holding the store {path} is full ({detail}); nothing was written. "
            "Free some space on it, then retry"
        )


class StoreClosed(ThreadlineError):
    def __init__(self) -> None:
        super().__init__("The store is closed; open it again with ThreadStore.open()")


class RoleUnavailable(ThreadlineError):
    """The backend does not have the storage role an operation needs (for example
    file tracking, a :class:`~threadline.recorders.roles.FileLog`, on a store
    backed by the HTTP client). Nothing was done."""

    def __init__(self, role: str, backend: str, location: str, purpose: str) -> None:
        self.role = role
        self.backend = backend
        self.location = location
        super().__init__(
            f"{purpose} needs a {role}, which the {backend} backend ({location}) does not "
            "have: use a local store (SQLite, PostgreSQL or memory) for it"
        )


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: a :class:`ThreadlineError` marked
    ``retryable``, or an OS-level timeout or dropped connection."""
    if isinstance(exc, ThreadlineError):
        return exc.retryable
    return isinstance(exc, TimeoutError | ConnectionError)


# -- lifecycle: archive and restore --------------------------------------------


class ThreadArchived(ThreadlineError):
    """The thread is in cold storage and this store does not restore on read."""

    def __init__(self, thread_id: str, archived_at: int) -> None:
        self.thread_id = thread_id
        self.archived_at = archived_at
        super().__init__(
            f"Thread {thread_id} is archived (since {_iso(archived_at)}): restore it with "
            f"`threadline restore {thread_id}` or `await store.restore_thread(...)`"
        )


class ArchiveError(ThreadlineError):
    """Cold storage failed or holds something other than what the store recorded."""


class ArchiveObjectMissing(ArchiveError):
    def __init__(self, thread_id: str, object_url: str) -> None:
        self.thread_id = thread_id
        self.object_url = object_url
        super().__init__(
            f"The archive object {object_url} of thread {thread_id} is missing, so the thread "
            "cannot be restored; nothing was changed. Put the object back (from a backup) and "
            "retry, and run `threadline doctor` to list every damaged archive"
        )


class ArchiveObjectCorrupt(ArchiveError):
    def __init__(self, thread_id: str, object_url: str, detail: str) -> None:
        self.thread_id = thread_id
        self.object_url = object_url
        super().__init__(
            f"The archive object {object_url} of thread {thread_id} is damaged ({detail}), so "
            "the thread cannot be restored; nothing was changed. Put an intact copy back (from "
            "a backup) and retry, and run `threadline doctor` to list every damaged archive"
        )


class ArchiveUnavailable(ArchiveError):
    retryable = True

    def __init__(self, location: str, detail: str) -> None:
        self.location = location
        super().__init__(
            f"The cold storage {location} cannot be used ({detail}); check the archive URL "
            "(THREADLINE_ARCHIVE_URL), its credentials and the network, then retry"
        )


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


# -- file tracking and rollback (threadline.files) ------------------------------


class NoWorkingDirectory(ThreadlineError):
    """The thread records no usable ``env.cwd``, so no path can be resolved."""

    def __init__(self, thread_id: str, cwd: object) -> None:
        self.thread_id = thread_id
        where = "records none" if cwd is None else f"is {cwd!r}, not a directory here"
        super().__init__(
            f"Thread {thread_id} has no working directory to track files in (its env.cwd "
            f"{where}); create the thread with env={{'cwd': ...}} pointing at the project"
        )


class PathOutsideWorkspace(ThreadlineError, ValueError):
    """A path that resolves outside the thread's working directory: never written."""

    def __init__(self, thread_id: str, path: str, cwd: str, detail: str) -> None:
        self.thread_id = thread_id
        self.path = path
        super().__init__(
            f"Path {path!r} of thread {thread_id} is outside its working directory {cwd} "
            f"({detail}); only files inside it are tracked and rolled back"
        )


class InvalidFileChange(ThreadlineError, ValueError):
    """A file change that does not match the file on disk, or malformed arguments."""

    def __init__(self, thread_id: str, path: str, detail: str) -> None:
        self.thread_id = thread_id
        self.path = path
        super().__init__(f"Cannot record a change of {path!r} in thread {thread_id}: {detail}")


class OperationNotFound(ThreadlineError):
    def __init__(self, thread_id: str, operation_id: str) -> None:
        self.thread_id = thread_id
        self.operation_id = operation_id
        super().__init__(
            f"Thread {thread_id} has no file changes of operation {operation_id}; "
            f"list its operations with `threadline files {thread_id}`"
        )


class MessageNotFound(ThreadlineError):
    def __init__(self, thread_id: str, message_id: str) -> None:
        self.thread_id = thread_id
        self.message_id = message_id
        super().__init__(
            f"Thread {thread_id} has no message {message_id}; "
            f"list its messages with `threadline show {thread_id}`"
        )


class RollbackInterrupted(ThreadlineError):
    """A rollback of the thread was interrupted; it must be finished before another starts."""

    def __init__(self, thread_id: str, operation_id: str, resume_hint: str) -> None:
        self.thread_id = thread_id
        self.operation_id = operation_id
        super().__init__(
            f"Thread {thread_id} has an interrupted rollback {operation_id}; finish it first "
            f"by running it again: {resume_hint}"
        )


class ContentMissing(ThreadlineError):
    """File changes named contents that are neither stored nor given. Nothing was written."""

    def __init__(self, thread_id: str, hashes: list[str]) -> None:
        self.thread_id = thread_id
        self.hashes = hashes
        super().__init__(
            f"File changes of thread {thread_id} refer to contents that are not stored "
            f"({', '.join(h[:12] for h in hashes)}); record them again"
        )


class ContentCorrupt(ThreadlineError):
    def __init__(self, content_hash: str, detail: str) -> None:
        self.content_hash = content_hash
        super().__init__(
            f"The stored file content {content_hash[:12]} cannot be read ({detail}); "
            "the store is damaged: restore it from a backup"
        )


# -- the sync server and its HTTP client ----------------------------------------


class RemoteUnavailable(ThreadlineError):
    """The sync server could not be reached, timed out or failed (5xx). Retryable."""

    retryable = True

    def __init__(self, location: str, detail: str) -> None:
        self.location = location
        super().__init__(
            f"The sync server {location} is unavailable ({detail}); "
            "check that it runs and the network, then retry"
        )


class RemoteRefused(ThreadlineError):
    """The sync server refused the request for good: a bad token (401), a request
    over its limits (413), or something this client cannot do there."""

    def __init__(self, location: str, status: int, detail: str) -> None:
        self.location = location
        self.status = status
        super().__init__(f"The sync server {location} refused the request ({status}: {detail})")
