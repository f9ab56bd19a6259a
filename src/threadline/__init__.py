"""threadline: versioned, durable storage for the conversation threads of AI coding agents.

The names below are imported on first use (PEP 562), so ``import threadline``
— and every command, such as a hook that must start fast — pays only for
the modules it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.batch import CreateOp, DeleteOp, UpdateOp, WriteOutcome
    from threadline.costs import CostLine, CostReport
    from threadline.deltas import (
        ChildLinkDelta,
        Delta,
        EnvDelta,
        MessageDelta,
        MetadataDelta,
        SummaryLinkDelta,
        ThreadCreate,
        TitleDelta,
        TruncateDelta,
        apply,
        diff,
        fold,
    )
    from threadline.errors import (
        ArchiveError,
        ArchiveObjectCorrupt,
        ArchiveObjectMissing,
        ArchiveUnavailable,
        ContentCorrupt,
        InvalidDelta,
        InvalidFileChange,
        InvalidModification,
        MessageNotFound,
        NoWorkingDirectory,
        OperationNotFound,
        PathOutsideWorkspace,
        RoleUnavailable,
        RollbackInterrupted,
        StoreBusy,
        StoreClosed,
        StoreCorrupt,
        StoreFull,
        ThreadArchived,
        ThreadExists,
        ThreadlineError,
        ThreadNotFound,
        VersionConflict,
        WriterBusy,
        WriterClosed,
    )
    from threadline.events import ThreadEvent
    from threadline.files.log import FileChange, FileState, UnknownContent
    from threadline.files.rollback import FileOutcome, RollbackReport
    from threadline.files.tracking import FileDiff, FileOperation, ToolFiles
    from threadline.lifecycle.archive import ColdStorage
    from threadline.model import (
        ArchivedThread,
        Message,
        Thread,
        ThreadHead,
        ThreadListPage,
        ThreadPage,
        ToolCall,
        ToolResult,
        Usage,
        UsageTotals,
    )
    from threadline.relations import MissingThread, RelatedThreads, RootThread, ThreadTree, TreeNode
    from threadline.retry import with_retry
    from threadline.store import ThreadStore, VersionNotFound
    from threadline.writer import ThreadWriter

_WHERE: dict[str, str] = {
    "ArchiveError": "threadline.errors",
    "ArchiveObjectCorrupt": "threadline.errors",
    "ArchiveObjectMissing": "threadline.errors",
    "ArchiveUnavailable": "threadline.errors",
    "ArchivedThread": "threadline.model",
    "ChildLinkDelta": "threadline.deltas",
    "ColdStorage": "threadline.lifecycle.archive",
    "ContentCorrupt": "threadline.errors",
    "CostLine": "threadline.costs",
    "CostReport": "threadline.costs",
    "CreateOp": "threadline.batch",
    "DeleteOp": "threadline.batch",
    "Delta": "threadline.deltas",
    "EnvDelta": "threadline.deltas",
    "FileChange": "threadline.files.log",
    "FileDiff": "threadline.files.tracking",
    "FileOperation": "threadline.files.tracking",
    "FileOutcome": "threadline.files.rollback",
    "FileState": "threadline.files.log",
    "InvalidDelta": "threadline.errors",
    "InvalidFileChange": "threadline.errors",
    "InvalidModification": "threadline.errors",
    "Message": "threadline.model",
    "MessageDelta": "threadline.deltas",
    "MessageNotFound": "threadline.errors",
    "MetadataDelta": "threadline.deltas",
    "MissingThread": "threadline.relations",
    "NoWorkingDirectory": "threadline.errors",
    "OperationNotFound": "threadline.errors",
    "PathOutsideWorkspace": "threadline.errors",
    "RelatedThreads": "threadline.relations",
    "RoleUnavailable": "threadline.errors",
    "RollbackInterrupted": "threadline.errors",
    "RollbackReport": "threadline.files.rollback",
    "RootThread": "threadline.relations",
    "StoreBusy": "threadline.errors",
    "StoreClosed": "threadline.errors",
    "StoreCorrupt": "threadline.errors",
    "StoreFull": "threadline.errors",
    "SummaryLinkDelta": "threadline.deltas",
    "Thread": "threadline.model",
    "ThreadArchived": "threadline.errors",
    "ThreadCreate": "threadline.deltas",
    "ThreadEvent": "threadline.events",
    "ThreadExists": "threadline.errors",
    "ThreadHead": "threadline.model",
    "ThreadListPage": "threadline.model",
    "ThreadNotFound": "threadline.errors",
    "ThreadPage": "threadline.model",
    "ThreadStore": "threadline.store",
    "ThreadTree": "threadline.relations",
    "ThreadWriter": "threadline.writer",
    "ThreadlineError": "threadline.errors",
    "TitleDelta": "threadline.deltas",
    "ToolCall": "threadline.model",
    "ToolFiles": "threadline.files.tracking",
    "ToolResult": "threadline.model",
    "TreeNode": "threadline.relations",
    "TruncateDelta": "threadline.deltas",
    "UnknownContent": "threadline.files.log",
    "UpdateOp": "threadline.batch",
    "Usage": "threadline.model",
    "UsageTotals": "threadline.model",
    "VersionConflict": "threadline.errors",
    "VersionNotFound": "threadline.store",
    "WriteOutcome": "threadline.batch",
    "WriterBusy": "threadline.errors",
    "WriterClosed": "threadline.errors",
    "apply": "threadline.deltas",
    "diff": "threadline.deltas",
    "fold": "threadline.deltas",
    "with_retry": "threadline.retry",
}

__all__ = [
    "ArchiveError",
    "ArchiveObjectCorrupt",
    "ArchiveObjectMissing",
    "ArchiveUnavailable",
    "ArchivedThread",
    "ChildLinkDelta",
    "ColdStorage",
    "ContentCorrupt",
    "CostLine",
    "CostReport",
    "CreateOp",
    "DeleteOp",
    "Delta",
    "EnvDelta",
    "FileChange",
    "FileDiff",
    "FileOperation",
    "FileOutcome",
    "FileState",
    "InvalidDelta",
    "InvalidFileChange",
    "InvalidModification",
    "Message",
    "MessageDelta",
    "MessageNotFound",
    "MetadataDelta",
    "MissingThread",
    "NoWorkingDirectory",
    "OperationNotFound",
    "PathOutsideWorkspace",
    "RelatedThreads",
    "RoleUnavailable",
    "RollbackInterrupted",
    "RollbackReport",
    "RootThread",
    "StoreBusy",
    "StoreClosed",
    "StoreCorrupt",
    "StoreFull",
    "SummaryLinkDelta",
    "Thread",
    "ThreadArchived",
    "ThreadCreate",
    "ThreadEvent",
    "ThreadExists",
    "ThreadHead",
    "ThreadListPage",
    "ThreadNotFound",
    "ThreadPage",
    "ThreadStore",
    "ThreadTree",
    "ThreadWriter",
    "ThreadlineError",
    "TitleDelta",
    "ToolCall",
    "ToolFiles",
    "ToolResult",
    "TreeNode",
    "TruncateDelta",
    "UnknownContent",
    "UpdateOp",
    "Usage",
    "UsageTotals",
    "VersionConflict",
    "VersionNotFound",
    "WriteOutcome",
    "WriterBusy",
    "WriterClosed",
    "apply",
    "diff",
    "fold",
    "with_retry",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
