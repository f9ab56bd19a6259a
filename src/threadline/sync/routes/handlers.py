"""How the sync server answers what its routes do not: errors (through the
one table of :mod:`threadline.sync.errors`), invalid requests, unknown paths
and methods, and bodies over the size limit."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from threadline.errors import StoreFull, ThreadlineError
from threadline.sync.errors import INTERNAL, INTERNAL_MESSAGE, answer_of
from threadline.sync.routes.context import Problem, error_response

log = logging.getLogger("threadline.sync.server")

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return error_response(exc.status, exc.code, exc.message)


async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid"}
    where = ".".join(first["loc"])
    return error_response(422, "invalid_request", f"{where}: {first['msg']}", errors=details)


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body that is not JSON at all
        return error_response(422, "invalid_request", f"Malformed request body: {exc.detail}")
    codes = {404: "not_found", 405: "method_not_allowed"}
    response = error_response(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:  # every method of the path, not just one route's
        response.headers["Allow"] = ", ".join(sorted(_allowed(request)))
    return response


def _allowed(request: Request) -> set[str]:
    """The methods some route of the app answers at the request's path."""
    allowed: set[str] = set()
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        for route in request.app.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                allowed.add(method)
                break
    return allowed


def server_failure(status: int, code: str, message: str, exc: BaseException) -> JSONResponse:
    """A 5xx answer: ``message`` and an error id; the details (the exception and its
    traceback) go to the server's log under that id, never into the answer."""
    error_id = uuid.uuid4().hex[:16]
    level = logging.WARNING if status == 503 else logging.ERROR
    log.log(level, "error %s (%s %s): %s", error_id, status, code, exc, exc_info=exc)
    return error_response(status, code, f"{message} (error id {error_id})", error_id=error_id)


async def on_threadline(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ThreadlineError)
    status, code, message = answer_of(exc)
    if isinstance(exc, StoreFull):
        context = getattr(request.app.state, "context", None)
        if context is not None:
            context.storage_full = True
    if status >= 500:
        return server_failure(status, code, message, exc)
    return error_response(status, code, message)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Any other exception: a 500 that names only its error id."""
    return server_failure(500, INTERNAL, INTERNAL_MESSAGE, exc)


async def on_value(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "invalid_request", str(exc))


def install_handlers(app: FastAPI) -> None:
    """Answer errors the server's way (:class:`~threadline.sync.protocol.ErrorBody`)."""
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ThreadlineError, on_threadline)
    app.add_exception_handler(ValueError, on_value)
    app.add_exception_handler(Exception, on_unexpected)


class BodyLimit:
    """413 for a request body over the limit, counted as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> AsgiMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"The request body exceeds {self.max_bytes} bytes"
        )
        await response(scope, receive, send)
