"""Fixtures of the sync tests: a real sync server (uvicorn on 127.0.0.1, embedded
SQLite storage) in a thread of the test process, tokens, replicas and an httpx
transport that drops requests or responses."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.pg import ServerThread, new_workspace
from threadline.auth import create_token
from threadline.recorders.sqlite import SqliteRecorder
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.client import RemoteRecorder
from threadline.sync.server import create_app
from threadline.sync.service import Backoff, SyncService, SyncSettings
from threadline.tiered import TieredStore


@dataclass
class Server:
    """A running sync server and its storage."""

    storage: SqliteWorkspaces
    thread: ServerThread

    @property
    def url(self) -> str:
        return self.thread.url

    async def token(self, workspace: str | None = None) -> str:
        return await create_token(self.storage, "tester", workspace or new_workspace())

    def stop(self) -> None:
        self.thread.stop()
        asyncio.run(self.storage.close())


def start_server(directory: Path) -> Server:
    storage = SqliteWorkspaces(directory)
    thread = ServerThread(create_app(storage))
    thread.start()
    return Server(storage, thread)


@pytest.fixture(scope="module")
def sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


class FaultyTransport(httpx.AsyncBaseTransport):
    """Loopback HTTP that drops a request before it is sent (``drop_request``)
    or the response after the server answered (``drop_response``: the server
    committed, the client never hears), at random from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rng = rng
        self.drop_request = 0.0
        self.drop_response = 0.0
        self.requests = 0
        self.dropped_requests = 0
        self.dropped_responses = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.rng.random() < self.drop_request:
            self.dropped_requests += 1
            raise httpx.ConnectError("dropped request (test fault)", request=request)
        response = await self.inner.handle_async_request(request)
        if self.rng.random() < self.drop_response:
            await response.aread()
            await response.aclose()
            self.dropped_responses += 1
            raise httpx.ReadError("dropped response (test fault)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class FakeClock:
    """Milliseconds that move only when told: back-offs without waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


# Immediate retries without waiting; one fetch at a time so that a seed replays exactly.
TEST_SETTINGS = SyncSettings(
    request_attempts=2,
    request_backoff=0.0,
    fetch_concurrency=1,
    backoff=Backoff(base=30.0, cap=600.0),
)


def replica(
    url: str,
    token: str,
    *,
    clock: Callable[[], int],
    rng: random.Random,
    transport: httpx.AsyncBaseTransport | None = None,
    path: str | Path = ":memory:",
    settings: SyncSettings = TEST_SETTINGS,
    timeout: float = 30.0,
) -> TieredStore:
    """A replica: a tiered store over its own SQLite, syncing with ``url``."""
    return TieredStore(
        SqliteRecorder(path),
        remote=RemoteRecorder(url, token, transport=transport, timeout=timeout),
        sync_settings=settings,
        sync_clock=clock,
        sync_rng=rng,
    )


def service(local: SqliteRecorder, server: Server, token: str, seed: int) -> SyncService:
    """The sync service of a plain local store (no tiers), with ``server``."""
    return SyncService(
        local,
        RemoteRecorder(server.url, token),
        settings=TEST_SETTINGS,
        rng=random.Random(seed),
        clock=FakeClock(),
    )
