"""A sync server over real HTTP on each backend, for the hardening tests (issue 16).

:func:`served` is parametrised: ``sqlite`` runs the app on an embedded SQLite
directory, ``postgres`` on the session's PostgreSQL; both in a uvicorn thread
on a free port (:class:`tests.pg.ServerThread`). Each test gets a fresh
workspace and a token of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.pg import ServerThread, make_token, new_workspace
from threadline.auth import create_token
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.server import StreamSettings, create_app


@dataclass(frozen=True)
class Backend:
    """A running server: its URL, and how to make a token of a workspace."""

    name: str
    url: str
    db: str  # the SQLite directory or the PostgreSQL DSN

    async def token(self, workspace: str, user: str = "tester") -> str:
        if self.name == "postgres":
            return await make_token(self.db, workspace, user)
        storage = SqliteWorkspaces(Path(self.db))
        try:
            return await create_token(storage, user, workspace)
        finally:
            await storage.close()


@dataclass
class Served:
    """A client of a fresh workspace on a running server."""

    backend: Backend
    http: httpx.AsyncClient
    workspace: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "postgres":
        db = str(request.getfixturevalue("postgres_dsn"))
    else:
        db = str(tmp_path_factory.mktemp("served-sqlite"))
    server = ServerThread(
        create_app(db_url=db, streams=StreamSettings(max_seconds=0.5, poll_seconds=0.1))
    )
    server.start()
    yield Backend(request.param, server.url, db)
    server.stop()


@pytest.fixture
async def served(backend: Backend) -> AsyncIterator[Served]:
    workspace = new_workspace()
    token = await backend.token(workspace)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=backend.url, headers=headers, timeout=30) as http:
        yield Served(backend, http, workspace)
