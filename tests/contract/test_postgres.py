"""The recorder contract on PostgreSQL: each test gets a fresh workspace of the
session's cluster (tests/pg.py), which is as empty as a new database."""

from pathlib import Path

import pytest

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.files_suite import FileChangeContract
from tests.contract.lifecycle_suite import LifecycleContract
from tests.contract.relations_suite import RelationsContract
from tests.contract.search_suite import SearchContract
from tests.contract.suite import RecorderContract
from tests.pg import new_workspace
from threadline.recorders import ThreadRecorder
from threadline.recorders.postgres import PostgresRecorder


class PostgresBackend:
    @pytest.fixture(autouse=True)
    def _dsn(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return await PostgresRecorder.connect(self.dsn, workspace=new_workspace(), max_size=4)


class TestPostgresRecorder(PostgresBackend, RecorderContract):
    pass


class TestPostgresLifecycle(PostgresBackend, LifecycleContract):
    pass


class TestPostgresRelations(PostgresBackend, RelationsContract):
    pass


class TestPostgresSearch(PostgresBackend, SearchContract):
    pass


class TestPostgresChangeFeed(PostgresBackend, ChangeFeedContract):
    pass


class TestPostgresFileChanges(PostgresBackend, FileChangeContract):
    pass
