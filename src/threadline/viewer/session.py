"""Who is looking: the viewer's sign-in cookie, bearer tokens, and response headers.

A person signs in by pasting a token (``threadline token create``); the
token is kept in a cookie the page's script cannot read (``HttpOnly``), that
travels only over HTTPS or to a loopback address (``Secure``) and not with
requests other sites start (``SameSite=Lax``). Scripts and tests can send
``Authorization: Bearer <token>`` instead, as they do to the API.

The page's own script reads the JSON API (the change stream) with that
cookie: :class:`CookieBearer` turns the cookie into the bearer header for
``GET`` and ``HEAD`` requests to ``/v1/``, and only those, so a cookie can
never write. Sign-in and sign-out are ``POST`` forms whose ``Origin`` must be
this server (no other site can sign a visitor in or out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.auth import Principal, authenticate
from threadline.recorders.workspaces import Workspaces
from threadline.store import ThreadStore

COOKIE = "__Host-threadline"
"""The sign-in cookie. ``__Host-`` makes browsers insist on ``Secure``, ``Path=/``
and no ``Domain``, so no other host or path can set or shadow it."""

COOKIE_SECONDS = 7 * 24 * 3600

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script or style, nothing from another origin, no framing."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Viewer:
    """A signed-in request: who, a read-only store of their workspace, and
    whether they came with the cookie (then the page offers sign-out)."""

    principal: Principal
    store: ThreadStore
    by_cookie: bool


def presented_token(request: Request) -> tuple[str, bool] | None:
    """The token a request carries and whether it came from the cookie: the
    bearer header first, else the cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip(), False
        return None
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else None


async def sign_in(request: Request, storage: Callable[[], Workspaces]) -> Viewer | None:
    """The viewer of a request, or ``None`` without a valid token."""
    found = presented_token(request)
    if found is None:
        return None
    token, by_cookie = found
    workspaces = storage()
    principal = await authenticate(workspaces, token)
    if principal is None:
        return None
    recorder = await workspaces.recorder(principal.workspace)
    # Reading must not restore an archived thread from cold storage: the page
    # shows what is kept of it instead.
    return Viewer(principal, ThreadStore(recorder, restore_on_read=False), by_cookie)


def set_sign_in_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_sign_in_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")


def same_origin(request: Request) -> bool:
    """Whether a form post comes from a page of this server: its ``Origin`` (or,
    without one, its ``Referer``) names this host. Hosts are compared, not
    schemes, so a TLS-terminating proxy in front does not break sign-in."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    host = request.headers.get("host")
    return host is not None and urlsplit(source).netloc == host


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server, else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def insecure_origin(request: Request) -> bool:
    """Plain HTTP to a host that is not a loopback address: browsers drop the
    ``Secure`` cookie there, so sign-in cannot stick (the login page says so)."""
    if request.url.scheme == "https":
        return False
    forwarded = request.headers.get("x-forwarded-proto")
    if forwarded is not None and forwarded.split(",")[0].strip() == "https":
        return False
    host = (request.url.hostname or "").lower()
    return not (host in ("localhost", "::1") or host.startswith("127."))


class CookieBearer:
    """Lets the viewer's pages read the JSON API with the sign-in cookie: a
    ``GET``/``HEAD`` to ``/v1/...`` that has no ``Authorization`` header but
    has the cookie gets ``Authorization: Bearer <cookie>``. Writes never do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"].startswith("/v1/")
        ):
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            names = {name for name, _ in headers}
            if b"authorization" not in names and b"cookie" in names:
                cookie = b"; ".join(value for name, value in headers if name == b"cookie")
                token = cookie_parser(cookie.decode("latin-1")).get(COOKIE)
                if token:
                    bearer = (b"authorization", b"Bearer " + token.encode("latin-1"))
                    scope = {**scope, "headers": [*headers, bearer]}
        await self.app(scope, receive, send)
