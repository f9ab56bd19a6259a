from pathlib import Path

from tests.contract.suite import RecorderContract
from threadline.recorders import MemoryRecorder, ThreadRecorder


class TestMemoryRecorder(RecorderContract):
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        return MemoryRecorder()
