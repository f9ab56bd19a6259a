from pathlib import Path

from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.files_suite import FileChangeContract
from tests.contract.lifecycle_suite import LifecycleContract
from tests.contract.relations_suite import RelationsContract
from tests.contract.search_suite import SearchContract
from tests.contract.suite import RecorderContract
from threadline.recorders import MemoryRecorder, ThreadRecorder


class TestMemoryRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()


class TestMemoryLifecycle(LifecycleContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()


class TestMemoryRelations(RelationsContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()


class TestMemorySearch(SearchContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()


class TestMemoryFileChanges(FileChangeContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()


class TestMemoryChangeFeed(ChangeFeedContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()
