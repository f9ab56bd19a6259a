"""The web viewer's pages and assets (:mod:`threadline.viewer`), on the server's
storage and tokens; the app serves them behind the cookie translation."""

from __future__ import annotations

from fastapi import APIRouter

from threadline.sync.routes.context import ServerContext
from threadline.viewer import viewer_routes


def viewer_router(ctx: ServerContext) -> APIRouter:
    """``/``, ``/login``, ``/logout``, ``/threads/...`` and ``/static/...``."""
    return viewer_routes(ctx.storage)
