from pathlib import Path

from tests.contract.suite import RecorderContract
from threadline.recorders import SqliteRecorder, ThreadRecorder


class TestSqliteFileRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class TestSqliteMemoryRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return SqliteRecorder(":memory:")
