"""The deltas routes: read a thread's log after a version (delta sync) and push
deltas on a base version (:mod:`threadline.sync.push`)."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to deltas_router.
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from threadline.errors import ThreadNotFound
from threadline.sync import protocol as wire
from threadline.sync.push import push
from threadline.sync.routes.context import ERRORS, Caller, ServerContext, ServerRoute
from threadline.sync.server_archive import ServerArchive

_THREAD_ID = re.compile(wire.THREAD_ID_PATTERN)


def json_answer(model: BaseModel, status: int = 200) -> Response:
    """``model`` as the JSON answer, serialised once by pydantic: what FastAPI
    would send for a route that returns it, without validating it again."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def deltas_router(ctx: ServerContext, archive: ServerArchive) -> APIRouter:
    """``GET`` and ``POST /v1/threads/{id}/deltas``."""
    router = APIRouter(tags=["sync"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]
    ThreadIdPath = Annotated[str, PathParam(pattern=wire.THREAD_ID_PATTERN, examples=["T-example"])]
    max_page = ctx.limits.max_page_size

    @router.get("/v1/threads/{thread_id}/deltas")
    async def get_deltas(
        thread_id: ThreadIdPath,
        who: Auth,
        since: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=max_page)] = max_page,
    ) -> wire.DeltasPage:
        """The logged deltas after version ``since`` (delta sync), oldest first. An
        archived thread answers 409 ``thread_archived``: restore it (POST) first."""

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

        return await archive.active_only(who, thread_id, read)

    async def push_as(who: Caller, thread_id: str, body: wire.PushRequest) -> Response:
        ctx.check_push(thread_id, body.base_version, body.deltas)
        result = await push(
            who.recorder,
            thread_id,
            body.base_version,
            body.deltas,
            max_missing=max_page,
            revive=archive.reviver(who),
        )
        if isinstance(result, wire.PushConflict):
            return json_answer(result, 409)
        if not result.replayed:
            ctx.changed(who)
        return json_answer(result)

    class PushRoute(ServerRoute):
        async def shortcut(self, request: Request) -> Response | None:
            # The common case (a valid token, a JSON body that validates) parsed
            # in one step; anything else FastAPI answers, as it always did.
            thread_id = request.path_params.get("thread_id")
            if not isinstance(thread_id, str) or _THREAD_ID.fullmatch(thread_id) is None:
                return None
            found = await ctx.common_case(request, wire.PushRequest)
            if found is None:
                return None
            who, body = found
            return await push_as(who, thread_id, body)

    async def push_deltas(thread_id: ThreadIdPath, body: wire.PushRequest, who: Auth) -> Response:
        """Append ``deltas`` on ``base_version``; 409 with the missing deltas if the
        thread has moved on; a repeated push is answered as accepted, once."""
        return await push_as(who, thread_id, body)

    router.add_api_route(
        "/v1/threads/{thread_id}/deltas",
        push_deltas,
        methods=["POST"],
        response_model=wire.PushAccepted,
        responses={409: {"model": wire.PushConflict, "description": "Stale base version"}},
        route_class_override=PushRoute,
    )
    return router
