"""The sync server: a FastAPI app over the recorder contract.

Thin: each route parses its request, calls the recorder of the caller's
workspace (or :mod:`threadline.sync.push`) and renders the result as the
models of :mod:`threadline.sync.protocol`. The workspace comes from the
bearer token, never from the request; another workspace's thread answers 404
exactly like an unknown id. The storage is any
:class:`~threadline.recorders.workspaces.Workspaces`: embedded SQLite or
PostgreSQL, with the same behaviour.

The routes are one router per area (:mod:`threadline.sync.routes`);
:func:`create_app` assembles them. Run it with ``threadline serve``
(docs/server.md), or build the app with :func:`create_app` and serve it with
any ASGI server; :func:`app_from_environment` is the factory that each of
``threadline serve --workers N`` 's processes calls.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from starlette.middleware.gzip import GZipMiddleware

from threadline.recorders.workspaces import Workspaces, open_workspaces
from threadline.sync import protocol as wire
from threadline.sync.compression import DecompressRequests
from threadline.sync.routes.archive import archive_router
from threadline.sync.routes.batch import batch_router
from threadline.sync.routes.context import (
    Caller,
    Problem,
    ServerContext,
    ServerLimits,
    StreamSettings,
)
from threadline.sync.routes.deltas import deltas_router
from threadline.sync.routes.feed import feed_router
from threadline.sync.routes.files import files_router
from threadline.sync.routes.handlers import BodyLimit, install_handlers
from threadline.sync.routes.search import search_router
from threadline.sync.routes.threads import threads_router
from threadline.sync.routes.viewer import viewer_router
from threadline.sync.server_archive import ServerArchive
from threadline.viewer.session import CookieBearer

__all__ = [
    "Caller",
    "Problem",
    "ServerLimits",
    "StreamSettings",
    "app_from_environment",
    "create_app",
]

ENV_DB = "THREADLINE_DB"
ENV_ARCHIVE_URL = "THREADLINE_ARCHIVE_URL"
ENV_SERVER_HOME = "THREADLINE_SERVER_HOME"


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
    cold storage (see :mod:`threadline.sync.server_archive` for the default)."""
    ctx = ServerContext(limits=limits or ServerLimits(), streams=streams or StreamSettings())
    ctx.workspaces = workspaces

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if workspaces is not None:
            yield
            return
        opened = await open_workspaces(db_url, default_dir=default_dir or Path("."))
        ctx.workspaces = opened
        try:
            yield
        finally:
            ctx.workspaces = None
            await opened.close()

    app = FastAPI(
        title="threadline sync server",
        version="1",
        summary="Versioned conversation threads of AI coding agents: push, pull, follow.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=ctx.limits.max_body_bytes)
    # Outside the body limit: zstd/gzip request bodies are decoded (never past the
    # limit) before it counts them; large responses go out gzip-compressed.
    app.add_middleware(DecompressRequests, max_bytes=ctx.limits.max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=4096)
    # The viewer's sign-in cookie becomes a bearer token (docs/viewer.md).
    app.add_middleware(CookieBearer)
    install_handlers(app)

    app.state.context = ctx  # the error handlers note a full storage on it

    @app.get(
        "/healthz",
        tags=["meta"],
        response_model=wire.Health,
        response_model_exclude_none=True,
        responses={503: {"model": wire.Health, "description": "Degraded"}},
    )
    async def healthz() -> Response:
        """Health (no authentication): ``ok``, or 503 ``degraded`` with its problems."""
        if ctx.storage_full:
            body = wire.Health(status="degraded", problems=["store_full"])
            return JSONResponse(
                body.model_dump(exclude_none=True), status_code=503, headers={"Retry-After": "5"}
            )
        return JSONResponse(wire.Health().model_dump(exclude_none=True))

    archive = ServerArchive(ctx.storage, url=archive_url, default_dir=default_dir)
    # The routes are tried in order, and no two paths overlap: pushes first.
    app.include_router(deltas_router(ctx, archive))
    app.include_router(batch_router(ctx, archive))
    app.include_router(threads_router(ctx, archive))
    app.include_router(search_router(ctx))
    app.include_router(feed_router(ctx))
    app.include_router(viewer_router(ctx))
    app.include_router(archive_router(ctx, archive))
    app.include_router(files_router(ctx))
    return app


def app_from_environment() -> FastAPI:
    """The app that ``threadline serve`` runs, its settings from the environment
    (what each worker process of ``serve --workers N`` calls, as uvicorn's
    factory): ``THREADLINE_DB`` (PostgreSQL URL or SQLite directory),
    ``THREADLINE_SERVER_HOME`` (the default SQLite directory) and
    ``THREADLINE_ARCHIVE_URL``."""
    home = os.environ.get(ENV_SERVER_HOME)
    return create_app(
        db_url=os.environ.get(ENV_DB) or None,
        default_dir=Path(home) if home else None,
        archive_url=os.environ.get(ENV_ARCHIVE_URL) or None,
    )
