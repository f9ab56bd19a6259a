"""Every role's contract on PostgreSQL, which has them all: each test gets a
fresh workspace of the session's cluster (tests/pg.py), which is as empty as a
new database."""

import asyncio
from pathlib import Path

import pytest

from tests.contract.archive_suite import ArchiveLedgerContract
from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.filelog_suite import FileLogContract
from tests.contract.links_suite import LinkIndexContract
from tests.contract.search_suite import SearchIndexContract
from tests.contract.suite import ThreadLogContract
from tests.contract.usage_suite import UsageIndexContract, UsagePricingContract
from tests.pg import new_workspace
from threadline.deltas import ThreadCreate
from threadline.errors import InvalidDelta, ThreadlineError
from threadline.model import ThreadHead
from threadline.recorders.base import Append
from threadline.recorders.postgres import PostgresRecorder


class PostgresBackend:
    @pytest.fixture(autouse=True)
    def _dsn(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    async def make_recorder(self, tmp_path: Path) -> PostgresRecorder:
        return await PostgresRecorder.connect(self.dsn, workspace=new_workspace(), max_size=4)


class TestPostgresThreadLog(PostgresBackend, ThreadLogContract):
    pass


class TestPostgresArchiveLedger(PostgresBackend, ArchiveLedgerContract):
    pass


class TestPostgresLinkIndex(PostgresBackend, LinkIndexContract):
    pass


class TestPostgresUsageIndex(PostgresBackend, UsageIndexContract):
    pass


class TestPostgresUsagePricing(PostgresBackend, UsagePricingContract):
    pass


class TestPostgresSearchIndex(PostgresBackend, SearchIndexContract):
    pass


class TestPostgresFileLog(PostgresBackend, FileLogContract):
    pass


class TestPostgresChangeFeed(PostgresBackend, ChangeFeedContract):
    pass


class TestPostgresGroupCommit(PostgresBackend):
    """Concurrent appends of a workspace share a transaction (commit_groups.py)."""

    async def test_an_append_the_database_refuses_does_not_fail_its_group(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        recorder = await self.make_recorder(tmp_path)
        assert isinstance(recorder, PostgresRecorder)
        groups: list[int] = []
        together = recorder._append_together

        async def spy(appends: list[Append]) -> list[ThreadHead | ThreadlineError]:
            groups.append(len(appends))
            return await together(appends)

        monkeypatch.setattr(recorder, "_append_together", spy)
        try:
            ids = [f"T-{i}" for i in range(6)] + ["T-\x00"]  # text PostgreSQL cannot store
            results = await asyncio.gather(
                *(recorder.append(i, 0, [ThreadCreate(id=i)]) for i in ids),
                return_exceptions=True,
            )
            assert [getattr(r, "v", None) for r in results[:6]] == [1] * 6
            assert isinstance(results[6], InvalidDelta)
            assert groups
            assert max(groups) > 1
            changes = await recorder.changes_since(0, limit=10)
            assert sorted(c.thread_id for c in changes) == ids[:6]
        finally:
            await recorder.close()
