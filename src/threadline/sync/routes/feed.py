"""The change feed: pages of it (``GET /v1/changes``) and a live stream of
Server-Sent Events (``GET /v1/changes/stream``)."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to feed_router.
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from threadline.recorders.base import Change
from threadline.recorders.workspaces import Workspaces
from threadline.sync import protocol as wire
from threadline.sync.routes.context import (
    ERRORS,
    Caller,
    ServerContext,
    ServerRoute,
    StreamSettings,
)

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


def _wire_change(change: Change) -> wire.WireChange:
    return wire.WireChange(
        cursor=change.cursor,
        thread_id=change.thread_id,
        v=change.v,
        deleted=change.deleted,
        at=change.at,
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


async def follow(
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


def feed_router(ctx: ServerContext) -> APIRouter:
    """``GET /v1/changes`` and ``GET /v1/changes/stream``."""
    router = APIRouter(tags=["sync"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]

    @router.get("/v1/changes")
    async def changes(
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=ctx.limits.max_page_size)] = 100,
    ) -> wire.ChangesPage:
        """Every thread changed after cursor ``since``, in commit order (a deleted
        thread as a tombstone); continue from the returned ``cursor``."""
        found = await who.recorder.changes_since(since, limit=limit)
        return wire.ChangesPage(
            changes=[_wire_change(c) for c in found],
            cursor=found[-1].cursor if found else since,
            has_more=len(found) == limit,
        )

    @router.get(
        "/v1/changes/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: `change` events, id = cursor",
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            },
        },
    )
    async def stream_changes(
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        last_event_id: Annotated[str, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$")] = "",
    ) -> StreamingResponse:
        """The change feed as Server-Sent Events, live: one ``change`` event per
        change (``id`` is its cursor, ``data`` a WireChange). Resumes after
        ``Last-Event-ID`` when a client reconnects."""
        start = int(last_event_id) if last_event_id else since
        events = follow(ctx.storage(), who, start, ctx.streams)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return router
