"""What every router of the sync server shares: its limits, its storage, the
caller of a request (the bearer token's principal and workspace recorder), and
the shape of an error answer.

One :class:`ServerContext` per app; each router module builds its
:class:`~fastapi.APIRouter` from it (:mod:`threadline.sync.app`).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations
# of the dependency :meth:`ServerContext.caller`.
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from threadline.auth import Principal, TokenCache
from threadline.deltas import Delta, MessageDelta, ThreadCreate, delta_to_json
from threadline.errors import StoreClosed
from threadline.recorders.base import ThreadRecorder
from threadline.recorders.workspaces import Workspaces
from threadline.sync import protocol as wire

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorBody, "description": text}
    for status, text in (
        (401, "Missing or invalid bearer token"),
        (404, "No such thread in the token's workspace"),
        (413, "Request body or a message too large"),
        (422, "Invalid request"),
        (503, "Storage unavailable; retry"),
    )
}
"""The error answers that the OpenAPI document lists for every JSON route."""


@dataclass(frozen=True)
class ServerLimits:
    """What one request may carry; beyond it the server answers 413 or 422."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024
    max_deltas_per_push: int = 1000
    max_page_size: int = 1000


@dataclass(frozen=True)
class StreamSettings:
    """Live streams: a stream ends after ``max_seconds`` (clients reconnect with
    ``Last-Event-ID``), sends a comment every ``heartbeat_seconds`` while idle, and
    reads the feed at least every ``poll_seconds`` even without a notification."""

    max_seconds: float = 600.0
    heartbeat_seconds: float = 15.0
    poll_seconds: float = 2.0


class Problem(Exception):
    """An error answer: status, stable code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """An :class:`~threadline.sync.protocol.ErrorBody` answer (with the headers
    that a 401 and a 503 carry)."""
    body = wire.ErrorBody(code=code, message=message, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


_Body = TypeVar("_Body", bound=BaseModel)

_MAX_NUMBER = 2**53
_DIGITS_AS_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_SIXTEEN_DIGITS = b"9" * 16  # 2^53 has 16 digits: a shorter number is within it


def _numbers_in_range(value: object) -> bool:
    """Whether every integer in ``value`` (nested JSON-like data) is within ±2^53."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_NUMBER <= value <= _MAX_NUMBER
    if isinstance(value, dict):
        return all(_numbers_in_range(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_numbers_in_range(v) for v in value)
    return True


class _JsonRequest(Request):
    """A request whose JSON body is parsed by orjson (several times faster than
    the standard library, which FastAPI uses); what orjson refuses is parsed by
    the standard library after all, so the answer to any body is as before
    (``NaN``, integers beyond 64 bits, or the same 422 for malformed JSON)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class ServerRoute(APIRoute):
    """The routes of the server's routers: FastAPI's, with request bodies parsed
    by orjson (:class:`_JsonRequest`)."""

    async def shortcut(self, request: Request) -> Response | None:
        """The answer to a request in the route's common case, made without
        FastAPI's parameter machinery; ``None`` to let FastAPI answer it as usual
        (a route that has a shortcut answers the same either way)."""
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        shortcut = self.shortcut

        async def handle(request: Request) -> Response:
            request = _JsonRequest(request.scope, request.receive)
            answer = await shortcut(request)
            return answer if answer is not None else await handler(request)

        return handle


@dataclass(frozen=True)
class Caller:
    """A request's principal and its workspace's recorder."""

    principal: Principal
    recorder: ThreadRecorder


class ServerContext:
    """One app's settings and storage, and the ``caller`` dependency its routes use.

    ``storage()`` is the open :class:`Workspaces` (set by the app's lifespan, or
    given), :class:`StoreClosed` before or after.
    """

    def __init__(
        self,
        *,
        limits: ServerLimits,
        streams: StreamSettings,
    ) -> None:
        self.limits = limits
        self.streams = streams
        self.workspaces: Workspaces | None = None
        self.tokens = TokenCache()
        # Set when a write finds the storage full, cleared by the next write that
        # succeeds: /healthz says "degraded" meanwhile.
        self.storage_full = False
        self.bearer = HTTPBearer(
            auto_error=False, description="threadline token (threadline token create)"
        )
        bearer = self.bearer

        # A closure, so that the security scheme is this app's (FastAPI reads the
        # dependency's signature for the OpenAPI document).
        async def caller(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        ) -> Caller:
            return await self.authorize(credentials)

        self.caller = caller

    def storage(self) -> Workspaces:
        """The open storage; :class:`StoreClosed` when there is none."""
        found = self.workspaces
        if found is None:
            raise StoreClosed()
        return found

    async def authorize(self, credentials: HTTPAuthorizationCredentials | None) -> Caller:
        """The caller of a request with these credentials; 401 without a valid token."""
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "unauthorized", "Send Authorization: Bearer <token>")
        found = await self.caller_of(credentials.credentials)
        if found is None:
            raise Problem(401, "unauthorized", "The bearer token is not valid")
        return found

    async def caller_of(self, token: str) -> Caller | None:
        """The caller whose bearer token is ``token``, or ``None`` if it is not valid."""
        storage = self.storage()
        principal = await self.tokens.authenticate(storage, token)
        if principal is None:
            return None
        return Caller(principal, await storage.recorder(principal.workspace))

    async def common_case(
        self, request: Request, model: type[_Body]
    ) -> tuple[Caller, _Body] | None:
        """The caller and the JSON body of a request in a route shortcut's common
        case (a valid bearer token, ``Content-Type: application/json``, a body
        that validates as ``model``), validated once; ``None`` for any other
        request, which FastAPI then answers as usual (:meth:`ServerRoute.shortcut`)."""
        if request.headers.get("content-type") != "application/json":
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        who = await self.caller_of(token)
        if who is None:
            return None
        try:
            body = model.model_validate(await request.json())
        except (ValueError, ValidationError):
            return None
        return who, body

    def changed(self, who: Caller) -> None:
        """Wake the live streams of the caller's workspace (after a write)."""
        self.storage_full = False
        self.storage().notify_changed(who.principal.workspace)

    def check_push(self, thread_id: str, base_version: int, deltas: list[Delta]) -> None:
        """422 or 413 for a push the limits or the read paths do not allow."""
        limits = self.limits
        if len(deltas) > limits.max_deltas_per_push:
            raise Problem(
                422,
                "too_many_deltas",
                f"A push holds at most {limits.max_deltas_per_push} deltas, not {len(deltas)}",
            )
        for delta in deltas:
            # One serialisation for both checks: the exact (slower) number check
            # only when the JSON has a run of 16 digits somewhere.
            data = delta_to_json(delta)
            if _SIXTEEN_DIGITS in data.translate(_DIGITS_AS_NINES) and not _numbers_in_range(
                delta.model_dump()
            ):
                raise Problem(
                    422,
                    "invalid_delta",
                    f"A {delta.type} delta holds a number beyond ±2^53 (not portable JSON)",
                )
            if isinstance(delta, MessageDelta):
                size = len(data)
                if size > limits.max_message_bytes:
                    raise Problem(
                        413,
                        "message_too_large",
                        f"Message {delta.message.id} is {size} bytes of JSON; "
                        f"the limit is {limits.max_message_bytes}",
                    )
        if base_version == 0:
            first = deltas[0]
            if not isinstance(first, ThreadCreate) or first.id != thread_id:
                raise Problem(
                    422,
                    "invalid_delta",
                    f"A push on version 0 creates thread {thread_id}: "
                    "its first delta must be the thread:create of that id",
                )
