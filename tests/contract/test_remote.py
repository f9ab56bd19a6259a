"""The roles of the HTTP client, RemoteRecorder, against a live sync server on
PostgreSQL (tests/pg.py), each test in a workspace of its own.

The client has the thread log, the link, usage and search indexes and the
change feed. Archiving and file tracking run on the server, not over HTTP (see
threadline.sync.client): the client has no archive ledger and no file
log, so their suites cannot run here (the type checker refuses a
``make_recorder`` returning a RemoteRecorder for them).
"""

from pathlib import Path

import pytest

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.links_suite import LinkIndexContract
from tests.contract.search_suite import SearchIndexContract
from tests.contract.suite import ThreadLogContract
from tests.contract.usage_suite import UsageIndexContract
from tests.pg import make_token, new_workspace
from threadline.recorders.roles import (
    ArchiveLedger,
    ChangeFeed,
    FileLog,
    LinkIndex,
    SearchIndex,
    ThreadLog,
    UsageIndex,
)
from threadline.sync.client import RemoteRecorder


class RemoteBackend:
    @pytest.fixture(autouse=True)
    def _server(self, live_server: str, postgres_dsn: str) -> None:
        self.url = live_server
        self.dsn = postgres_dsn

    async def make_recorder(self, tmp_path: Path) -> RemoteRecorder:
        return RemoteRecorder(self.url, await make_token(self.dsn, new_workspace()))


class TestRemoteThreadLog(RemoteBackend, ThreadLogContract):
    pass


class TestRemoteLinkIndex(RemoteBackend, LinkIndexContract):
    pass


class TestRemoteUsageIndex(RemoteBackend, UsageIndexContract):
    pass


class TestRemoteSearchIndex(RemoteBackend, SearchIndexContract):
    pass


class TestRemoteChangeFeed(RemoteBackend, ChangeFeedContract):
    pass


async def test_the_client_has_the_served_roles_and_no_others() -> None:
    remote = RemoteRecorder("http://127.0.0.1:9", "token")
    try:
        for role in (ThreadLog, LinkIndex, UsageIndex, SearchIndex, ChangeFeed):
            assert isinstance(remote, role), role.__name__
        assert not isinstance(remote, ArchiveLedger)
        assert not isinstance(remote, FileLog)
        assert not hasattr(remote, "record_file_changes")
        assert not hasattr(remote, "commit_archive")
    finally:
        await remote.close()
