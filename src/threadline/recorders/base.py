"""The recorder contract, as the storage roles of :mod:`threadline.recorders.roles`.

A recorder stores, per thread, an append-only log of deltas numbered
``1..v``, a snapshot of the folded head, and a projection of the current
messages indexed by position (the :class:`ThreadLog` role), and answers the
other roles it has. :class:`ThreadRecorder` names a full backend, one with
every role but the sync ledger: the memory, SQLite and PostgreSQL recorders
and the tiered store. The HTTP client has fewer roles. This module
re-exports the roles and their data types for the modules that import them
from here.
"""

from __future__ import annotations

from threadline.recorders.roles import (
    Append,
    ArchiveLedger,
    Change,
    ChangeFeed,
    FileLog,
    LinkGraph,
    LinkIndex,
    LinkKind,
    RecordedDelta,
    SearchIndex,
    ThreadLink,
    ThreadLog,
    UsageGroup,
    UsageIndex,
    UsagePricing,
    WriterLease,
    archive_ledger,
    change_feed,
    file_log,
    link_index,
    search_index,
    usage_index,
    usage_pricing,
    whole_log_thread_id,
)

__all__ = [
    "Append",
    "ArchiveLedger",
    "Change",
    "ChangeFeed",
    "FileLog",
    "LinkGraph",
    "LinkIndex",
    "LinkKind",
    "RecordedDelta",
    "SearchIndex",
    "ThreadLink",
    "ThreadLog",
    "ThreadRecorder",
    "UsageGroup",
    "UsageIndex",
    "UsagePricing",
    "WriterLease",
    "archive_ledger",
    "change_feed",
    "file_log",
    "link_index",
    "search_index",
    "usage_index",
    "usage_pricing",
    "whole_log_thread_id",
]


class ThreadRecorder(
    LinkIndex, UsageIndex, UsagePricing, SearchIndex, ChangeFeed, ArchiveLedger, FileLog
):
    """A full backend: the thread log with every role but the sync ledger.

    The store's own backends (memory, SQLite, PostgreSQL) and the
    :class:`~threadline.tiered.TieredStore` are full backends; the sync
    server keeps each workspace's threads in one."""
