"""Fixtures of the viewer's HTTP tests: the server app in-process on embedded
SQLite, seeded (see ``seeding.py``), with clients for both workspaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.viewer.seeding import Seeded, seed
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.server import StreamSettings, create_app

BASE = "http://127.0.0.1:8787"


def client(app: object, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=BASE,
        headers=headers or {},
    )


@dataclass
class Site:
    """The app, its storage, what was seeded, and clients: ``a`` and ``b`` send
    their workspace's bearer token, ``anonymous`` none."""

    app: object
    storage: SqliteWorkspaces
    seeded: Seeded
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    anonymous: httpx.AsyncClient


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    storage = SqliteWorkspaces(tmp_path / "server")
    seeded = await seed(storage, tmp_path / "work")
    app = create_app(storage, streams=StreamSettings(max_seconds=0.5, poll_seconds=0.05))
    async with (
        client(app, {"Authorization": f"Bearer {seeded.token_a}"}) as a,
        client(app, {"Authorization": f"Bearer {seeded.token_b}"}) as b,
        client(app) as anonymous,
    ):
        yield Site(app, storage, seeded, a, b, anonymous)
    await storage.close()
