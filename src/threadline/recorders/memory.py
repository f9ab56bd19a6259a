"""In-memory recorder: the fastest backend and the fake unit tests use.

It keeps nothing across processes; it passes the same contract suite as the
durable backends.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from threadline.deltas import (
    Delta,
    MessageDelta,
    ThreadCreate,
    TruncateDelta,
    apply_head,
    fold_head,
)
from threadline.errors import (
    InvalidDelta,
    StoreClosed,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.filelog import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.ids import now_ms
from threadline.model import ArchivedThread, LifecycleOp, Message, Thread, ThreadHead, Usage
from threadline.recorders.base import (
    Append,
    Change,
    LinkGraph,
    RecordedDelta,
    ThreadLink,
    ThreadRecorder,
    UsageGroup,
    WriterLease,
    whole_log_thread_id,
)
from threadline.recorders.memory_files import MemoryFileLog
from threadline.search import SearchDocument, SearchHit, bm25_rank, parse_query


@dataclass
class _Entry:
    head: ThreadHead
    log: list[RecordedDelta] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


class _MemoryLease(WriterLease):
    def __init__(self, held: set[str], thread_id: str) -> None:
        self._held = held
        self.thread_id = thread_id

    def release(self) -> None:
        self._held.discard(self.thread_id)


class MemoryRecorder(ThreadRecorder):
    def __init__(self) -> None:
        self._threads: dict[str, _Entry] = {}
        self._leases: set[str] = set()
        self._closed = False
        self._archived: dict[str, ArchivedThread] = {}
        self._lifecycle: dict[str, LifecycleOp] = {}
        self._files = MemoryFileLog()
        # The change feed: each thread's newest change, in cursor order.
        self._feed: OrderedDict[str, Change] = OrderedDict()
        self._feed_seq = 0

    @property
    def location(self) -> str:
        return ":memory:"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        self._check_open()
        if not deltas:
            raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        entry = self._threads.get(thread_id)
        if expected_version == 0:
            if entry is not None or thread_id in self._archived:
                raise ThreadExists(thread_id)
            first = deltas[0]
            if not isinstance(first, ThreadCreate) or first.id != thread_id:
                raise InvalidDelta(f"Thread {thread_id} must start with its thread:create delta")
            head: ThreadHead | None = None
        else:
            if entry is None:
                raise ThreadNotFound(thread_id)
            if entry.head.v != expected_version:
                raise VersionConflict(thread_id, expected_version, entry.head.v)
            head = entry.head
        # Everything is computed before anything is stored: all or nothing.
        at = now_ms()
        recorded: list[RecordedDelta] = []
        for delta in deltas:
            head = apply_head(head, delta)
            recorded.append(RecordedDelta(thread_id, head.v, at, delta))
        assert head is not None
        if entry is None:
            entry = self._threads[thread_id] = _Entry(head)
        for record in recorded:
            if isinstance(record.delta, MessageDelta):
                entry.messages.append(record.delta.message)
            elif isinstance(record.delta, TruncateDelta):
                del entry.messages[record.delta.from_index :]
        entry.head = head
        entry.log.extend(recorded)
        self._publish(thread_id, head.v, deleted=False)
        return head

    async def head(self, thread_id: str) -> ThreadHead | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        return None if entry is None else entry.head

    async def load(self, thread_id: str) -> Thread | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        fields = entry.head.model_dump(exclude={"message_count", "last_activity", "totals"})
        return Thread.model_construct(**fields, messages=tuple(entry.messages))

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        count = len(entry.messages)
        end = max(0, (count if before is None else min(before, count)) - offset)
        return entry.head, entry.messages[max(0, end - limit) : end]

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return []
        return [r for r in entry.log[after:] if upto is None or r.v <= upto]

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        self._check_open()
        heads = sorted(
            (e.head for e in self._threads.values()),
            key=lambda h: (h.last_activity, h.id),
            reverse=True,
        )
        if after is not None:
            heads = [h for h in heads if (h.last_activity, h.id) < after]
        return heads[:limit]

    async def delete(self, thread_id: str) -> bool:
        self._check_open()
        return self._delete_published(thread_id)

    def acquire_lease(self, thread_id: str) -> WriterLease:
        self._check_open()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        self._leases.add(thread_id)
        return _MemoryLease(self._leases, thread_id)

    async def close(self) -> None:
        self._closed = True

    # -- relationships and costs ----------------------------------------------

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        self._check_open()
        # Remember each touched thread as it was, and put it back on any failure.
        saved: dict[str, tuple[_Entry, ThreadHead, int, list[Message]] | None] = {}
        for thread_id, _, _ in appends:
            if thread_id not in saved:
                entry = self._threads.get(thread_id)
                saved[thread_id] = (
                    None
                    if entry is None
                    else (entry, entry.head, len(entry.log), list(entry.messages))
                )
        feed = (self._feed.copy(), self._feed_seq)
        try:
            return [await self.append(*append) for append in appends]
        except BaseException:
            for thread_id, before in saved.items():
                if before is None:
                    self._threads.pop(thread_id, None)
                    continue
                entry, head, log_length, messages = before
                entry.head = head
                del entry.log[log_length:]
                entry.messages[:] = messages
                self._threads[thread_id] = entry
            self._feed, self._feed_seq = feed
            raise

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        self._check_open()
        results: list[ThreadHead | ThreadlineError] = []
        for append in appends:
            try:
                results.append(await self.append(*append))
            except ThreadlineError as exc:
                results.append(exc)
        return results

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        self._check_open()
        return [self._delete_published(thread_id) for thread_id in thread_ids]

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        self._check_open()
        found: dict[str, Thread] = {}
        for thread_id in thread_ids:
            thread = await self.load(thread_id)
            if thread is not None:
                found[thread_id] = thread
        return found

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        self._check_open()
        return {i: self._threads[i].head for i in thread_ids if i in self._threads}

    def _links(self) -> set[ThreadLink]:
        """Every link either end records, as the SQLite projection keeps them."""
        links: set[ThreadLink] = set()
        for entry in self._threads.values():
            head = entry.head
            links.update(ThreadLink(head.id, c, "child") for c in head.child_thread_ids)
            links.update(ThreadLink(head.id, s, "summary") for s in head.summary_thread_ids)
            if head.parent_thread_id is not None:
                links.add(ThreadLink(head.parent_thread_id, head.id, "child"))
            if head.origin_thread_id is not None:
                links.add(ThreadLink(head.origin_thread_id, head.id, "summary"))
        return links

    def _walk(self, thread_id: str, *, down: bool) -> LinkGraph:
        by_end: dict[str, list[ThreadLink]] = {}
        for link in self._links():
            by_end.setdefault(link.parent_id if down else link.child_id, []).append(link)
        reached: list[ThreadLink] = []
        seen = {thread_id}
        frontier = [thread_id]
        while frontier:
            following: list[str] = []
            for current in frontier:
                for link in by_end.get(current, ()):
                    reached.append(link)
                    nxt = link.child_id if down else link.parent_id
                    if nxt not in seen:
                        seen.add(nxt)
                        following.append(nxt)
            frontier = following
        heads = {i: self._threads[i].head for i in seen if i in self._threads}
        return LinkGraph(tuple(reached), heads, frozenset(seen & self._archived.keys()))

    async def subtree(self, thread_id: str) -> LinkGraph:
        self._check_open()
        return self._walk(thread_id, down=True)

    async def ancestry(self, thread_id: str) -> LinkGraph:
        self._check_open()
        return self._walk(thread_id, down=False)

    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        self._check_open()
        scope = set(self._threads) if thread_ids is None else set(thread_ids)
        if subtrees and thread_ids is not None:
            for thread_id in thread_ids:
                scope.update(self._walk(thread_id, down=True).heads)
        groups: dict[_UsageKey, _UsageSums] = {}
        for thread_id in sorted(scope & self._threads.keys()):
            for record in self._threads[thread_id].log:
                if isinstance(record.delta, MessageDelta):
                    message = record.delta.message
                    if message.usage is not None:
                        _add_usage(groups, thread_id, message.timestamp, message.usage)
        return [
            UsageGroup(
                thread_id=thread_id,
                model=model,
                day=day,
                messages=sums.messages,
                input_tokens=sums.tokens[0],
                output_tokens=sums.tokens[1],
                cache_read_tokens=sums.tokens[2],
                cache_write_tokens=sums.tokens[3],
                cost_usd=None if size is not None else sums.cost_usd,
            )
            for (thread_id, model, day, size), sums in groups.items()
        ]

    # -- lifecycle ------------------------------------------------------------

    async def begin_lifecycle(self, op: LifecycleOp) -> None:
        self._check_open()
        self._lifecycle[op.id] = op

    async def end_lifecycle(self, op_id: str) -> bool:
        self._check_open()
        return self._lifecycle.pop(op_id, None) is not None

    async def pending_lifecycle(self) -> list[LifecycleOp]:
        self._check_open()
        return sorted(self._lifecycle.values(), key=lambda op: (op.started, op.id))

    async def commit_archive(self, op_id: str, entries: Sequence[ArchivedThread]) -> None:
        self._check_open()
        for item in entries:  # check everything before changing anything
            entry = self._threads.get(item.id)
            if entry is None:
                raise ThreadNotFound(item.id)
            if entry.head.v != item.object.v:
                raise VersionConflict(item.id, item.object.v, entry.head.v)
        for item in entries:
            # Not delete(): an archived thread is not gone, so no tombstone in the
            # change feed, and its file log stays (it is not in the archive object).
            del self._threads[item.id]
            self._archived[item.id] = item
        self._lifecycle.pop(op_id, None)

    async def commit_restore(
        self, logs: Sequence[Sequence[RecordedDelta]], op: LifecycleOp
    ) -> list[ThreadHead]:
        self._check_open()
        for log in logs:  # check and fold everything before changing anything
            thread_id = whole_log_thread_id(log)
            if thread_id in self._threads:
                raise ThreadExists(thread_id)
            archived = self._archived.get(thread_id)
            if archived is None:
                raise ThreadNotFound(thread_id)
            if archived.object.v != len(log):
                raise VersionConflict(thread_id, archived.object.v, len(log))
            fold_head(r.delta for r in log)
        heads: list[ThreadHead] = []
        for log in logs:
            thread_id = log[0].thread_id
            del self._archived[thread_id]
            # Through append, so that whatever it maintains is maintained; then the
            # log gets its original commit times back.
            heads.append(await self.append(thread_id, 0, [r.delta for r in log]))
            self._threads[thread_id].log = list(log)
        self._lifecycle[op.id] = op
        return heads

    async def archived(self, thread_id: str) -> ArchivedThread | None:
        self._check_open()
        return self._archived.get(thread_id)

    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        self._check_open()
        entries = sorted(
            self._archived.values(),
            key=lambda e: (e.head.last_activity, e.id),
            reverse=True,
        )
        if after is not None:
            entries = [e for e in entries if (e.head.last_activity, e.id) < after]
        return entries[:limit]

    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        rebuilt = self._threads[thread_id] = _entry_of(entry.log)
        return rebuilt.head

    # -- search ---------------------------------------------------------------

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """BM25 over every current message and title, computed on each call: a
        scan, which is what a fake needs (the SQLite backend keeps an index)."""
        self._check_open()
        terms = parse_query(query)
        documents: list[tuple[tuple[str, str | None], SearchDocument]] = []
        for thread_id, entry in self._threads.items():
            if entry.head.title:
                documents.append(((thread_id, None), SearchDocument.of_title(entry.head.title)))
            documents.extend(
                ((thread_id, m.id), SearchDocument.of_message(m)) for m in entry.messages
            )
        hits: list[SearchHit] = []
        for score, key, document in bm25_rank(documents, terms)[:limit]:
            thread_id, message_id = key
            snippet, highlights = document.snippet(terms)
            hits.append(
                SearchHit(
                    thread_id=thread_id,
                    message_id=message_id,
                    kind="title" if message_id is None else "message",
                    snippet=snippet,
                    highlights=highlights,
                    score=score,
                    thread_title=self._threads[thread_id].head.title,
                )
            )
        return hits

    # -- file changes (see recorders/memory_files.py) --------------------------

    # -- change feed ------------------------------------------------------------

    def _publish(self, thread_id: str, v: int, *, deleted: bool) -> None:
        self._feed_seq += 1
        self._feed.pop(thread_id, None)
        self._feed[thread_id] = Change(self._feed_seq, thread_id, v, deleted, now_ms())

    def _delete_published(self, thread_id: str) -> bool:
        entry = self._threads.get(thread_id)
        if entry is None or not self._drop(thread_id):
            return False
        self._publish(thread_id, entry.head.v, deleted=True)
        return True

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        self._check_open()
        found: list[Change] = []
        for change in reversed(self._feed.values()):  # newest first: stop at the cursor
            if change.cursor <= cursor:
                break
            found.append(change)
        found.reverse()
        return found[:limit]

    def _drop(self, thread_id: str) -> bool:
        """Delete a thread, its file log and the contents only it used."""
        if self._threads.pop(thread_id, None) is None:
            return False
        self._files.forget(thread_id)
        return True

    def _version(self, thread_id: str) -> int:
        entry = self._threads.get(thread_id)
        if entry is None:
            raise ThreadNotFound(thread_id)
        return entry.head.v

    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        self._check_open()
        version = self._version(thread_id)
        return self._files.record(thread_id, version, changes, contents, rollback)

    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        self._check_open()
        return self._files.changes(thread_id, operation_id, since_version)

    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        self._check_open()
        return self._files.reverts_of(thread_id, seqs)

    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        self._check_open()
        return self._files.latest(thread_id, paths)

    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        self._check_open()
        return self._files.chain(content_hash)

    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        self._check_open()
        return self._files.depths(hashes)

    async def content_usage(self) -> ContentUsage:
        self._check_open()
        return self._files.usage()

    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        self._check_open()
        return self._files.journal(thread_id, unfinished)

    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        self._check_open()
        self._files.finish(thread_id, operation_id)


def _entry_of(log: Sequence[RecordedDelta]) -> _Entry:
    """A thread's head and messages folded from its whole log."""
    entry = _Entry(fold_head(r.delta for r in log), log=list(log))
    for record in log:
        if isinstance(record.delta, MessageDelta):
            entry.messages.append(record.delta.message)
        elif isinstance(record.delta, TruncateDelta):
            del entry.messages[record.delta.from_index :]
    return entry


# (thread, model, UTC day, token counts of an unpriced message or None)
_UsageKey = tuple[str, str | None, int, tuple[int, int, int, int] | None]


@dataclass
class _UsageSums:
    messages: int = 0
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    cost_usd: float = 0.0


def _add_usage(
    groups: dict[_UsageKey, _UsageSums], thread_id: str, timestamp: int, usage: Usage
) -> None:
    """Count one message's usage in its :class:`UsageGroup` (see the contract)."""
    tokens = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    )
    # Unpriced messages group only with ones of the same size.
    size = tokens if usage.cost_usd is None else None
    sums = groups.setdefault((thread_id, usage.model, timestamp // 86_400_000, size), _UsageSums())
    sums.messages += 1
    sums.tokens = [a + b for a, b in zip(sums.tokens, tokens, strict=True)]
    sums.cost_usd += usage.cost_usd or 0.0
