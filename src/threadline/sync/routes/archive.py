"""The cold-storage routes: ``POST /v1/archive`` and
``POST /v1/threads/{id}/restore`` (the work is :class:`ServerArchive`'s)."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to archive_router.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam

from threadline.sync import protocol as wire
from threadline.sync.routes.context import Caller, ServerContext, ServerRoute
from threadline.sync.server_archive import ServerArchive

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorBody, "description": text}
    for status, text in (
        (401, "Missing or invalid bearer token"),
        (404, "No such thread in the token's workspace"),
        (409, "A thread was written to, archived or restored meanwhile; retry"),
        (422, "Invalid request"),
        (503, "Storage or cold storage unavailable; retry"),
    )
}


def archive_router(ctx: ServerContext, archive: ServerArchive) -> APIRouter:
    """``POST /v1/archive`` and ``POST /v1/threads/{id}/restore``."""
    router = APIRouter(tags=["lifecycle"], responses=_ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]
    ThreadIdPath = Annotated[str, PathParam(pattern=wire.THREAD_ID_PATTERN, examples=["T-example"])]

    @router.post("/v1/archive")
    async def archive_threads(body: wire.ArchiveRequest, who: Auth) -> wire.ArchiveResult:
        """Move threads of the workspace to the server's cold storage, each with its
        sub-agent threads: those inactive for ``older_than_days``, or the
        ``thread_ids`` given (whatever their activity; an unknown one is a 404
        and nothing moves). An archived thread stays listed and answers
        ``GET /v1/threads/{id}`` with its metadata; reading its messages or
        deltas, or pushing to it, restores it."""
        ids = await archive.archive(who, body)
        return wire.ArchiveResult(thread_ids=ids, dry_run=body.dry_run)

    @router.post("/v1/threads/{thread_id}/restore")
    async def restore_thread(
        thread_id: ThreadIdPath,
        who: Auth,
        with_subagents: Annotated[bool, Query()] = True,
    ) -> wire.RestoreResult:
        """Bring an archived thread (and its archived sub-agent threads, unless
        ``with_subagents=false``) back exactly as it was: the same versions,
        deltas and commit times. Empty if it is active."""
        ids = await archive.restore(who, thread_id, with_subagents=with_subagents)
        return wire.RestoreResult(thread_ids=ids)

    return router
