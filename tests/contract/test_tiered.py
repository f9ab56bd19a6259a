"""The recorder contract through a TieredStore (memory → local SQLite; no
remote, so nothing leaves the machine).

The default policies keep sub-agent threads in memory only, so the relations
suite's sub-agents live in another tier than their parents: relationships,
costs and search must be answered across tiers. Archiving and restoring work
on local threads, so the lifecycle and file suites run with every kind local.
"""

from pathlib import Path

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.files_suite import FileChangeContract
from tests.contract.lifecycle_suite import LifecycleContract
from tests.contract.relations_suite import RelationsContract
from tests.contract.search_suite import SearchContract
from tests.contract.suite import RecorderContract
from threadline.recorders import SqliteRecorder, ThreadRecorder
from threadline.recorders.sync_state import THREAD_KINDS, ThreadKind
from threadline.tiered import PersistencePolicy, TieredStore

ALL_LOCAL: dict[ThreadKind, PersistencePolicy] = {
    kind: PersistencePolicy(memory_ttl=300.0, local=True, remote=None) for kind in THREAD_KINDS
}


class DefaultTiers:
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return TieredStore(SqliteRecorder(tmp_path / "threads.db"))


class LocalTiers:
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return TieredStore(SqliteRecorder(tmp_path / "threads.db"), policies=ALL_LOCAL)


class TestTieredRecorder(DefaultTiers, RecorderContract):
    pass


class TestTieredChangeFeed(DefaultTiers, ChangeFeedContract):
    pass


class TestTieredRelations(DefaultTiers, RelationsContract):
    pass


class TestTieredSearch(DefaultTiers, SearchContract):
    pass


class TestTieredLifecycle(LocalTiers, LifecycleContract):
    pass


class TestTieredFileChanges(LocalTiers, FileChangeContract):
    pass
