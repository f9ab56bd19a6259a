"""In-memory recorder: the fastest backend and the fake unit tests use.

It keeps nothing across processes; it passes the same contract suite as the
durable backends. An append is planned by :mod:`threadline.planner` and the
plan is executed into dictionaries (the derived rows of each thread, the
change feed), as the other backends execute it into tables; nothing is worked
out again at query time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from threadline import planner
from threadline.deltas import Delta
from threadline.errors import (
    StoreClosed,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.ids import now_ms
from threadline.model import ArchivedThread, LifecycleOp, Message, Thread, ThreadHead
from threadline.planner import AppendPlan, DerivedRows, LinkRow, MessageRow, ThreadRows, UsageRow
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
from threadline.recorders.memory_files import MemoryFileMethods
from threadline.search import SearchDocument, SearchHit, bm25_rank, parse_query

_T = TypeVar("_T")


@dataclass
class _Entry:
    """One thread: its log and the derived rows its plans gave it."""

    head: ThreadHead
    log: list[RecordedDelta] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)  # by position
    usage: list[UsageRow] = field(default_factory=list)
    links: list[LinkRow] = field(default_factory=list)


class _MemoryLease(WriterLease):
    def __init__(self, held: set[str], thread_id: str) -> None:
        self._held = held
        self.thread_id = thread_id

    def release(self) -> None:
        self._held.discard(self.thread_id)


class MemoryRecorder(MemoryFileMethods, ThreadRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._threads: dict[str, _Entry] = {}
        self._leases: set[str] = set()
        self._closed = False
        self._archived: dict[str, ArchivedThread] = {}
        self._lifecycle: dict[str, LifecycleOp] = {}
        # The change feed: each thread's newest change, in cursor order.
        self._feed: OrderedDict[str, Change] = OrderedDict()
        self._feed_seq = 0

    @property
    def location(self) -> str:
        return ":memory:"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    # -- writes: plan, then execute ---------------------------------------------

    def _plan(
        self, append: Append, heads: dict[str, ThreadHead | None] | None = None
    ) -> AppendPlan:
        """The plan of ``append`` onto the current head (or onto ``heads``, the
        heads earlier plans of one batch leave)."""
        thread_id, expected, deltas = append
        if heads is not None and thread_id in heads:
            head = heads[thread_id]
        else:
            entry = self._threads.get(thread_id)
            head = None if entry is None else entry.head
        archived = head is None and thread_id in self._archived
        return planner.plan(
            thread_id, head, expected, deltas, at=now_ms(), archived=archived, serialize=False
        )

    def _execute(self, plan: AppendPlan) -> ThreadHead:
        thread_id = plan.thread_id
        entry = self._threads.get(thread_id) if not plan.created else None
        if entry is None:
            entry = self._threads[thread_id] = _Entry(plan.head)
        if plan.cut is not None:
            del entry.messages[plan.cut :]
        entry.messages.extend(plan.messages)
        for row in plan.amended:
            entry.messages[row.pos] = row
        if plan.usage:  # keyed by message id: a message logged again replaces its row
            again = {u.message_id for u in plan.usage}
            entry.usage[:] = [u for u in entry.usage if u.message_id not in again]
            entry.usage.extend(plan.usage)
        entry.links.extend(link for link in plan.links if link not in entry.links)
        entry.log.extend(
            RecordedDelta(thread_id, v, plan.at, delta)
            for v, delta in zip(plan.versions, plan.deltas, strict=True)
        )
        entry.head = plan.head
        feed = plan.feed
        self._publish(thread_id, feed.v, deleted=feed.deleted, at=feed.at)
        return plan.head

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        self._check_open()
        return self._execute(self._plan((thread_id, expected_version, deltas)))

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        self._check_open()
        # Every plan before any execution: all or nothing.
        heads: dict[str, ThreadHead | None] = {}
        plans: list[AppendPlan] = []
        for append in appends:
            plans.append(self._plan(append, heads))
            heads[append[0]] = plans[-1].head
        return [self._execute(plan) for plan in plans]

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        self._check_open()
        results: list[ThreadHead | ThreadlineError] = []
        for append in appends:
            try:
                results.append(self._execute(self._plan(append)))
            except ThreadlineError as exc:
                results.append(exc)
        return results

    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is not None and version is not None and entry.head.v != version:
            raise VersionConflict(thread_id, version, entry.head.v)
        return self._delete_published(thread_id)

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        self._check_open()
        return [self._delete_published(thread_id) for thread_id in thread_ids]

    def _delete_published(self, thread_id: str) -> bool:
        """Delete a thread and its file log, leaving a tombstone in the feed."""
        entry = self._threads.pop(thread_id, None)
        if entry is None:
            return False
        self._files.forget(thread_id)
        self._publish(thread_id, entry.head.v, deleted=True, at=now_ms())
        return True

    def _publish(self, thread_id: str, v: int, *, deleted: bool, at: int) -> None:
        self._feed_seq += 1
        self._feed.pop(thread_id, None)
        self._feed[thread_id] = Change(self._feed_seq, thread_id, v, deleted, at)

    # -- reads ------------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        return None if entry is None else entry.head

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        self._check_open()
        return {i: self._threads[i].head for i in thread_ids if i in self._threads}

    async def load(self, thread_id: str) -> Thread | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        fields = entry.head.model_dump(exclude={"message_count", "last_activity", "totals"})
        return Thread.model_construct(**fields, messages=tuple(m.message for m in entry.messages))

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        found: dict[str, Thread] = {}
        for thread_id in thread_ids:
            thread = await self.load(thread_id)
            if thread is not None:
                found[thread_id] = thread
        return found

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        count = len(entry.messages)
        end = max(0, (count if before is None else min(before, count)) - offset)
        return entry.head, [m.message for m in entry.messages[max(0, end - limit) : end]]

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return []
        return [r for r in entry.log[max(after, 0) :] if upto is None or r.v <= upto]

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        self._check_open()
        return _page_of([e.head for e in self._threads.values()], lambda h: h, limit, after)

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        self._check_open()
        found: list[Change] = []
        for change in reversed(self._feed.values()):  # newest first: stop at the cursor
            if change.cursor <= cursor:
                break
            found.append(change)
        found.reverse()
        return found[:limit]

    def acquire_lease(self, thread_id: str) -> WriterLease:
        self._check_open()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        self._leases.add(thread_id)
        return _MemoryLease(self._leases, thread_id)

    async def close(self) -> None:
        self._closed = True

    # -- relationships and costs: from the links and usage rows ---------------------

    def _walk(self, thread_id: str, *, down: bool) -> LinkGraph:
        by_end: dict[str, list[ThreadLink]] = {}
        for entry in self._threads.values():
            for row in entry.links:
                link = ThreadLink(row.parent_id, row.child_id, row.kind)
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
        links = tuple(dict.fromkeys(reached))
        archived = frozenset(seen & self._archived.keys())
        deleted = frozenset(
            i
            for i in seen - heads.keys() - archived
            if (tomb := self._feed.get(i)) is not None and tomb.deleted
        )
        return LinkGraph(links, heads, archived, deleted)

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
        groups: dict[tuple[str, str | None, int], list[UsageRow]] = {}
        for thread_id in sorted(scope & self._threads.keys()):
            for u in self._threads[thread_id].usage:
                groups.setdefault((thread_id, u.model, u.day), []).append(u)
        return [
            _usage_group(thread_id, model, day, rows)
            for (thread_id, model, day), rows in groups.items()
        ]

    async def reprice_usage(
        self, price: Callable[[UsageRow], UsageRow], *, never_priced: bool = False
    ) -> int:
        self._check_open()
        changed = 0
        for entry in self._threads.values():
            for i, row in enumerate(entry.usage):
                if never_priced and not (
                    row.cost_usd is None and row.price_version is None and row.model
                ):
                    continue
                new = price(row)
                if new != row:
                    entry.usage[i] = new
                    changed += 1
        return changed

    # -- search: BM25 over the documents the plans gave ------------------------------

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
                ((thread_id, m.message.id), SearchDocument((m.content, m.tools)))
                for m in entry.messages
            )
        hits = [
            document.hit(
                terms,
                thread_id=thread_id,
                message_id=message_id,
                score=score,
                thread_title=self._threads[thread_id].head.title,
            )
            for score, (thread_id, message_id), document in bm25_rank(documents, terms)[:limit]
        ]
        return hits

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
        plans: list[tuple[AppendPlan, Sequence[RecordedDelta]]] = []
        for log in logs:  # check and plan everything before changing anything
            thread_id = whole_log_thread_id(log)
            if thread_id in self._threads:
                raise ThreadExists(thread_id)
            archived = self._archived.get(thread_id)
            if archived is None:
                raise ThreadNotFound(thread_id)
            if archived.object.v != len(log):
                raise VersionConflict(thread_id, archived.object.v, len(log))
            deltas = [r.delta for r in log]
            plans.append(
                (planner.plan(thread_id, None, 0, deltas, at=now_ms(), serialize=False), log)
            )
        heads: list[ThreadHead] = []
        for plan, log in plans:
            del self._archived[plan.thread_id]
            heads.append(self._execute(plan))
            self._threads[plan.thread_id].log = list(log)  # the original commit times
        self._lifecycle[op.id] = op
        return heads

    async def archived(self, thread_id: str) -> ArchivedThread | None:
        self._check_open()
        return self._archived.get(thread_id)

    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        self._check_open()
        return _page_of(list(self._archived.values()), lambda e: e.head, limit, after)

    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        self._check_open()
        entry = self._threads.get(thread_id)
        if entry is None:
            return None
        plan = planner.plan(thread_id, None, 0, [r.delta for r in entry.log], at=0, serialize=False)
        rebuilt = _Entry(plan.head, entry.log, list(plan.messages), list(plan.usage))
        rebuilt.links = list(plan.links)
        self._threads[thread_id] = rebuilt
        return plan.head

    # -- inspection -------------------------------------------------------------

    async def derived_rows(self) -> DerivedRows:
        """Every derived row, in the form all backends report (for tests)."""
        self._check_open()
        threads = {
            thread_id: ThreadRows(
                head=entry.head,
                positions=tuple((m.pos, m.v) for m in entry.messages),
                usage=tuple(entry.usage),
                links=frozenset(entry.links),
                documents=tuple((m.v, m.tokens()) for m in sorted(entry.messages, key=_v)),
                title_tokens=planner.title_tokens(entry.head.title),
            )
            for thread_id, entry in self._threads.items()
        }
        feed = tuple((c.thread_id, c.v, c.deleted) for c in self._feed.values())
        return DerivedRows(threads, feed)

    def _version(self, thread_id: str) -> int:
        """The thread's version (for the file log's methods)."""
        entry = self._threads.get(thread_id)
        if entry is None:
            raise ThreadNotFound(thread_id)
        return entry.head.v


def _v(row: MessageRow) -> int:
    return row.v


def _page_of(
    items: list[_T], head_of: Callable[[_T], ThreadHead], limit: int, after: tuple[int, str] | None
) -> list[_T]:
    """``items`` newest activity first, after the ``(last_activity, id)`` cursor."""

    def key(item: _T) -> tuple[int, str]:
        head = head_of(item)
        return (head.last_activity, head.id)

    ordered = sorted(items, key=key, reverse=True)
    if after is not None:
        ordered = [i for i in ordered if key(i) < after]
    return ordered[:limit]


def _usage_group(thread_id: str, model: str | None, day: int, rows: list[UsageRow]) -> UsageGroup:
    costs = [u.cost_usd for u in rows if u.cost_usd is not None]
    return UsageGroup(
        thread_id=thread_id,
        model=model,
        day=day,
        messages=len(rows),
        input_tokens=sum(u.input_tokens for u in rows),
        output_tokens=sum(u.output_tokens for u in rows),
        cache_read_tokens=sum(u.cache_read_tokens for u in rows),
        cache_write_tokens=sum(u.cache_write_tokens for u in rows),
        cost_usd=sum(costs) if costs else None,
        cache_write_1h_tokens=sum(u.cache_write_1h_tokens for u in rows),
        reported_messages=sum(u.cost_source == "reported" for u in rows),
        computed_messages=sum(u.cost_source == "computed" for u in rows),
        computed_cost_usd=sum(u.cost_usd or 0.0 for u in rows if u.cost_source == "computed"),
    )
