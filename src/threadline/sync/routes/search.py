"""Search and usage: full-text search of a workspace's threads
(``GET /v1/search``) and its token usage and cost (``GET /v1/usage``)."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to search_router.
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from threadline.sync import protocol as wire
from threadline.sync.routes.context import ERRORS, Caller, ServerContext, ServerRoute


def search_router(ctx: ServerContext) -> APIRouter:
    """``GET /v1/usage`` and ``GET /v1/search``."""
    router = APIRouter(tags=["threads"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]

    @router.get("/v1/usage")
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

    @router.get("/v1/search")
    async def search(
        who: Auth,
        q: Annotated[
            str,
            # The schema states that a query needs a word (the server also takes
            # words of other scripts; a query of none is a 422).
            Query(max_length=1000, json_schema_extra={"pattern": "[0-9A-Za-z]"}),
        ],
        limit: Annotated[int, Query(ge=1, le=ctx.limits.max_page_size)] = 20,
    ) -> wire.SearchResults:
        """Full-text search of current messages and titles, best first."""
        hits = await who.recorder.search(q, limit=limit)
        return wire.SearchResults(
            hits=[wire.WireHit.model_validate(h, from_attributes=True) for h in hits]
        )

    return router
