"""Storage backends and the small roles they serve (:mod:`threadline.recorders.roles`).

:class:`ThreadRecorder` names a full backend (every role); the HTTP client
has fewer roles (see :mod:`threadline.sync.client`).
"""

from threadline.recorders.base import (
    ArchiveLedger,
    ChangeFeed,
    FileLog,
    LinkIndex,
    RecordedDelta,
    SearchIndex,
    ThreadLog,
    ThreadRecorder,
    UsageIndex,
    WriterLease,
)
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.sqlite import SqliteRecorder

__all__ = [
    "ArchiveLedger",
    "ChangeFeed",
    "FileLog",
    "LinkIndex",
    "MemoryRecorder",
    "RecordedDelta",
    "SearchIndex",
    "SqliteRecorder",
    "ThreadLog",
    "ThreadRecorder",
    "UsageIndex",
    "WriterLease",
]
