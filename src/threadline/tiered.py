"""TieredStore: memory → local → remote, with a persistence policy per thread kind.

A :class:`TieredStore` is a full backend, a
:class:`~threadline.recorders.base.ThreadRecorder` with every storage role (so
``ThreadStore(TieredStore(...))`` works and it passes every role's contract
suite), over three tiers (the archive ledger and the file log, served by one
tier, are in :mod:`threadline.tiered_roles`):

- **memory**: whole threads, kept ``memory_ttl`` seconds after their last use
  (read or write) and evicted least recently used first once the tier holds
  more than ``max_entries`` threads or ``max_bytes`` (estimated) bytes. For a
  kind whose policy has ``local`` off (sub-agent threads by default) memory is
  the only copy: such a thread is gone once it expires or is evicted, and it
  is evicted only after every cached copy of a local thread.
- **local**: a :class:`~threadline.recorders.sync_state.LocalRecorder` (the
  SQLite recorder). A write is acknowledged once it is committed here.
- **remote**: a :class:`~threadline.sync.client.RemoteRecorder`, reached
  through the :class:`~threadline.sync.service.SyncService` queue (eventually
  consistent) and for reads that miss both tiers above.

Reads go memory, then local, then remote, and a hit in a lower tier fills the
tiers above it (as its kind's policy allows). A cached thread is served only
if its version is still the local head's (one indexed row read), so a write
to the same database by another process is never hidden. Listings, search,
costs and relationships cover memory and local (remote threads arrive locally
through the sync's pull); the change feed is the local one (memory-only
threads are not in it); archiving, restoring and file tracking work on local
threads (file tracking also on memory-only ones).

The default policies (:data:`DEFAULT_POLICIES`, documented in docs/sync.md):

========== ============== ===== ============================================
kind       memory         local remote
========== ============== ===== ============================================
sub-agent  60 s (only)    no    no
summary    1 h            yes   yes, low priority, always compressed
main       5 min          yes   yes, high priority, with its version history
========== ============== ===== ============================================
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from threadline.deltas import Delta, MessageDelta, ThreadCreate, fold
from threadline.errors import ThreadExists, ThreadlineError
from threadline.events import EventBus
from threadline.ids import now_ms
from threadline.model import Message, Thread, ThreadHead
from threadline.planner import UsageRow
from threadline.recorders.base import (
    Append,
    Change,
    LinkGraph,
    RecordedDelta,
    ThreadLink,
    ThreadRecorder,
    UsageGroup,
    WriterLease,
)
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.sync_state import (
    LocalRecorder,
    PulledThread,
    SyncState,
    ThreadKind,
    thread_kind,
)
from threadline.relations import note_held_back
from threadline.search import SearchHit
from threadline.sync.client import RemoteRecorder
from threadline.sync.service import DEFAULT_REMOTE, RemoteSync, SyncService, SyncSettings
from threadline.tiered_roles import TieredArchiveLedger, TieredFileLog

__all__ = [
    "DEFAULT_POLICIES",
    "MemoryLimits",
    "PersistencePolicy",
    "TierStats",
    "TieredStore",
]


@dataclass(frozen=True)
class PersistencePolicy:
    """Where the threads of one kind live: in memory for ``memory_ttl`` seconds
    after their last use (``None``: not kept in memory), in the local store
    (``local``), and on the server (``remote``: how, or ``None`` for never).
    A thread must live somewhere, and only local threads can sync."""

    memory_ttl: float | None
    local: bool
    remote: RemoteSync | None

    def __post_init__(self) -> None:
        if not self.local and self.memory_ttl is None:
            raise ValueError("A policy must keep threads in memory or locally (or both)")
        if self.remote is not None and not self.local:
            raise ValueError("Only threads kept locally can sync: set local=True to sync them")
        if self.memory_ttl is not None and self.memory_ttl <= 0:
            raise ValueError("memory_ttl must be positive (or None)")


DEFAULT_POLICIES: Mapping[ThreadKind, PersistencePolicy] = {
    "subagent": PersistencePolicy(memory_ttl=60.0, local=False, remote=None),
    "summary": PersistencePolicy(memory_ttl=3600.0, local=True, remote=DEFAULT_REMOTE["summary"]),
    "main": PersistencePolicy(memory_ttl=300.0, local=True, remote=DEFAULT_REMOTE["main"]),
}
"""The spec's persistence strategy (see the module docstring's table)."""


def sync_kinds(
    policies: Mapping[ThreadKind, PersistencePolicy],
) -> dict[ThreadKind, RemoteSync | None]:
    """How the locally stored threads of each kind sync: as their policy says;
    for a kind whose policy keeps it out of the local store (live sub-agents,
    memory only), the threads of it found there anyway were written there
    directly (an imported session: history), and sync as
    :data:`~threadline.sync.service.DEFAULT_REMOTE` says (with their root)."""
    return {
        kind: policy.remote if policy.local else DEFAULT_REMOTE[kind]
        for kind, policy in policies.items()
    }


_EXPIRED_KEPT = 100_000  # expired memory-only ids remembered (their links say "held back")


@dataclass(frozen=True)
class MemoryLimits:
    """Bounds of the memory tier: threads held, and their estimated size."""

    max_entries: int = 1000
    max_bytes: int = 64 * 1024 * 1024


@dataclass
class TierStats:
    """Where whole-thread reads (``load``, ``page``) were served from, and how
    many threads the memory tier evicted (``lost``: memory-only ones)."""

    memory_hits: int = 0
    local_hits: int = 0
    remote_hits: int = 0
    misses: int = 0
    evicted: int = 0
    lost: int = 0


def message_size(message: Message) -> int:
    """About the bytes a message takes in memory: its text and tool payloads."""
    size = 160 + len(message.content)
    for call in message.tool_calls:
        size += len(call.name) + len(orjson.dumps(call.input))
    for result in message.tool_results:
        size += len(orjson.dumps(result.output))
    return size


def thread_size(thread: Thread) -> int:
    return 512 + sum(message_size(m) for m in thread.messages)


def _deltas_size(deltas: Sequence[Delta]) -> int:
    return sum(message_size(d.message) if isinstance(d, MessageDelta) else 64 for d in deltas)


@dataclass
class _Slot:
    thread: Thread | None  # None: a memory-only thread, held by the ephemeral recorder
    size: int
    ttl: float
    expires: float


class MemoryTier:
    """TTL + LRU accounting of the memory tier (see the module docstring)."""

    def __init__(self, limits: MemoryLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._slots

    def cached(self, thread_id: str) -> Thread | None:
        """The cached copy of a local thread, if it has not expired (touches it)."""
        slot = self._slots.get(thread_id)
        if slot is None or slot.thread is None:
            return None
        now = self._clock()
        if slot.expires <= now:
            self.drop(thread_id)
            return None
        self._touch(thread_id, slot, now)
        return slot.thread

    def peek(self, thread_id: str) -> Thread | None:
        slot = self._slots.get(thread_id)
        return None if slot is None else slot.thread

    def put(self, thread_id: str, thread: Thread | None, ttl: float, size: int) -> None:
        """Keep ``thread`` (``None``: account for a memory-only thread of ``size``)."""
        self.drop(thread_id)
        slot = _Slot(thread, size, ttl, self._clock() + ttl)
        self._slots[thread_id] = slot
        self.bytes += size

    def grow(self, thread_id: str, size: int) -> None:
        """A memory-only thread grew by ``size`` and was just used."""
        slot = self._slots.get(thread_id)
        if slot is not None:
            slot.size += size
            self.bytes += size
            self._touch(thread_id, slot, self._clock())

    def touch(self, thread_id: str) -> None:
        slot = self._slots.get(thread_id)
        if slot is not None:
            self._touch(thread_id, slot, self._clock())

    def _touch(self, thread_id: str, slot: _Slot, now: float) -> None:
        slot.expires = now + slot.ttl
        self._slots.move_to_end(thread_id)

    def drop(self, thread_id: str) -> None:
        slot = self._slots.pop(thread_id, None)
        if slot is not None:
            self.bytes -= slot.size

    def collect(self) -> tuple[list[str], list[str]]:
        """Evict what expired, then the least recently used until within the
        limits (cached copies before memory-only threads). Returns the ids of
        the cached copies and of the memory-only threads evicted."""
        now = self._clock()
        cached: list[str] = []
        only: list[str] = []
        for thread_id, slot in list(self._slots.items()):
            if slot.expires <= now:
                self.drop(thread_id)
                (only if slot.thread is None else cached).append(thread_id)
        for memory_only in (False, True):
            for thread_id, slot in list(self._slots.items()):
                if not self._over():
                    break
                if (slot.thread is None) == memory_only:
                    self.drop(thread_id)
                    (only if memory_only else cached).append(thread_id)
        return cached, only

    def _over(self) -> bool:
        return len(self._slots) > self.limits.max_entries or self.bytes > self.limits.max_bytes


class TieredStore(TieredArchiveLedger, TieredFileLog, ThreadRecorder):
    """Threads in memory, a local store and a server; see the module docstring.

    ``remote`` enables sync: :attr:`sync` is then the
    :class:`~threadline.sync.service.SyncService` (start its loop with
    :meth:`start_sync`). ``clock`` (seconds) times the memory tier; the
    ``sync_*`` arguments go to the sync service.
    """

    def __init__(
        self,
        local: LocalRecorder,
        *,
        remote: RemoteRecorder | None = None,
        policies: Mapping[ThreadKind, PersistencePolicy] = DEFAULT_POLICIES,
        memory: MemoryLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sync_settings: SyncSettings | None = None,
        sync_clock: Callable[[], int] = now_ms,
        sync_rng: random.Random | None = None,
    ) -> None:
        missing = {"main", "summary", "subagent"} - set(policies)
        if missing:
            raise ValueError(f"No persistence policy for {', '.join(sorted(missing))} threads")
        self.local = local
        self.remote = remote
        self.policies = dict(policies)
        self.memory = MemoryTier(memory or MemoryLimits(), clock)
        self.stats = TierStats()
        self._ephemeral = MemoryRecorder()
        self._ephemeral_ids: set[str] = set()
        # Memory-only threads that expired (not deleted by a user): held back.
        self._expired: set[str] = set()
        self._ephemeral_used = False  # its tombstones tell deleted from expired
        self.events = EventBus()
        """What the sync changed here (pulled, merged, deleted), as the events a
        local change raises; a :class:`~threadline.store.ThreadStore` over this
        store re-emits them on its own bus."""
        self.sync: SyncService | None = None
        if remote is not None:
            self.sync = SyncService(
                local,
                remote,
                kinds=sync_kinds(self.policies),
                settings=sync_settings,
                rng=sync_rng,
                clock=sync_clock,
                on_local_change=self.memory.drop,
                on_event=self.events.emit,
            )

    @classmethod
    async def open(
        cls,
        path: str | Path | None = None,
        *,
        remote_url: str | None = None,
        token: str | None = None,
        policies: Mapping[ThreadKind, PersistencePolicy] | None = None,
        memory: MemoryLimits | None = None,
        sync_settings: SyncSettings | None = None,
        start_sync: bool = True,
    ) -> TieredStore:
        """A tiered store over the SQLite file ``path`` (default: the store under
        ``$THREADLINE_HOME``) and, with ``remote_url`` and ``token``, the sync
        server there, whose sync loop is started unless ``start_sync`` is false.
        ``policies`` default to :data:`DEFAULT_POLICIES` with the sub-agent
        policy of ``$THREADLINE_HOME/sync.toml`` if it sets one."""
        import asyncio

        from threadline.recorders.sqlite import SqliteRecorder
        from threadline.store import default_db_path
        from threadline.sync.status import SyncConfig

        if policies is None:
            policies = SyncConfig.resolve().policies()

        local = await asyncio.to_thread(SqliteRecorder, path or default_db_path())
        remote = None
        if remote_url is not None:
            if token is None:
                raise ValueError("A remote needs a token (threadline token create)")
            remote = RemoteRecorder(remote_url, token)
        store = cls(
            local, remote=remote, policies=policies, memory=memory, sync_settings=sync_settings
        )
        if start_sync:
            store.start_sync()
        return store

    def start_sync(self) -> None:
        """Start the background sync loop (a no-op without a remote)."""
        if self.sync is not None:
            self.sync.start()

    async def sync_states(self, thread_ids: Sequence[str] | None = None) -> dict[str, SyncState]:
        """The sync state of local threads (see :class:`SyncState`)."""
        return await self.local.sync_states(thread_ids)

    @property
    def location(self) -> str:
        return self.local.location

    # -- tiers ------------------------------------------------------------------------

    def policy_of(self, kind: ThreadKind) -> PersistencePolicy:
        return self.policies[kind]

    def _is_ephemeral(self, thread_id: str) -> bool:
        return thread_id in self._ephemeral_ids

    async def _collect(self) -> None:
        cached, only = self.memory.collect()
        self.stats.evicted += len(cached) + len(only)
        for thread_id in only:
            self._ephemeral_ids.discard(thread_id)
            await note_held_back(self._ephemeral, self, thread_id)
            await self._ephemeral.delete(thread_id)
            self.stats.lost += 1
            if len(self._expired) >= _EXPIRED_KEPT:
                self._expired.clear()
            self._expired.add(thread_id)

    def _ephemeral_create(self, thread_id: str, expected: int, deltas: Sequence[Delta]) -> bool:
        """Whether this append creates a memory-only thread."""
        if expected != 0 or not deltas or not isinstance(deltas[0], ThreadCreate):
            return False
        return not self.policies[thread_kind(deltas[0])].local

    async def _check_free(self, thread_id: str) -> None:
        """Refuse a memory-only create whose id a local thread has."""
        if await self.local.head(thread_id) is not None:
            raise ThreadExists(thread_id)
        if await self.local.archived(thread_id) is not None:
            raise ThreadExists(thread_id)

    def _cache(self, thread: Thread) -> None:
        ttl = self.policies[thread_kind(thread)].memory_ttl
        if ttl is not None:
            self.memory.put(thread.id, thread, ttl, thread_size(thread))

    def _after_local_append(self, thread_id: str, expected: int, deltas: Sequence[Delta]) -> None:
        """Keep a cached copy in step with a local append (or drop it)."""
        if expected == 0:
            self._cache(fold(deltas))
            return
        cached = self.memory.peek(thread_id)
        if cached is not None and cached.v == expected:
            self._cache(fold(deltas, cached))
        else:
            self.memory.drop(thread_id)

    def _track_ephemeral(self, thread_id: str, deltas: Sequence[Delta], created: bool) -> None:
        if created:
            self._ephemeral_ids.add(thread_id)
            self._ephemeral_used = True
            create = deltas[0]
            assert isinstance(create, ThreadCreate)
            ttl = self.policies[thread_kind(create)].memory_ttl
            assert ttl is not None
            self.memory.put(thread_id, None, ttl, _deltas_size(deltas))
        else:
            self.memory.grow(thread_id, _deltas_size(deltas))

    async def _pull_through(self, thread_id: str) -> bool:
        """A read missed memory and local: fetch the thread from the server into
        the tiers its kind uses. ``False`` if the server does not have it."""
        if self.remote is None or await self.local.archived(thread_id) is not None:
            return False
        records = await self.remote.deltas(thread_id)
        if not records or not isinstance(records[0].delta, ThreadCreate):
            return False
        deltas = [r.delta for r in records]
        policy = self.policies[thread_kind(records[0].delta)]
        if policy.local:
            pulled = PulledThread(thread_id, base=0, deltas=deltas, remote_v=records[-1].v)
            await self.local.record_pull(self.remote.location, None, [pulled])
        else:
            await self._ephemeral.append(thread_id, 0, deltas)
            self._track_ephemeral(thread_id, deltas, created=True)
        self.stats.remote_hits += 1
        return True

    # -- writes -----------------------------------------------------------------------

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        await self._collect()
        if self._ephemeral_create(thread_id, expected_version, deltas):
            await self._check_free(thread_id)
            head = await self._ephemeral.append(thread_id, expected_version, deltas)
            self._track_ephemeral(thread_id, deltas, created=True)
            await self._collect()
            return head
        if self._is_ephemeral(thread_id):
            if expected_version == 0:
                raise ThreadExists(thread_id)
            head = await self._ephemeral.append(thread_id, expected_version, deltas)
            self._track_ephemeral(thread_id, deltas, created=False)
            await self._collect()
            return head
        head = await self.local.append(thread_id, expected_version, deltas)
        self._after_local_append(thread_id, expected_version, deltas)
        await self._collect()
        return head

    def _route(self, appends: Sequence[Append]) -> list[bool]:
        """Which appends go to the memory-only tier, in order (a later append may
        extend a thread an earlier one creates)."""
        created: set[str] = set()
        routes: list[bool] = []
        for thread_id, expected, deltas in appends:
            if self._ephemeral_create(thread_id, expected, deltas):
                created.add(thread_id)
                routes.append(True)
            else:
                routes.append(self._is_ephemeral(thread_id) or thread_id in created)
        return routes

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        await self._collect()
        routes = self._route(appends)
        mine = [a for a, eph in zip(appends, routes, strict=True) if eph]
        theirs = [a for a, eph in zip(appends, routes, strict=True) if not eph]
        for thread_id, expected, _ in theirs:
            if expected == 0 and self._is_ephemeral(thread_id):
                raise ThreadExists(thread_id)
        for thread_id, expected, deltas in mine:
            if self._ephemeral_create(thread_id, expected, deltas):
                await self._check_free(thread_id)
        # The memory-only part first (all or nothing on its own); undone if the
        # local part fails, so that the whole is all or nothing.
        saved = {t: await self._ephemeral.deltas(t) for t in dict.fromkeys(a[0] for a in mine)}
        ephemeral_heads = await self._ephemeral.append_many(mine) if mine else []
        try:
            local_heads = await self.local.append_many(theirs) if theirs else []
        except BaseException:
            for thread_id, log in saved.items():
                await self._ephemeral.delete(thread_id)
                if log:
                    await self._ephemeral.append(thread_id, 0, [r.delta for r in log])
            raise
        for thread_id, expected, deltas in mine:
            self._track_ephemeral(thread_id, deltas, created=expected == 0)
        for thread_id, expected, deltas in theirs:
            self._after_local_append(thread_id, expected, deltas)
        heads = _interleave(routes, ephemeral_heads, local_heads)
        await self._collect()
        return heads

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        await self._collect()
        routes = self._route(appends)
        mine: list[Append] = []
        theirs: list[Append] = []
        refused: dict[int, ThreadlineError] = {}
        for index, (append, eph) in enumerate(zip(appends, routes, strict=True)):
            thread_id, expected, deltas = append
            if eph and self._ephemeral_create(thread_id, expected, deltas):
                try:
                    await self._check_free(thread_id)
                except ThreadExists as exc:
                    refused[index] = exc
                    continue
            if not eph and expected == 0 and self._is_ephemeral(thread_id):
                refused[index] = ThreadExists(thread_id)
                continue
            (mine if eph else theirs).append(append)
        ephemeral_results = await self._ephemeral.append_each(mine) if mine else []
        local_results = await self.local.append_each(theirs) if theirs else []
        for (thread_id, expected, deltas), result in zip(mine, ephemeral_results, strict=True):
            if isinstance(result, ThreadHead):
                self._track_ephemeral(thread_id, deltas, created=expected == 0)
        for (thread_id, expected, deltas), result in zip(theirs, local_results, strict=True):
            if isinstance(result, ThreadHead):
                self._after_local_append(thread_id, expected, deltas)
            else:
                self.memory.drop(thread_id)
        mine_it, theirs_it = iter(ephemeral_results), iter(local_results)
        results: list[ThreadHead | ThreadlineError] = []
        for index, eph in enumerate(routes):
            if index in refused:
                results.append(refused[index])
            else:
                results.append(next(mine_it) if eph else next(theirs_it))
        await self._collect()
        return results

    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        if self._is_ephemeral(thread_id):
            found = await self._ephemeral.delete(thread_id, version=version)
            self._ephemeral_ids.discard(thread_id)
            self.memory.drop(thread_id)
            return found
        self.memory.drop(thread_id)
        return await self.local.delete(thread_id, version=version)

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        results: list[bool] = []
        local_ids = [t for t in thread_ids if not self._is_ephemeral(t)]
        local_results = iter(await self.local.delete_many(local_ids) if local_ids else [])
        for thread_id in thread_ids:
            self.memory.drop(thread_id)
            if self._is_ephemeral(thread_id):
                self._ephemeral_ids.discard(thread_id)
                results.append(await self._ephemeral.delete(thread_id))
            else:
                results.append(next(local_results))
        return results

    # -- reads ------------------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        await self._collect()
        if self._is_ephemeral(thread_id):
            self.memory.touch(thread_id)
            return await self._ephemeral.head(thread_id)
        head = await self.local.head(thread_id)
        if head is None and await self._pull_through(thread_id):
            return await self.head(thread_id)
        return head

    async def _whole(self, thread_id: str) -> tuple[ThreadHead, Thread | None] | None:
        """A local thread's head and, if its kind uses memory, the whole thread
        from memory or (filling memory) from the local tier."""
        head = await self.local.head(thread_id)
        if head is None:
            return None
        cached = self.memory.cached(thread_id)
        if cached is not None and cached.v == head.v:
            self.stats.memory_hits += 1
            return head, cached
        if self.policies[thread_kind(head)].memory_ttl is None:
            return head, None
        thread = await self.local.load(thread_id)
        if thread is None:
            return None
        self.stats.local_hits += 1
        self._cache(thread)
        await self._collect()
        if thread.v != head.v:  # written meanwhile: the newer head
            head = await self.local.head(thread_id) or head
        return head, thread

    async def load(self, thread_id: str) -> Thread | None:
        await self._collect()
        if self._is_ephemeral(thread_id):
            self.memory.touch(thread_id)
            self.stats.memory_hits += 1
            return await self._ephemeral.load(thread_id)
        found = await self._whole(thread_id)
        if found is None:
            if await self._pull_through(thread_id):
                return await self.load(thread_id)
            self.stats.misses += 1
            return None
        head, thread = found
        if thread is not None and thread.v == head.v:
            return thread
        self.stats.local_hits += 1
        return await self.local.load(thread_id)

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        await self._collect()
        if self._is_ephemeral(thread_id):
            self.memory.touch(thread_id)
            self.stats.memory_hits += 1
            return await self._ephemeral.page(thread_id, limit=limit, offset=offset, before=before)
        found = await self._whole(thread_id)
        if found is None:
            if await self._pull_through(thread_id):
                return await self.page(thread_id, limit=limit, offset=offset, before=before)
            self.stats.misses += 1
            return None
        head, thread = found
        if thread is None or thread.v != head.v:
            self.stats.local_hits += 1
            return await self.local.page(thread_id, limit=limit, offset=offset, before=before)
        count = len(thread.messages)
        end = max(0, (count if before is None else min(before, count)) - offset)
        return head, list(thread.messages[max(0, end - limit) : end])

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        if self._is_ephemeral(thread_id):
            self.memory.touch(thread_id)
            return await self._ephemeral.deltas(thread_id, after=after, upto=upto)
        found = await self.local.deltas(thread_id, after=after, upto=upto)
        if found or await self.local.head(thread_id) is not None:
            return found
        if await self._pull_through(thread_id):
            return await self.deltas(thread_id, after=after, upto=upto)
        return []

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        await self._collect()
        heads = await self.local.list_heads(limit=limit, after=after)
        if not self._ephemeral_ids:
            return heads
        heads += await self._ephemeral.list_heads(limit=limit, after=after)
        heads.sort(key=lambda h: (h.last_activity, h.id), reverse=True)
        return heads[:limit]

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        mine = [t for t in thread_ids if self._is_ephemeral(t)]
        found = await self._ephemeral.load_many(mine) if mine else {}
        rest = [t for t in thread_ids if not self._is_ephemeral(t)]
        if rest:
            found.update(await self.local.load_many(rest))
        return found

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        mine = [t for t in thread_ids if self._is_ephemeral(t)]
        found = await self._ephemeral.heads_many(mine) if mine else {}
        rest = [t for t in thread_ids if not self._is_ephemeral(t)]
        if rest:
            found.update(await self.local.heads_many(rest))
        return found

    def acquire_lease(self, thread_id: str) -> WriterLease:
        return self.local.acquire_lease(thread_id)

    async def close(self) -> None:
        if self.sync is not None:
            await self.sync.stop()
        if self.remote is not None:
            await self.remote.close()
        await self._ephemeral.close()
        await self.local.close()

    # -- relationships, costs, search: across memory and local ----------------------------

    async def _walk(self, thread_id: str, *, down: bool) -> LinkGraph:
        """Links reachable from ``thread_id`` through both tiers (a link may be
        recorded by a thread in either)."""
        tiers: tuple[ThreadRecorder, ...] = (self.local, self._ephemeral)
        if not self._ephemeral_ids and not self._ephemeral_used:
            tiers = (self.local,)
        links: dict[ThreadLink, None] = {}
        heads: dict[str, ThreadHead] = {}
        archived: set[str] = set()
        deleted: set[str] = set()  # by a user: an expired memory-only thread is not
        expanded: list[set[str]] = [set() for _ in tiers]
        waiting = [thread_id]
        while waiting:
            node = waiting.pop()
            for tier, done in zip(tiers, expanded, strict=True):
                if node in done:
                    continue
                graph = await (tier.subtree(node) if down else tier.ancestry(node))
                reached = {node}
                for link in graph.links:
                    links.setdefault(link)
                    reached.add(link.child_id if down else link.parent_id)
                done |= reached
                heads.update(graph.heads)
                archived |= graph.archived
                deleted |= graph.deleted - self._expired
                waiting += [n for n in reached if any(n not in other for other in expanded)]
        return LinkGraph(
            tuple(links),
            heads,
            frozenset(archived - heads.keys()),
            frozenset(deleted - heads.keys()),
        )

    async def subtree(self, thread_id: str) -> LinkGraph:
        return await self._walk(thread_id, down=True)

    async def ancestry(self, thread_id: str) -> LinkGraph:
        return await self._walk(thread_id, down=False)

    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        if not self._ephemeral_ids:
            return await self.local.usage_rollup(thread_ids, subtrees=subtrees)
        if thread_ids is None:
            return [*await self.local.usage_rollup(), *await self._ephemeral.usage_rollup()]
        scope = dict.fromkeys(thread_ids)
        if subtrees:
            for thread_id in thread_ids:
                graph = await self._walk(thread_id, down=True)
                scope.update(dict.fromkeys(link.child_id for link in graph.links))
        mine = [t for t in scope if self._is_ephemeral(t)]
        rest = [t for t in scope if not self._is_ephemeral(t)]
        groups = await self.local.usage_rollup(rest) if rest else []
        return groups + (await self._ephemeral.usage_rollup(mine) if mine else [])

    async def reprice_usage(
        self, price: Callable[[UsageRow], UsageRow], *, never_priced: bool = False
    ) -> int:
        changed = await self.local.reprice_usage(price, never_priced=never_priced)
        return changed + await self._ephemeral.reprice_usage(price, never_priced=never_priced)

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        hits = await self.local.search(query, limit=limit)
        if not self._ephemeral_ids:
            return hits
        hits += await self._ephemeral.search(query, limit=limit)
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:limit]

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        """The local store's change feed (memory-only threads are not in it)."""
        return await self.local.changes_since(cursor, limit=limit)


def _interleave(
    routes: Sequence[bool], ephemeral: Sequence[ThreadHead], local: Sequence[ThreadHead]
) -> list[ThreadHead]:
    mine, theirs = iter(ephemeral), iter(local)
    return [next(mine) if eph else next(theirs) for eph in routes]
