"""Fixtures of the server tests: the app in-process on embedded SQLite, with tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from threadline.auth import create_token
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.server import ServerLimits, StreamSettings, create_app

LIMITS = ServerLimits(
    max_body_bytes=200_000, max_message_bytes=50_000, max_deltas_per_push=20, max_page_size=100
)


@dataclass
class Api:
    """An in-process server and a client for each of two workspaces' tokens."""

    storage: SqliteWorkspaces
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    anonymous: httpx.AsyncClient


def client(app: object, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
        headers=headers,
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    storage = SqliteWorkspaces(tmp_path / "server")
    app = create_app(
        storage, limits=LIMITS, streams=StreamSettings(max_seconds=1.0, poll_seconds=0.1)
    )
    token_a = await create_token(storage, "alice", "team-a")
    token_b = await create_token(storage, "bob", "team-b")
    async with client(app, token_a) as a, client(app, token_b) as b, client(app) as anonymous:
        yield Api(storage, a, b, anonymous)
    await storage.close()


# A server over real HTTP on each backend (issue 16's tests).
from tests.server.served import backend, served  # noqa: E402, F401
