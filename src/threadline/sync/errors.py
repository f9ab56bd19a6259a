"""One table between threadline errors and HTTP answers, read by both sides.

The server answers a :class:`~threadline.errors.ThreadlineError` with the
status and stable ``code`` of its row in :data:`WIRE_ERRORS` (the first row
whose class it is an instance of); the client
(:class:`~threadline.sync.client.RemoteRecorder`) turns an answer's
``code`` back into the row's class, so an error the server raises is raised
again, as the same class with the server's message, by the client. An error
of no row is a server failure: ``503 unavailable`` if it is retryable (or the
store is closed), else ``500 internal``; the client raises
:class:`~threadline.errors.RemoteUnavailable` for both, and for every other
5xx or 429. Answers that are no threadline error (a bad token, a body over a
limit) are the request's fault: 422 becomes
:class:`~threadline.errors.InvalidDelta`, anything else
:class:`~threadline.errors.RemoteRefused`.

Add a row here when the server starts answering a new error; the test
``tests/server/test_error_table.py`` fails until every error class is either
in the table or known to stay on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from threadline.errors import (
    ArchiveObjectCorrupt,
    ArchiveObjectMissing,
    ArchiveUnavailable,
    InvalidDelta,
    RemoteRefused,
    RemoteUnavailable,
    StoreClosed,
    StoreFull,
    ThreadArchived,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
)


@dataclass(frozen=True, slots=True)
class Answered:
    """What the client knows of an error answer: the status, the body's ``code``
    and ``message``, and what its request was about (``thread_id``, the push's
    ``base`` version, the server's ``version`` from a conflict body)."""

    status: int
    code: str
    message: str
    location: str
    thread_id: str | None = None
    base: int | None = None
    version: int | None = None


def _rebuilt(cls: type[ThreadlineError], answer: Answered) -> ThreadlineError:
    """An instance of ``cls`` with the server's message, its constructor
    skipped (its arguments, like an object URL, stay on the server)."""
    error = cls.__new__(cls)
    Exception.__init__(error, answer.message)
    error.thread_id = answer.thread_id  # type: ignore[attr-defined]
    return error


def _version_conflict(answer: Answered) -> ThreadlineError:
    thread_id = answer.thread_id or "?"
    base = answer.base if answer.base is not None else 0
    if base == 0:  # a push that creates: the id is taken
        return ThreadExists(thread_id)
    actual = answer.version if answer.version is not None else base
    return VersionConflict(thread_id, base, actual)


@dataclass(frozen=True, slots=True)
class WireError:
    """One row: ``error`` (and its subclasses) is answered ``status`` with
    ``code``, its message from ``message``; the client raises ``rebuild(answer)``."""

    error: type[ThreadlineError]
    status: int
    code: str
    rebuild: Callable[[Answered], ThreadlineError]
    message: Callable[[ThreadlineError], str] = str


def _not_found_message(error: ThreadlineError) -> str:
    return f"Thread {getattr(error, 'thread_id', '?')} not found"


def _object_name(error: ThreadlineError) -> str:
    """The archive object of ``error`` by its file name, not its URL (which
    may be a path on the server)."""
    url = str(getattr(error, "object_url", ""))
    return url.rstrip("/").rsplit("/", 1)[-1] or "?"


def _archive_missing_message(error: ThreadlineError) -> str:
    return (
        f"The archive object {_object_name(error)} of thread "
        f"{getattr(error, 'thread_id', '?')} is missing, so the thread cannot be restored; "
        "nothing was changed. The server's operator can put it back from a backup"
    )


def _archive_corrupt_message(error: ThreadlineError) -> str:
    return (
        f"The archive object {_object_name(error)} of thread "
        f"{getattr(error, 'thread_id', '?')} is damaged, so the thread cannot be restored; "
        "nothing was changed. The server's operator can put an intact copy back from a backup"
    )


def _archive_unavailable_message(error: ThreadlineError) -> str:
    return (
        "The server's cold storage cannot be used right now; retry later. Its operator "
        "can check the archive URL (threadline serve --archive-url), its credentials "
        "and the network"
    )


WIRE_ERRORS: tuple[WireError, ...] = (
    WireError(
        ThreadNotFound,
        404,
        "not_found",
        lambda a: ThreadNotFound(a.thread_id or "?"),
        _not_found_message,
    ),
    WireError(ThreadExists, 409, "thread_exists", lambda a: ThreadExists(a.thread_id or "?")),
    WireError(VersionConflict, 409, "version_conflict", _version_conflict),
    WireError(
        ThreadArchived,
        409,
        "thread_archived",
        lambda a: _rebuilt(ThreadArchived, a),
        lambda e: (
            f"Thread {getattr(e, 'thread_id', '?')} is archived: restore it with "
            f"POST /v1/threads/{{id}}/restore, then read it"
        ),
    ),
    WireError(InvalidDelta, 422, "invalid_delta", lambda a: InvalidDelta(a.message)),
    WireError(
        StoreFull,
        503,
        "store_full",
        lambda a: _rebuilt(StoreFull, a),
        lambda e: "The server's storage is full; nothing was written. Retry later",
    ),
    WireError(
        ArchiveObjectMissing,
        500,
        "archive_missing",
        lambda a: _rebuilt(ArchiveObjectMissing, a),
        _archive_missing_message,
    ),
    WireError(
        ArchiveObjectCorrupt,
        500,
        "archive_corrupt",
        lambda a: _rebuilt(ArchiveObjectCorrupt, a),
        _archive_corrupt_message,
    ),
    WireError(
        ArchiveUnavailable,
        503,
        "archive_unavailable",
        lambda a: _rebuilt(ArchiveUnavailable, a),
        _archive_unavailable_message,
    ),
)
"""The rows, most specific class first (the first match answers)."""

UNAVAILABLE = "unavailable"
"""The code of a retryable server failure (503)."""
INTERNAL = "internal"
"""The code of any other server failure (500)."""

_BY_CODE = {row.code: row for row in WIRE_ERRORS}


def row_of(error: ThreadlineError) -> WireError | None:
    """The table's row for ``error``, or ``None`` (a server failure)."""
    for row in WIRE_ERRORS:
        if isinstance(error, row.error):
            return row
    return None


UNAVAILABLE_MESSAGE = "The server cannot answer this request right now; retry shortly"
INTERNAL_MESSAGE = "The server failed to answer this request"


def answer_of(error: ThreadlineError) -> tuple[int, str, str]:
    """``(status, code, message)`` the server answers ``error`` with. A server
    failure's message says nothing of the server (no path, host or database):
    the details go to the server's log."""
    row = row_of(error)
    if row is not None:
        return row.status, row.code, row.message(error)
    if error.retryable or isinstance(error, StoreClosed):
        return 503, UNAVAILABLE, UNAVAILABLE_MESSAGE
    return 500, INTERNAL, INTERNAL_MESSAGE


def error_of(answer: Answered) -> ThreadlineError:
    """The error the client raises for an error answer (see the module's docstring)."""
    row = _BY_CODE.get(answer.code)
    if row is not None and row.status == answer.status:
        return row.rebuild(answer)
    if answer.status >= 500 or answer.status == 429:
        return RemoteUnavailable(answer.location, f"{answer.status}: {answer.message}")
    if answer.status == 422:
        return InvalidDelta(answer.message)
    return RemoteRefused(answer.location, answer.status, answer.message)
