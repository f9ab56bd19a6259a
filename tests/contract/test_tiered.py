"""The recorder contract through a TieredStore: memory → local SQLite, and
once more with a remote tier (a sync server on embedded SQLite, on 127.0.0.1),
where every read that misses both local tiers asks the server.

The default policies keep sub-agent threads in memory only, so the relations
suite's sub-agents live in another tier than their parents: relationships,
costs and search must be answered across tiers. Archiving and restoring work
on local threads, so the lifecycle and file suites run with every kind local.
"""

from pathlib import Path

import pytest

from tests.contract.archive_suite import ArchiveLedgerContract
from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.filelog_suite import FileLogContract
from tests.contract.links_suite import LinkIndexContract
from tests.contract.search_suite import SearchIndexContract
from tests.contract.suite import ThreadLogContract
from tests.contract.usage_suite import UsageIndexContract, UsagePricingContract
from tests.sync.conftest import Server
from tests.sync.conftest import sync_server as sync_server  # the fixture, for RemoteTiers
from threadline.recorders import SqliteRecorder
from threadline.recorders.sync_state import THREAD_KINDS, ThreadKind
from threadline.sync.client import RemoteRecorder
from threadline.tiered import PersistencePolicy, TieredStore

ALL_LOCAL: dict[ThreadKind, PersistencePolicy] = {
    kind: PersistencePolicy(memory_ttl=300.0, local=True, remote=None) for kind in THREAD_KINDS
}


class DefaultTiers:
    async def make_recorder(self, tmp_path: Path) -> TieredStore:
        return TieredStore(SqliteRecorder(tmp_path / "threads.db"))


class LocalTiers:
    async def make_recorder(self, tmp_path: Path) -> TieredStore:
        return TieredStore(SqliteRecorder(tmp_path / "threads.db"), policies=ALL_LOCAL)


class RemoteTiers:
    @pytest.fixture(autouse=True)
    def _server(self, sync_server: Server) -> None:
        self.server = sync_server

    async def make_recorder(self, tmp_path: Path) -> TieredStore:
        remote = RemoteRecorder(self.server.url, await self.server.token())
        return TieredStore(SqliteRecorder(tmp_path / "threads.db"), remote=remote)


class TestTieredThreadLog(DefaultTiers, ThreadLogContract):
    pass


class TestTieredThreadLogWithRemote(RemoteTiers, ThreadLogContract):
    pass


class TestTieredLinkIndex(DefaultTiers, LinkIndexContract):
    pass


class TestTieredLinkIndexWithRemote(RemoteTiers, LinkIndexContract):
    pass


class TestTieredUsageIndex(DefaultTiers, UsageIndexContract):
    pass


class TestTieredUsagePricing(DefaultTiers, UsagePricingContract):
    pass


class TestTieredUsageIndexWithRemote(RemoteTiers, UsageIndexContract):
    pass


class TestTieredSearchIndex(DefaultTiers, SearchIndexContract):
    pass


class TestTieredChangeFeed(DefaultTiers, ChangeFeedContract):
    pass


class TestTieredArchiveLedger(LocalTiers, ArchiveLedgerContract):
    pass


class TestTieredFileLog(LocalTiers, FileLogContract):
    pass
