from pathlib import Path

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.files_suite import FileChangeContract
from tests.contract.lifecycle_suite import LifecycleContract
from tests.contract.relations_suite import RelationsContract
from tests.contract.search_suite import SearchContract
from tests.contract.suite import RecorderContract
from threadline.recorders import SqliteRecorder, ThreadRecorder


class TestSqliteFileRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileLifecycle(LifecycleContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryLifecycle(LifecycleContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileRelations(RelationsContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryRelations(RelationsContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileSearch(SearchContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemorySearch(SearchContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileFileChanges(FileChangeContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryFileChanges(FileChangeContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileChangeFeed(ChangeFeedContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryChangeFeed(ChangeFeedContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")
