"""The one table between threadline errors and HTTP answers
(:mod:`threadline.sync.errors`): every error the server answers comes back out
of the HTTP client as the same class, over a single request and in a batch."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

import threadline.store
from threadline.errors import (
    ArchiveError,
    ArchiveObjectCorrupt,
    ArchiveObjectMissing,
    ArchiveUnavailable,
    ContentCorrupt,
    ContentMissing,
    InvalidDelta,
    InvalidFileChange,
    InvalidModification,
    MessageNotFound,
    NoWorkingDirectory,
    OperationNotFound,
    PathOutsideWorkspace,
    RemoteRefused,
    RemoteUnavailable,
    RoleUnavailable,
    RollbackInterrupted,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    StoreFull,
    ThreadArchived,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
    WriterClosed,
)
from threadline.sync import protocol as wire
from threadline.sync.client import RemoteRecorder, _error_of
from threadline.sync.errors import WIRE_ERRORS, Answered, answer_of, error_of, row_of
from threadline.sync.routes.batch import batch_result
from threadline.sync.routes.handlers import install_handlers

ANSWERED: list[ThreadlineError] = [
    ThreadNotFound("T-1"),
    ThreadExists("T-1"),
    VersionConflict("T-1", 2, 5),
    InvalidDelta("A message:append delta needs a message"),
    ArchiveObjectMissing("T-1", "file:///cold/team/threads/T-1/op.json.zst"),
    ArchiveObjectCorrupt("T-1", "file:///cold/team/threads/T-1/op.json.zst", "bad frame"),
    ArchiveUnavailable("s3://cold", "connection refused"),
    StoreFull("/srv/team.db", "database or disk is full"),
    ThreadArchived("T-1", 1_700_000_000_000),
]
"""One error of each row of the table: the client raises its class again."""

SERVER_FAILURES: list[ThreadlineError] = [
    StoreBusy("/srv/team.db", "database is locked"),
    StoreClosed(),
    StoreCorrupt("/srv/team.db", "file is not a database"),
]
"""Errors of the server's own storage: 503 (retryable) or 500, and the client
raises RemoteUnavailable, which is retryable too when they are."""

NOT_ANSWERED = {
    # The client's own errors (about the server, or its writers):
    RemoteUnavailable,
    RemoteRefused,
    WriterBusy,  # the archive route answers it as 409 thread_busy
    WriterClosed,
    # A local store's features that no route reaches:
    InvalidModification,  # ThreadWriter's; would answer as its parent, InvalidDelta
    RoleUnavailable,  # a server's backends have every role
    threadline.store.VersionNotFound,
    NoWorkingDirectory,
    PathOutsideWorkspace,
    InvalidFileChange,
    OperationNotFound,
    MessageNotFound,
    RollbackInterrupted,
    ContentMissing,
    ContentCorrupt,
}


def _every_subclass(cls: type[ThreadlineError]) -> set[type[ThreadlineError]]:
    found: set[type[ThreadlineError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_every_subclass(sub)}
    return found


def test_every_threadline_error_is_in_the_table_or_known_not_to_be_answered() -> None:
    in_table = {row.error for row in WIRE_ERRORS}
    failures = {type(e) for e in SERVER_FAILURES}
    threadline_errors = {
        c for c in _every_subclass(ThreadlineError) if c.__module__.startswith("threadline.")
    }
    unclassified = threadline_errors - in_table - failures - NOT_ANSWERED - {ArchiveError}
    assert unclassified == set(), "add them to threadline.sync.errors or to NOT_ANSWERED"
    assert {type(e) for e in ANSWERED} == in_table


def _sent(error: ThreadlineError) -> str:
    """The message the server answers ``error`` with: a 5xx's names no location
    (and ends with an error id)."""
    status, _, message = answer_of(error)
    return message if status >= 500 else str(error)


def test_every_row_has_its_own_code() -> None:
    assert len({row.code for row in WIRE_ERRORS}) == len(WIRE_ERRORS)


@pytest.mark.parametrize("error", ANSWERED, ids=lambda e: type(e).__name__)
def test_an_error_in_a_batch_result_comes_back_as_its_class(error: ThreadlineError) -> None:
    base = 0 if isinstance(error, ThreadExists) else 2
    sent = batch_result("T-1", error).model_dump_json()
    back = _error_of("T-1", base, wire.BatchResult.model_validate_json(sent))
    assert type(back) is type(error)
    assert str(back).startswith(_sent(error))
    assert back.retryable is error.retryable
    if isinstance(error, VersionConflict):
        assert isinstance(back, VersionConflict)
        assert (back.thread_id, back.expected, back.actual) == ("T-1", 2, 5)


@pytest.mark.parametrize("error", SERVER_FAILURES, ids=lambda e: type(e).__name__)
def test_a_server_failure_in_a_batch_result_comes_back_unavailable(error: ThreadlineError) -> None:
    result = batch_result("T-1", error)
    assert result.status == (503 if error.retryable or isinstance(error, StoreClosed) else 500)
    back = _error_of("T-1", 2, wire.BatchResult.model_validate_json(result.model_dump_json()))
    assert isinstance(back, RemoteUnavailable)


def _raising_app(error: ThreadlineError) -> FastAPI:
    """An app with the server's error handlers whose search route raises ``error``."""
    app = FastAPI()
    install_handlers(app)

    @app.get("/v1/search")
    async def search() -> None:
        raise error

    return app


async def _search(app: FastAPI) -> ThreadlineError:
    transport = httpx.ASGITransport(app=app)
    recorder = RemoteRecorder("http://server.test", "tl_token", transport=transport)
    try:
        await recorder.search("anything")
    except ThreadlineError as raised:
        return raised
    finally:
        await recorder.close()
    raise AssertionError("the search did not raise")


# 404 and 409 answers go back to the call that made the request (a push reads a
# 409's conflict body): they are checked above, in batch results, and by the
# remote recorder's contract tests (tests/contract/test_remote.py).
DIRECT = [e for e in ANSWERED if answer_of(e)[0] not in (404, 409)]


@pytest.mark.parametrize("error", DIRECT, ids=lambda e: type(e).__name__)
async def test_an_error_answer_comes_back_as_its_class(error: ThreadlineError) -> None:
    back = await _search(_raising_app(error))
    assert type(back) is type(error)
    assert str(back).startswith(_sent(error))
    assert back.retryable is error.retryable


@pytest.mark.parametrize("error", SERVER_FAILURES, ids=lambda e: type(e).__name__)
async def test_a_server_failure_answer_comes_back_unavailable(error: ThreadlineError) -> None:
    back = await _search(_raising_app(error))
    assert isinstance(back, RemoteUnavailable)
    assert back.retryable


def test_answers_of_no_row_are_refusals_or_invalid_requests() -> None:
    def answered(status: int, code: str) -> ThreadlineError:
        return error_of(Answered(status, code, "no", "http://server.test"))

    assert isinstance(answered(401, "unauthorized"), RemoteRefused)
    assert isinstance(answered(413, "body_too_large"), RemoteRefused)
    assert isinstance(answered(409, "thread_busy"), RemoteRefused)
    assert type(answered(422, "too_many_deltas")) is InvalidDelta
    assert isinstance(answered(429, ""), RemoteUnavailable)
    # A known code with another status is not trusted to be that error.
    assert isinstance(answered(502, "archive_missing"), RemoteUnavailable)


def test_a_subclass_is_answered_by_its_parents_row() -> None:
    row = row_of(InvalidModification("cannot edit a tool result"))
    assert row is not None
    assert row.error is InvalidDelta


@pytest.mark.parametrize(
    "error",
    [
        *SERVER_FAILURES,
        *(e for e in ANSWERED if answer_of(e)[0] >= 500),
        StoreCorrupt("/srv/secret/team.db", "file is not a database"),
        RuntimeError("connection to postgresql://bob@db.internal:5432/prod failed"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_server_failure_answers_an_error_id_and_logs_the_details(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    install_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://server.test") as http:
        response = await http.get("/fail")
    assert response.status_code >= 500
    body = response.json()
    assert set(body) == {"code", "message", "error_id"}
    for secret in ("/srv", "/cold", "s3://", "file://", "db.internal", "bob", "prod", "Traceback"):
        assert secret not in response.text, secret
    assert body["error_id"] in body["message"]
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert len(logged) == 1
    assert str(error) in logged[0].getMessage()
