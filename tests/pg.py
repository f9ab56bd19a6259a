"""The PostgreSQL the tests use: one throwaway cluster per test session.

:func:`postgres_dsn` starts it from the system's packages (``.ci/run``
installs Debian's ``postgresql``) on 127.0.0.1 and a free port, and stops it
at the end. If it cannot start, every test that needs it fails: a missing
PostgreSQL must not pass for a green run. Only ``THREADLINE_SKIP_PG=1`` (for
local development without PostgreSQL) turns those tests into skips.

Tests share the cluster and keep apart by workspace: :func:`new_workspace`
names a fresh one, which is empty.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from threadline.testing import TemporaryPostgres, free_port


def new_workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of the session's PostgreSQL cluster."""
    if os.environ.get("THREADLINE_SKIP_PG") == "1":
        pytest.skip("THREADLINE_SKIP_PG=1: tests that need PostgreSQL are skipped")
    with TemporaryPostgres(settings={"max_connections": "200"}) as cluster:
        yield cluster.dsn


class ServerThread:
    """A sync server (uvicorn) on 127.0.0.1 and a free port, in a thread of this
    process, until :meth:`stop`."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(postgres_dsn: str) -> Iterator[str]:
    """The base URL of a sync server on the session's PostgreSQL."""
    from threadline.sync.server import StreamSettings, create_app

    server = ServerThread(
        create_app(db_url=postgres_dsn, streams=StreamSettings(max_seconds=30, poll_seconds=0.5))
    )
    server.start()
    yield server.url
    server.stop()


async def make_token(dsn: str, workspace: str, user: str = "tester") -> str:
    """A token of ``workspace`` on the database at ``dsn``."""
    from threadline.auth import create_token
    from threadline.recorders.postgres import PostgresWorkspaces

    storage = await PostgresWorkspaces.connect(dsn, min_size=1, max_size=1)
    try:
        return await create_token(storage, user, workspace)
    finally:
        await storage.close()
