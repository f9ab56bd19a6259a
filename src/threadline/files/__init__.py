"""File tracking: every file a tool call created, changed or deleted, and rollback.

- :mod:`~threadline.files.log` — the records (a change, a file's state or
  :class:`UnknownContent` where an import's transcript did not hold it, a
  rollback journal entry); the storage role that keeps them is
  :class:`~threadline.recorders.roles.FileLog`.
- :mod:`~threadline.files.contents` — file contents stored once per distinct
  content, zstd-compressed, as deltas against the previous content.
- :mod:`~threadline.files.workdir` — a thread's working directory on disk:
  resolving paths inside it, reading and atomically replacing files.
- :mod:`~threadline.files.rollback` — pure rollback planning and decisions.
- :mod:`~threadline.files.diffs` — the unified diff (or one-line summary) of a change.
- :mod:`~threadline.files.tracking` — :class:`FileTracker` and
  :class:`ToolFiles`, which tie the above together.
"""

from threadline.files.log import FileChange, FileState, UnknownContent
from threadline.files.rollback import FileOutcome, RollbackReport
from threadline.files.tracking import FileDiff, FileOperation, FileTracker, ToolFiles

__all__ = [
    "FileChange",
    "FileDiff",
    "FileOperation",
    "FileOutcome",
    "FileState",
    "FileTracker",
    "RollbackReport",
    "ToolFiles",
    "UnknownContent",
]
