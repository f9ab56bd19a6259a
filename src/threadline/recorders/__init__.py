"""Storage backends behind one small contract, :class:`ThreadRecorder`."""

from threadline.recorders.base import RecordedDelta, ThreadRecorder, WriterLease
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.sqlite import SqliteRecorder

__all__ = ["MemoryRecorder", "RecordedDelta", "SqliteRecorder", "ThreadRecorder", "WriterLease"]
