"""The sync server: a FastAPI app over the recorder contract.

Thin: each route parses its request, calls the recorder of the caller's
workspace (or :mod:`threadline.sync.push`) and renders the result as the
models of :mod:`threadline.sync.protocol`. The workspace comes from the
bearer token, never from the request; another workspace's thread answers 404
exactly like an unknown id. The storage is any
:class:`~threadline.recorders.workspaces.Workspaces`: embedded SQLite or
PostgreSQL, with the same behaviour.

Run it with ``threadline serve`` (docs/server.md), or build the app with
:func:`create_app` and serve it with any ASGI server.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to create_app.
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from threadline.auth import Principal, authenticate
from threadline.deltas import Delta, MessageDelta, ThreadCreate, delta_to_json
from threadline.errors import (
    InvalidDelta,
    StoreClosed,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
)
from threadline.ids import new_thread_id, now_ms
from threadline.model import ThreadHead
from threadline.recorders.base import Change, LinkGraph, ThreadRecorder
from threadline.recorders.workspaces import Workspaces, open_workspaces
from threadline.sync import protocol as wire
from threadline.sync.compression import DecompressRequests
from threadline.sync.push import Revive, append_all, explain_refusal, push, push_each
from threadline.sync.push import accepted as accepted_push

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorBody, "description": text}
    for status, text in (
        (401, "Missing or invalid bearer token"),
        (404, "No such thread in the token's workspace"),
        (413, "Request body or a message too large"),
        (422, "Invalid request"),
        (503, "Storage unavailable; retry"),
    )
}


# One Server-Sent Event of /v1/changes/stream: a `change` (its id the cursor,
# its data a WireChange as JSON), or the `retry` hint the stream starts with.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["change"]},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/WireChange"},
        },
        "retry": {"type": "integer"},
    },
}


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


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = wire.ErrorBody(code=code, message=message, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


class _BodyLimit:
    """413 for a request body over the limit, counted as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
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
        response = _error(413, "body_too_large", f"The request body exceeds {self.max_bytes} bytes")
        await response(scope, receive, send)


class _TokenCache:
    """Principals of recently checked tokens for ``seconds``, keyed by the token's
    SHA-256 (the raw token is not kept), so a request does not hit the database."""

    def __init__(self, seconds: float = 30.0, size: int = 10_000) -> None:
        self._seconds = seconds
        self._size = size
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    def get(self, key: bytes) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: bytes, principal: Principal) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._seconds, principal)


@dataclass(frozen=True)
class Caller:
    """A request's principal and its workspace's recorder."""

    principal: Principal
    recorder: ThreadRecorder


def _page_bounds(count: int, limit: int, offset: int, before: int | None) -> tuple[int, int]:
    end = max(0, (count if before is None else min(before, count)) - offset)
    return max(0, end - limit), end


_MAX_NUMBER = 2**53


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


def _cursor_of(head: ThreadHead) -> str:
    return f"{head.last_activity}:{head.id}"


def _parse_list_cursor(cursor: str) -> tuple[int, str]:
    stamp, sep, thread_id = cursor.partition(":")
    if not sep or not stamp.isdigit() or not thread_id:
        raise Problem(422, "invalid_cursor", f"Not a thread list cursor: {cursor!r}")
    return int(stamp), thread_id


def create_app(
    workspaces: Workspaces | None = None,
    *,
    db_url: str | None = None,
    default_dir: Path | None = None,
    limits: ServerLimits | None = None,
    streams: StreamSettings | None = None,
    archive_url: str | None = None,
) -> FastAPI:
    """The server app. With ``workspaces`` it serves those (the caller closes
    them); else it opens ``db_url`` (PostgreSQL URL or SQLite directory, default
    ``default_dir``) on startup and closes it on shutdown. ``archive_url`` is its
    cold storage (see :mod:`threadline.sync.archive_routes` for the default)."""
    from threadline.sync.archive_routes import ServerArchive, mount_archive

    limits = limits or ServerLimits()
    streams = streams or StreamSettings()
    state: dict[str, Workspaces] = {}
    if workspaces is not None:
        state["workspaces"] = workspaces

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if workspaces is not None:
            yield
            return
        opened = await open_workspaces(db_url, default_dir=default_dir or Path("."))
        state["workspaces"] = opened
        try:
            yield
        finally:
            await opened.close()

    app = FastAPI(
        title="threadline sync server",
        version="1",
        summary="Versioned conversation threads of AI coding agents: push, pull, follow.",
        lifespan=lifespan,
    )
    app.add_middleware(_BodyLimit, max_bytes=limits.max_body_bytes)
    # Outside the body limit: zstd/gzip request bodies are decoded (never past the
    # limit) before it counts them; large responses go out gzip-compressed.
    app.add_middleware(DecompressRequests, max_bytes=limits.max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=4096)
    tokens = _TokenCache()
    bearer = HTTPBearer(auto_error=False, description="threadline token (threadline token create)")

    def storage() -> Workspaces:
        found = state.get("workspaces")
        if found is None:
            raise StoreClosed()
        return found

    archive = ServerArchive(storage, url=archive_url, default_dir=default_dir)

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "unauthorized", "Send Authorization: Bearer <token>")
        key = hashlib.sha256(credentials.credentials.encode()).digest()
        principal = tokens.get(key)
        if principal is None:
            principal = await authenticate(storage(), credentials.credentials)
            if principal is None:
                raise Problem(401, "unauthorized", "The bearer token is not valid")
            tokens.put(key, principal)
        return Caller(principal, await storage().recorder(principal.workspace))

    Auth = Annotated[Caller, Depends(caller)]
    ThreadIdPath = Annotated[str, PathParam(pattern=wire.THREAD_ID_PATTERN, examples=["T-example"])]
    Limit = Annotated[int, Query(ge=0, le=limits.max_page_size)]

    # -- errors ----------------------------------------------------------------

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(first["loc"])
        return _error(422, "invalid_request", f"{where}: {first['msg']}", errors=details)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON at all
            return _error(422, "invalid_request", f"Malformed request body: {exc.detail}")
        codes = {404: "not_found", 405: "method_not_allowed"}
        response = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:  # every method of the path, not just one route's
            allowed: set[str] = set()
            for route in request.app.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    allowed.update(getattr(route, "methods", None) or ())
            response.headers["Allow"] = ", ".join(sorted(allowed - {"HEAD"}))
        return response

    @app.exception_handler(ThreadlineError)
    async def on_threadline(request: Request, exc: ThreadlineError) -> JSONResponse:
        if isinstance(exc, ThreadNotFound):
            return _error(404, "not_found", f"Thread {exc.thread_id} not found")
        if isinstance(exc, ThreadExists):
            return _error(409, "thread_exists", str(exc))
        if isinstance(exc, VersionConflict):
            return _error(409, "version_conflict", str(exc))
        if isinstance(exc, InvalidDelta):
            return _error(422, "invalid_delta", str(exc))
        if exc.retryable or isinstance(exc, StoreClosed):
            return _error(503, "unavailable", str(exc))
        return _error(500, "internal", str(exc))

    @app.exception_handler(ValueError)
    async def on_value(request: Request, exc: ValueError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    # -- checks ----------------------------------------------------------------

    def check_push(thread_id: str, base_version: int, deltas: list[Delta]) -> None:
        if len(deltas) > limits.max_deltas_per_push:
            raise Problem(
                422,
                "too_many_deltas",
                f"A push holds at most {limits.max_deltas_per_push} deltas, not {len(deltas)}",
            )
        for delta in deltas:
            if not _numbers_in_range(delta.model_dump()):
                raise Problem(
                    422,
                    "invalid_delta",
                    f"A {delta.type} delta holds a number beyond ±2^53 (not portable JSON)",
                )
            if isinstance(delta, MessageDelta):
                size = len(delta_to_json(delta))
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

    def changed(who: Caller) -> None:
        storage().notify_changed(who.principal.workspace)

    # -- routes ------------------------------------------------------------------

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> wire.Health:
        """Liveness (no authentication)."""
        return wire.Health()

    @app.post(
        "/v1/threads",
        status_code=201,
        tags=["threads"],
        responses={**_ERRORS, 409: {"model": wire.ErrorBody, "description": "Id taken"}},
    )
    async def create_thread(body: wire.CreateThread, who: Auth) -> wire.PushAccepted:
        """Create a thread (version 1, one more per initial message)."""
        create = ThreadCreate(
            id=body.id or new_thread_id(),
            created=body.created if body.created is not None else now_ms(),
            title=body.title,
            parent_thread_id=body.parent_thread_id,
            origin_thread_id=body.origin_thread_id,
            env=body.env,
            metadata=body.metadata,
        )
        deltas: list[Delta] = [create, *(MessageDelta.of(m) for m in body.messages)]
        check_push(create.id, 0, deltas)
        head = await who.recorder.append(create.id, 0, deltas)
        changed(who)
        return accepted_push(head)

    @app.get("/v1/threads", tags=["threads"], responses=_ERRORS)
    async def list_threads(
        who: Auth,
        limit: Limit = 50,
        cursor: Annotated[str | None, Query(max_length=300)] = None,
        parent: Annotated[str | None, Query(pattern=wire.THREAD_ID_PATTERN)] = None,
        origin: Annotated[str | None, Query(pattern=wire.THREAD_ID_PATTERN)] = None,
        active_since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        archived: bool = True,
    ) -> wire.ThreadList:
        """Threads by newest activity first: all, the sub-agents of ``parent``, or
        the summaries of ``origin``; only those active since ``active_since`` (ms).
        Archived threads are listed too (``archived: true``, their kept metadata)
        unless ``archived=false``."""
        after = _parse_list_cursor(cursor) if cursor else None
        if parent is not None or origin is not None:
            heads = await _linked(who.recorder, parent, origin, archived=archived)
            if after is not None:
                heads = [h for h in heads if (h.last_activity, h.id) < after]
        else:
            heads = await who.recorder.list_heads(limit=limit + 1, after=after)
            if archived:
                kept = await who.recorder.list_archived(limit=limit + 1, after=after)
                heads = sorted(
                    [*heads, *(entry.head for entry in kept)],
                    key=lambda h: (h.last_activity, h.id),
                    reverse=True,
                )
        if active_since is not None:
            heads = [h for h in heads if h.last_activity >= active_since]
        more = len(heads) > limit
        heads = heads[:limit]
        return wire.ThreadList(
            threads=[wire.ListedHead.of(h) for h in heads],
            next_cursor=_cursor_of(heads[-1]) if more and heads else None,
        )

    async def messages_page(
        recorder: ThreadRecorder, thread_id: str, limit: int, offset: int, before: int | None
    ) -> wire.MessagesPage:
        found = await recorder.page(thread_id, limit=limit, offset=offset, before=before)
        if found is None:
            raise ThreadNotFound(thread_id)
        head, messages = found
        start, _ = _page_bounds(head.message_count, limit, offset, before)
        return wire.MessagesPage(
            head=head, messages=messages, first_index=start, has_more=start > 0
        )

    @app.get("/v1/threads/{thread_id}", tags=["threads"], responses=_ERRORS)
    async def get_thread(
        thread_id: ThreadIdPath, who: Auth, limit: Limit = 50
    ) -> wire.MessagesPage:
        """The head and the newest ``limit`` messages; for an archived thread its
        kept metadata, no messages and ``archived: true``."""
        entry = None
        if await who.recorder.head(thread_id) is None:
            entry = await who.recorder.archived(thread_id)
        if entry is not None:
            return wire.MessagesPage(
                head=entry.head, messages=[], first_index=0, has_more=False, archived=True
            )
        return await messages_page(who.recorder, thread_id, limit, 0, None)

    @app.get("/v1/threads/{thread_id}/messages", tags=["threads"], responses=_ERRORS)
    async def get_messages(
        thread_id: ThreadIdPath,
        who: Auth,
        limit: Limit = 50,
        before: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> wire.MessagesPage:
        """Up to ``limit`` messages ending before position ``before`` (default: the
        newest), skipping ``offset`` more; oldest first. An archived thread is
        restored first."""
        return await archive.reviving(
            who, thread_id, lambda: messages_page(who.recorder, thread_id, limit, offset, before)
        )

    @app.delete("/v1/threads/{thread_id}", status_code=204, tags=["threads"], responses=_ERRORS)
    async def delete_thread(thread_id: ThreadIdPath, who: Auth) -> Response:
        """Delete a thread and its log; the change feed shows a tombstone."""
        if not await who.recorder.delete(thread_id):
            raise ThreadNotFound(thread_id)
        changed(who)
        return Response(status_code=204)

    @app.get("/v1/threads/{thread_id}/deltas", tags=["sync"], responses=_ERRORS)
    async def get_deltas(
        thread_id: ThreadIdPath,
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=limits.max_page_size)] = limits.max_page_size,
    ) -> wire.DeltasPage:
        """The logged deltas after version ``since`` (delta sync), oldest first. An
        archived thread is restored first."""

        async def read() -> wire.DeltasPage:
            records = await who.recorder.deltas(thread_id, after=since, upto=since + limit)
            head = await who.recorder.head(thread_id)
            if head is None:
                raise ThreadNotFound(thread_id)
            return wire.DeltasPage(
                thread_id=thread_id,
                version=head.v,
                deltas=[wire.WireDelta(v=r.v, at=r.at, delta=r.delta) for r in records],
                has_more=bool(records) and records[-1].v < head.v,
            )

        return await archive.reviving(who, thread_id, read)

    @app.post(
        "/v1/threads/{thread_id}/deltas",
        tags=["sync"],
        responses={
            **_ERRORS,
            409: {"model": wire.PushConflict, "description": "Stale base version"},
        },
    )
    async def push_deltas(
        thread_id: ThreadIdPath, body: wire.PushRequest, who: Auth
    ) -> wire.PushAccepted:
        """Append ``deltas`` on ``base_version``; 409 with the missing deltas if the
        thread has moved on; a repeated push is answered as accepted, once."""
        check_push(thread_id, body.base_version, body.deltas)
        result = await push(
            who.recorder,
            thread_id,
            body.base_version,
            body.deltas,
            max_missing=limits.max_page_size,
            revive=archive.reviver(who),
        )
        if isinstance(result, wire.PushConflict):
            return JSONResponse(result.model_dump(mode="json"), status_code=409)  # type: ignore[return-value]
        if not result.replayed:
            changed(who)
        return result

    @app.post("/v1/sync/batch", tags=["sync"], responses=_ERRORS)
    async def push_batch(body: wire.BatchRequest, who: Auth) -> wire.BatchResponse:
        """Up to 50 pushes in one request and one commit, each with its own result
        (or, with ``atomic``, all accepted or none)."""
        for item in body.pushes:
            check_push(item.thread_id, item.base_version, item.deltas)
        appends = [(p.thread_id, p.base_version, p.deltas) for p in body.pushes]
        revive = archive.reviver(who)
        if body.atomic:
            return await _push_atomic(who.recorder, appends, limits.max_page_size, revive)
        outcomes = await push_each(
            who.recorder, appends, max_missing=limits.max_page_size, revive=revive
        )
        results = [
            _batch_result(p.thread_id, o) for p, o in zip(body.pushes, outcomes, strict=True)
        ]
        if any(r.accepted is not None and not r.accepted.replayed for r in results):
            changed(who)
        return wire.BatchResponse(results=results)

    @app.get("/v1/threads/{thread_id}/related", tags=["threads"], responses=_ERRORS)
    async def related(thread_id: ThreadIdPath, who: Auth) -> wire.Related:
        """The thread's parent, its summaries and its sub-agent threads."""
        down = await who.recorder.subtree(thread_id)
        head = down.heads.get(thread_id)
        if head is None:
            raise ThreadNotFound(thread_id)
        up = await who.recorder.ancestry(thread_id)
        below = [link for link in down.links if link.parent_id == thread_id]
        children = [link.child_id for link in below if link.kind == "child"]
        summaries = [link.child_id for link in below if link.kind == "summary"]
        parents = [
            link.parent_id
            for link in up.links
            if link.child_id == thread_id and link.kind == "child"
        ]
        parent_id = head.parent_thread_id or (parents[0] if parents else None)
        return wire.Related(
            thread=head,
            parent=up.heads.get(parent_id) if parent_id else None,
            summaries=[down.heads[i] for i in dict.fromkeys(summaries) if i in down.heads],
            children=[down.heads[i] for i in dict.fromkeys(children) if i in down.heads],
        )

    @app.get("/v1/threads/{thread_id}/subtree", tags=["threads"], responses=_ERRORS)
    async def subtree(thread_id: ThreadIdPath, who: Auth) -> wire.WireGraph:
        """Every link below the thread (sub-agents, summaries, theirs, ...)."""
        return _wire_graph(thread_id, await who.recorder.subtree(thread_id))

    @app.get("/v1/threads/{thread_id}/ancestry", tags=["threads"], responses=_ERRORS)
    async def ancestry(thread_id: ThreadIdPath, who: Auth) -> wire.WireGraph:
        """Every link above the thread (its parent or source, theirs, ...)."""
        return _wire_graph(thread_id, await who.recorder.ancestry(thread_id))

    @app.get("/v1/usage", tags=["threads"], responses=_ERRORS)
    async def usage(
        who: Auth,
        thread_id: Annotated[
            list[Annotated[str, Query(pattern=wire.THREAD_ID_PATTERN)]] | None,
            Query(max_length=1000),
        ] = None,
        subtrees: bool = False,
    ) -> wire.UsageReport:
        """Token usage and cost by thread, model and UTC day: of every thread, or
        of the ``thread_id`` s given (with ``subtrees``, and everything below them)."""
        groups = await who.recorder.usage_rollup(thread_id, subtrees=subtrees)
        return wire.UsageReport(
            groups=[wire.WireUsage.model_validate(g, from_attributes=True) for g in groups]
        )

    @app.get("/v1/search", tags=["threads"], responses=_ERRORS)
    async def search(
        who: Auth,
        q: Annotated[str, Query(max_length=1000)],
        limit: Annotated[int, Query(ge=1, le=limits.max_page_size)] = 20,
    ) -> wire.SearchResults:
        """Full-text search of current messages and titles, best first."""
        hits = await who.recorder.search(q, limit=limit)
        return wire.SearchResults(
            hits=[wire.WireHit.model_validate(h, from_attributes=True) for h in hits]
        )

    @app.get("/v1/changes", tags=["sync"], responses=_ERRORS)
    async def changes(
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=limits.max_page_size)] = 100,
    ) -> wire.ChangesPage:
        """Every thread changed after cursor ``since``, in commit order (a deleted
        thread as a tombstone); continue from the returned ``cursor``."""
        found = await who.recorder.changes_since(since, limit=limit)
        return wire.ChangesPage(
            changes=[_wire_change(c) for c in found],
            cursor=found[-1].cursor if found else since,
            has_more=len(found) == limit,
        )

    @app.get(
        "/v1/changes/stream",
        tags=["sync"],
        response_class=StreamingResponse,
        responses={
            **_ERRORS,
            200: {
                "description": "Server-Sent Events: `change` events, id = cursor",
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            },
        },
    )
    async def stream_changes(
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$")
        ] = None,
    ) -> StreamingResponse:
        """The change feed as Server-Sent Events, live: one ``change`` event per
        change (``id`` is its cursor, ``data`` a WireChange). Resumes after
        ``Last-Event-ID`` when a client reconnects."""
        start = int(last_event_id) if last_event_id is not None else since
        events = _follow(storage(), who, start, streams)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # -- the web viewer (docs/viewer.md): pages for people, on the same storage
    from threadline.viewer import mount_viewer

    mount_viewer(app, storage)
    # -- cold storage (threadline.sync.archive_routes): /v1/archive, /restore
    mount_archive(app, archive, caller)
    return app


async def _linked(
    recorder: ThreadRecorder, parent: str | None, origin: str | None, *, archived: bool
) -> list[ThreadHead]:
    """Heads of the sub-agents of ``parent`` and/or the summaries of ``origin``,
    newest activity first (with ``archived``, the kept heads of archived ones too)."""
    wanted: list[str] = []
    for source, kind in ((parent, "child"), (origin, "summary")):
        if source is None:
            continue
        graph = await recorder.subtree(source)
        ids = [
            link.child_id for link in graph.links if link.parent_id == source and link.kind == kind
        ]
        if wanted and parent is not None and origin is not None:
            wanted = [i for i in wanted if i in ids]
        else:
            wanted = ids
    unique = list(dict.fromkeys(wanted))
    heads = await recorder.heads_many(unique)
    if archived:
        for thread_id in (i for i in unique if i not in heads):
            entry = await recorder.archived(thread_id)
            if entry is not None:
                heads[thread_id] = entry.head
    return sorted(heads.values(), key=lambda h: (h.last_activity, h.id), reverse=True)


def _wire_graph(thread_id: str, graph: LinkGraph) -> wire.WireGraph:
    """The graph on the wire; 404 for a thread that neither exists nor is linked."""
    if not graph.links and thread_id not in graph.heads:
        raise ThreadNotFound(thread_id)
    return wire.WireGraph(
        links=[
            wire.WireLink(parent_id=link.parent_id, child_id=link.child_id, kind=link.kind)
            for link in graph.links
        ],
        heads=graph.heads,
    )


def _wire_change(change: Change) -> wire.WireChange:
    return wire.WireChange(
        cursor=change.cursor,
        thread_id=change.thread_id,
        v=change.v,
        deleted=change.deleted,
        at=change.at,
    )


def _batch_result(
    thread_id: str, outcome: wire.PushAccepted | wire.PushConflict | ThreadlineError
) -> wire.BatchResult:
    if isinstance(outcome, wire.PushAccepted):
        return wire.BatchResult(thread_id=thread_id, status=200, accepted=outcome)
    if isinstance(outcome, wire.PushConflict):
        return wire.BatchResult(thread_id=thread_id, status=409, conflict=outcome)
    status, code = _status_of(outcome)
    return wire.BatchResult(
        thread_id=thread_id, status=status, error=wire.ErrorBody(code=code, message=str(outcome))
    )


def _status_of(exc: ThreadlineError) -> tuple[int, str]:
    if isinstance(exc, ThreadNotFound):
        return 404, "not_found"
    if isinstance(exc, ThreadExists):
        return 409, "thread_exists"
    if isinstance(exc, VersionConflict):
        return 409, "version_conflict"
    if isinstance(exc, InvalidDelta):
        return 422, "invalid_delta"
    return 503, "unavailable"


async def _push_atomic(
    recorder: ThreadRecorder,
    appends: list[tuple[str, int, list[Delta]]],
    max_missing: int,
    revive: Revive,
) -> wire.BatchResponse:
    try:
        heads = await append_all(recorder, appends, revive=revive)
    except ThreadlineError as exc:
        failed = getattr(exc, "thread_id", None)
        results: list[wire.BatchResult] = []
        for thread_id, base, deltas in appends:
            if thread_id != failed:
                results.append(
                    wire.BatchResult(
                        thread_id=thread_id,
                        status=424,
                        error=wire.ErrorBody(
                            code="not_applied", message=f"Another push of the batch failed: {exc}"
                        ),
                    )
                )
                continue
            failed = None  # only its first push gets the real answer
            outcome: wire.PushAccepted | wire.PushConflict | ThreadlineError = exc
            if isinstance(exc, VersionConflict | ThreadExists):
                try:
                    outcome = await explain_refusal(
                        recorder, thread_id, base, deltas, max_missing=max_missing
                    )
                except ThreadlineError as missing:
                    outcome = missing
                if isinstance(outcome, wire.PushAccepted):  # in already, but the batch is not
                    outcome = exc
            results.append(_batch_result(thread_id, outcome))
        return wire.BatchResponse(results=results)
    return wire.BatchResponse(
        results=[
            wire.BatchResult(thread_id=a[0], status=200, accepted=accepted_push(h))
            for a, h in zip(appends, heads, strict=True)
        ]
    )


def _event(change: Change) -> bytes:
    data = orjson.dumps(
        {
            "cursor": change.cursor,
            "thread_id": change.thread_id,
            "v": change.v,
            "deleted": change.deleted,
            "at": change.at,
        }
    )
    return b"id: %d\nevent: change\ndata: %s\n\n" % (change.cursor, data)


async def _follow(
    workspaces: Workspaces, who: Caller, cursor: int, settings: StreamSettings
) -> AsyncIterator[bytes]:
    """Feed pages as events, then wait for notifications; ends after ``max_seconds``."""
    workspace = who.principal.workspace
    deadline = time.monotonic() + settings.max_seconds
    idle_since = time.monotonic()
    yield b"retry: 1000\n\n"
    while time.monotonic() < deadline:
        signal = workspaces.change_signal(workspace)
        found = await who.recorder.changes_since(cursor, limit=500)
        for change in found:
            yield _event(change)
            cursor = change.cursor
        if found:
            idle_since = time.monotonic()
            if len(found) == 500:
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await workspaces.wait_for_changes(signal, min(settings.poll_seconds, left))
        if time.monotonic() - idle_since >= settings.heartbeat_seconds:
            idle_since = time.monotonic()
            yield b": keepalive\n\n"
