"""The web viewer: browse, search and watch threads in a browser (docs/viewer.md).

Served by the sync server's app (``threadline serve``), on the same storage
and tokens: ``/`` lists the signed-in workspace's threads, ``/threads/{id}``
shows one. Pages are rendered on the server (Jinja2, markdown without raw
HTML); one small script (``static/viewer.js``, no build step, nothing from a
CDN) loads older messages on scroll and follows the server's change stream
(``/v1/changes/stream``) to append new messages live.

:func:`viewer_routes` is the router of the pages and the static files;
:func:`mount_viewer` adds it and the cookie translation
(:class:`~threadline.viewer.session.CookieBearer`) to an app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.recorders.workspaces import Workspaces
from threadline.viewer.pages import viewer_router
from threadline.viewer.session import SECURITY_HEADERS, CookieBearer

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["mount_viewer", "viewer_routes"]


class _StaticHeaders:
    """The static files, with the viewer's security headers and a short cache life."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                ]
                extra.append((b"cache-control", b"public, max-age=300"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_viewer(app: FastAPI, storage: Callable[[], Workspaces]) -> None:
    """Serve the viewer from ``app``: pages at ``/``, ``/login``, ``/logout`` and
    ``/threads/...``, assets at ``/static/``. ``storage`` returns the server's
    open :class:`Workspaces` (tokens and recorders), as the JSON routes use it."""
    app.add_middleware(CookieBearer)
    app.include_router(viewer_routes(storage))


def viewer_routes(storage: Callable[[], Workspaces]) -> APIRouter:
    """The viewer's pages and, at ``/static/``, its assets. The pages read the
    sign-in cookie as a bearer token: serve them behind :class:`CookieBearer`."""
    router = viewer_router(storage)
    router.mount("/static", _StaticHeaders(StaticFiles(directory=STATIC_DIR)), name="viewer-static")
    return router
