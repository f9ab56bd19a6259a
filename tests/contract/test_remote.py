"""The recorder contract through the HTTP client: RemoteRecorder against a live
sync server on PostgreSQL (tests/pg.py), each test in a workspace of its own.

Archiving and file tracking run on the server, not over HTTP (see
threadline.recorders.remote), so their suites are not run here.
"""

from pathlib import Path

import pytest

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.relations_suite import RelationsContract
from tests.contract.search_suite import SearchContract
from tests.contract.suite import RecorderContract
from tests.pg import make_token, new_workspace
from threadline.recorders import ThreadRecorder
from threadline.recorders.remote import RemoteRecorder


class RemoteBackend:
    @pytest.fixture(autouse=True)
    def _server(self, live_server: str, postgres_dsn: str) -> None:
        self.url = live_server
        self.dsn = postgres_dsn

    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return RemoteRecorder(self.url, await make_token(self.dsn, new_workspace()))


class TestRemoteRecorder(RemoteBackend, RecorderContract):
    pass


class TestRemoteRelations(RemoteBackend, RelationsContract):
    pass


class TestRemoteSearch(RemoteBackend, SearchContract):
    pass


class TestRemoteChangeFeed(RemoteBackend, ChangeFeedContract):
    pass
