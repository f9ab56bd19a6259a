"""SyncService: the client side of sync, between a local recorder and a server.

Each round (:meth:`SyncService.sync_once`; :meth:`SyncService.run` makes one
every ``interval`` seconds, 5 by default):

1. **Pull.** Read the server's change feed from the cursor the local ledger
   keeps. A thread that has nothing pending here gets the server's new deltas
   appended; a thread this replica does not have is fetched whole (if its kind
   syncs); a thread with pending local changes only notes the server's version
   (step 2 merges it); a deleted one is deleted here too unless it has pending
   changes (then it is pushed again whole: nothing acknowledged is lost).
   Each page of the feed is applied, with the cursor after it, in one local
   transaction.
2. **Push.** The ledger's pending threads whose kind syncs
   (:class:`RemoteSync`), high priority first, oldest pending change first
   within a priority, skipping those waiting out a back-off. A thread whose
   server version is known to be past what this replica synced (so also one
   whose server version is already >= its local one) is not pushed blindly:
   it is reconciled first. The rest go in ``POST /v1/sync/batch`` requests of
   up to 50 pushes, each carrying only the deltas after the thread's
   ``synced_v`` (bodies zstd-compressed when large, or always for a
   ``compress`` kind).
3. **Conflicts.** A push answered 409 carries the server's version and the
   deltas this replica lacks. The longest common prefix of those and the
   pending local deltas is dropped (a push whose answer was lost is in already);
   if something remains on both sides the thread is merged
   (:mod:`threadline.merge`, from the common ancestor in the log), the local
   log after the common prefix is replaced by the server's deltas and the
   merge's (:meth:`~threadline.recorders.sync_state.SyncLedger.rebase`), and
   the merge is pushed again in the same round.
4. **Deletes.** A thread deleted here that the server has is deleted there
   only if the server is still at the version this replica had synced when it
   deleted it (``DELETE /v1/threads/{id}?version=``). A delete that did not see
   a later change (an append on another machine) does not win: the server
   keeps the thread, this replica fetches it back whole, and its sync status
   says ``conflict: ...`` until it changes again. Likewise a delete pulled from
   the server is not applied to a thread with local changes the server lacks:
   that thread is kept, pushed again whole, and marked the same way.

Each thread a pull or a merge changes here raises the event a local change
raises (``thread:created``, ``thread:updated``, ``thread:deleted``) through
``on_event``, so observers see replicas change.

Requests are retried at once on retryable errors (network, timeout, 5xx:
:func:`threadline.retry.with_retry`). A thread whose push still fails waits
a back-off (60 s, doubling on each further failure, with jitter, capped at
an hour) while the others go on; its sync status says ``failing: <reason>``
and when it is tried next. A push the server refuses for good (a delta it
cannot take, a message too large) is not retried until the thread changes; a
batch refused whole that way is pushed again one thread at a time, so that
only the culprit waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from threadline.deltas import Delta, ThreadCreate, fold
from threadline.errors import (
    RemoteRefused,
    RemoteUnavailable,
    ThreadlineError,
    VersionConflict,
    is_retryable,
)
from threadline.events import THREAD_CREATED, THREAD_DELETED, THREAD_UPDATED, ThreadEvent
from threadline.ids import now_ms
from threadline.merge import merge_deltas
from threadline.recorders.base import Change
from threadline.recorders.sync_state import (
    PendingDelete,
    PulledThread,
    SyncFailure,
    SyncLedger,
    SyncState,
    SyncUpdate,
    ThreadKind,
    thread_kind,
)
from threadline.retry import with_retry
from threadline.sync import protocol as wire
from threadline.sync.client import RemoteRecorder
from threadline.sync.file_sync import FileSync

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Priority = Literal["high", "low"]


@dataclass(frozen=True)
class RemoteSync:
    """How the threads of one kind go to the server: ``priority`` orders the
    queue, ``compress`` compresses every body that carries them (not only large
    ones)."""

    priority: Priority = "high"
    compress: bool = False


DEFAULT_REMOTE: Mapping[ThreadKind, RemoteSync | None] = {
    "main": RemoteSync(priority="high"),
    "summary": RemoteSync(priority="low", compress=True),
    "subagent": RemoteSync(priority="high"),
}
"""How the threads of each kind *stored locally* go to the server: main threads
high priority, summaries low priority and compressed, sub-agent threads with
their root. A live sub-agent thread of a :class:`~threadline.tiered.TieredStore`
is memory-only by its default policy and never reaches the local store, so
the sub-agent threads found there are history (an imported session's): they
sync with their root, so that every machine shows the same tree."""


@dataclass(frozen=True)
class Backoff:
    """Wait ``base`` seconds after a thread's first failed sync, ``factor`` times
    longer after each further one, at most ``cap``; each wait is varied by up to
    ``jitter`` (a fraction) either way so that failed threads spread out."""

    base: float = 60.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        raw = self.base * self.factor ** max(0, failures - 1)
        return min(self.cap, raw * (1 + rng.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True)
class SyncSettings:
    """``interval``: seconds between rounds of :meth:`SyncService.run`;
    ``batch_size``: pushes per request (the server takes 50 at most);
    ``request_attempts`` / ``request_backoff``: immediate retries of one request
    (seconds before the first retry, doubling); ``pull_page``: feed entries per
    request; ``fetch_concurrency``: threads fetched at once while pulling;
    ``merge_rounds``: how many times a round pushes a thread again after merging."""

    interval: float = 5.0
    batch_size: int = wire.MAX_BATCH
    backoff: Backoff = field(default_factory=Backoff)
    request_attempts: int = 3
    request_backoff: float = 0.5
    pull_page: int = 500
    fetch_concurrency: int = 8
    merge_rounds: int = 3


@dataclass
class SyncReport:
    """What one round did: threads (and deltas) pushed and pulled, threads
    merged, threads that failed (with the reason), threads left waiting out
    a back-off, and why the pull failed, if it did."""

    pushed: int = 0
    deltas_pushed: int = 0
    pulled: int = 0
    deltas_pulled: int = 0
    merged: list[str] = field(default_factory=list)
    files_pushed: int = 0
    files_pulled: int = 0
    deleted: int = 0
    conflicts: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    waiting: int = 0
    pull_error: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the round moved anything in either direction."""
        return bool(
            self.pushed
            or self.pulled
            or self.merged
            or self.deleted
            or self.conflicts
            or self.files_pushed
            or self.files_pulled
        )


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _common_prefix(ours: Sequence[Delta], theirs: Sequence[Delta]) -> int:
    count = 0
    for mine, other in zip(ours, theirs, strict=False):
        if mine != other:
            break
        count += 1
    return count


class SyncService:
    """Syncs ``local`` (a recorder with a sync ledger) with the server behind
    ``remote``; see the module docstring. ``kinds`` says which thread kinds go
    to the server and how (default :data:`DEFAULT_REMOTE`). ``clock`` gives
    the time in ms for back-offs; ``rng`` draws their jitter; ``sleep`` waits
    between immediate retries. ``on_local_change(thread_id)`` is called after
    the service changed a thread locally (a cache above can drop it), then
    ``on_event`` with the event a local change would raise."""

    def __init__(
        self,
        local: SyncLedger,
        remote: RemoteRecorder,
        *,
        kinds: Mapping[ThreadKind, RemoteSync | None] = DEFAULT_REMOTE,
        settings: SyncSettings | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_local_change: Callable[[str], None] | None = None,
        on_event: Callable[[ThreadEvent], None] | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self._kinds = dict(kinds)
        self.settings = settings or SyncSettings()
        if not 1 <= self.settings.batch_size <= wire.MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {wire.MAX_BATCH}")
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._on_local_change = on_local_change
        self._on_event = on_event
        self._files = FileSync(local, remote, self._request)
        self._applied: list[str] = []
        self._round = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pull_failures = 0
        self._pull_retry_at: int | None = None
        self.last_report: SyncReport | None = None

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Sync every ``interval`` seconds (sooner after :meth:`kick`) until cancelled.
        A round that fails is logged; the loop goes on."""
        while True:
            try:
                await self.sync_once()
            except ThreadlineError as exc:
                log.warning("sync round failed: %s", exc)
            except Exception:
                log.exception("sync round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)

    def start(self) -> None:
        """Run :meth:`run` in a background task (once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="threadline-sync")

    def kick(self) -> None:
        """Start the next round now instead of at the end of the interval."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop the background task, after the round in progress if any."""
        task, self._task = self._task, None
        if task is None:
            return
        async with self._round:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def sync_once(self) -> SyncReport:
        """One round: pull, then push (with merges); see the module docstring."""
        async with self._round:
            report = SyncReport()
            self._applied = []
            await self._pull(report)
            await self._push_deletes(report)
            await self._push(report)
            report.files_pushed, failed = await self._files.push()
            report.failed.update(failed)
            report.files_pulled, failed = await self._files.pull(self._applied)
            report.failed.update(failed)
            self.last_report = report
            return report

    async def _request(self, call: Callable[[], Awaitable[_T]]) -> _T:
        return await with_retry(
            call,
            max_attempts=self.settings.request_attempts,
            backoff=self.settings.request_backoff,
            sleep=self._sleep,
        )

    def _changed(self, thread_id: str, kind: str = THREAD_UPDATED, v: int = 0) -> None:
        if self._on_local_change is not None:
            self._on_local_change(thread_id)
        if self._on_event is not None:
            self._on_event(ThreadEvent(kind, thread_id, v))

    def _pulled(self, item: PulledThread) -> None:
        """Tell the layers above about a pull applied here."""
        if item.deleted:
            self._changed(item.thread_id, THREAD_DELETED, item.base)
        else:
            self._applied.append(item.thread_id)
            kind = THREAD_CREATED if item.base == 0 else THREAD_UPDATED
            self._changed(item.thread_id, kind, item.base + len(item.deltas))

    # -- pull ----------------------------------------------------------------------

    async def _pull(self, report: SyncReport) -> None:
        now = self._clock()
        if self._pull_retry_at is not None and now < self._pull_retry_at:
            report.pull_error = "waiting to retry the change feed"
            return
        location = self.remote.location
        cursor = await self.local.sync_cursor(location) or 0
        page = self.settings.pull_page
        while True:
            try:
                changes = await self._request(
                    functools.partial(self.remote.changes_since, cursor, limit=page)
                )
                pulled = await self._fetch(changes)
            except ThreadlineError as exc:
                self._pull_failures += 1
                delay = self.settings.backoff.delay(self._pull_failures, self._rng)
                self._pull_retry_at = now + int(delay * 1000)
                report.pull_error = _reason(exc)
                log.warning("pulling from %s failed: %s", location, exc)
                return
            if not changes:
                break
            outcomes = await self.local.record_pull(location, changes[-1].cursor, pulled)
            for item, outcome in zip(pulled, outcomes, strict=True):
                if outcome in ("applied", "deleted"):
                    report.pulled += 1
                    report.deltas_pulled += len(item.deltas)
                    self._pulled(item)
                elif outcome == "conflict":
                    report.conflicts.append(item.thread_id)
            cursor = changes[-1].cursor
            if len(changes) < page:
                break
        self._pull_failures = 0
        self._pull_retry_at = None

    async def _fetch(self, changes: Sequence[Change]) -> list[PulledThread]:
        """What each change means here, fetching the deltas it needs."""
        if not changes:
            return []
        states = await self.local.sync_states([c.thread_id for c in changes])
        deleting = {d.thread_id for d in await self.local.sync_deletes()}
        changes = [c for c in changes if c.thread_id not in deleting]
        limit = asyncio.Semaphore(self.settings.fetch_concurrency)

        async def one(change: Change) -> PulledThread | None:
            async with limit:
                return await self._fetch_one(change, states.get(change.thread_id))

        found = await asyncio.gather(*(one(c) for c in changes), return_exceptions=True)
        pulled: list[PulledThread] = []
        for item in found:
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                pulled.append(item)
        return pulled

    async def _fetch_one(self, change: Change, state: SyncState | None) -> PulledThread | None:
        thread_id = change.thread_id
        if change.deleted:
            if state is None:
                return None
            return PulledThread(thread_id, base=state.local_v, deleted=True)
        if state is None:  # not here: fetch it whole, if its kind syncs
            records = await self._request(lambda: self.remote.deltas(thread_id))
            if not records:
                return None
            create = records[0].delta
            if not isinstance(create, ThreadCreate) or self._kinds.get(thread_kind(create)) is None:
                return None
            deltas = [r.delta for r in records]
            return PulledThread(thread_id, base=0, deltas=deltas, remote_v=records[-1].v)
        if change.v <= state.synced_v:
            return None  # our own push, coming back
        if state.local_v > state.synced_v:
            return PulledThread(thread_id, base=state.local_v, remote_v=change.v)
        records = await self._request(lambda: self.remote.deltas(thread_id, after=state.synced_v))
        remote_v = max(change.v, records[-1].v if records else 0)
        return PulledThread(
            thread_id, base=state.local_v, deltas=[r.delta for r in records], remote_v=remote_v
        )

    # -- deletes -------------------------------------------------------------------

    async def _push_deletes(self, report: SyncReport) -> None:
        """Push the pending local deletes, each on the version it saw."""
        now = self._clock()
        for pending in await self.local.sync_deletes():
            if pending.next_attempt is not None and pending.next_attempt > now:
                report.waiting += 1
                continue
            thread_id = pending.thread_id
            try:
                await self._request(
                    functools.partial(self.remote.delete, thread_id, version=pending.seen_v)
                )
            except VersionConflict as exc:
                try:
                    await self._delete_refused(pending, exc.actual, report)
                except ThreadlineError as failed:
                    await self._delete_failed(pending, failed, report)
                continue
            except ThreadlineError as exc:
                await self._delete_failed(pending, exc, report)
                continue
            # Deleted there, or gone already (deleted by another replica too).
            await self.local.settle_delete(thread_id)
            report.deleted += 1

    async def _delete_refused(
        self, pending: PendingDelete, actual: int, report: SyncReport
    ) -> None:
        """The server changed the thread after the version the delete saw: it
        keeps the thread, and so does this replica (fetched back whole)."""
        thread_id = pending.thread_id
        records = await self._request(lambda: self.remote.deltas(thread_id))
        if not records:  # deleted there meanwhile: the delete is moot
            await self.local.settle_delete(thread_id)
            return
        pulled = PulledThread(
            thread_id,
            base=0,
            deltas=[r.delta for r in records],
            remote_v=records[-1].v,
            conflict=(
                f"the delete of v{pending.seen_v} lost to a change on the server "
                f"(v{max(actual, records[-1].v)}): kept"
            ),
        )
        (outcome,) = await self.local.record_pull(self.remote.location, None, [pulled])
        report.conflicts.append(thread_id)
        if outcome == "applied":
            report.pulled += 1
            report.deltas_pulled += len(pulled.deltas)
            self._pulled(pulled)
        log.warning("the delete of thread %s was refused: the server changed it", thread_id)

    async def _delete_failed(
        self, pending: PendingDelete, exc: ThreadlineError, report: SyncReport
    ) -> None:
        failures = pending.failures + 1
        delay = self.settings.backoff.delay(failures, self._rng)
        reason = _reason(exc)
        failure = SyncFailure(reason, failures, self._clock() + int(delay * 1000))
        await self.local.settle_delete(pending.thread_id, failure)
        report.failed[pending.thread_id] = reason

    # -- push ----------------------------------------------------------------------

    def _priority(self, state: SyncState) -> tuple[int, int, str]:
        policy = self._kinds.get(state.kind)
        rank = 0 if policy is not None and policy.priority == "high" else 1
        return rank, state.pending_since or 0, state.thread_id

    async def _push(self, report: SyncReport) -> None:
        now = self._clock()
        due: list[SyncState] = []
        for state in await self.local.sync_pending():
            if self._kinds.get(state.kind) is None:
                continue
            if state.next_attempt is not None and state.next_attempt > now:
                report.waiting += 1
                continue
            if state.stuck_v == state.local_v and state.remote_v <= state.synced_v:
                continue  # refused for good; tried again once the thread changes
            due.append(state)
        due.sort(key=self._priority)
        merged: set[str] = set()
        ready: list[SyncState] = []
        for state in due:
            if state.remote_v > state.synced_v:  # the server moved on: never push blindly
                try:
                    reconciled = await self._reconcile(state, None, report, merged)
                except ThreadlineError as exc:
                    await self._fail([state], exc, report, per_thread=True)
                    continue
                if reconciled is not None and reconciled.local_v > reconciled.synced_v:
                    ready.append(reconciled)
            else:
                ready.append(state)
        for _ in range(self.settings.merge_rounds):
            again: list[SyncState] = []
            size = self.settings.batch_size
            for start in range(0, len(ready), size):
                again += await self._push_batch(ready[start : start + size], report, merged)
            ready = again
            if not ready:
                break

    async def _push_batch(
        self, states: Sequence[SyncState], report: SyncReport, merged: set[str]
    ) -> list[SyncState]:
        """Push one batch; returns the threads merged after a 409, to push again."""
        pushes: list[tuple[SyncState, list[Delta]]] = []
        for state in states:
            records = await self.local.deltas(state.thread_id, after=state.synced_v)
            if records:
                pushes.append((state, [r.delta for r in records]))
        if not pushes:
            return []
        compress = any(
            (policy := self._kinds.get(s.kind)) is not None and policy.compress for s, _ in pushes
        )
        try:
            results = await self._request(
                lambda: self.remote.push_batch(
                    [(s.thread_id, s.synced_v, deltas) for s, deltas in pushes],
                    compress=compress,
                )
            )
        except ThreadlineError as exc:
            if not is_retryable(exc) and len(pushes) > 1:
                # Refused whole (one push over a limit fails the request): push
                # each alone, so that only the culprit waits.
                again: list[SyncState] = []
                for state, _ in pushes:
                    again += await self._push_batch([state], report, merged)
                return again
            alone = len(pushes) == 1 and isinstance(exc, RemoteRefused) and exc.status != 401
            await self._fail([s for s, _ in pushes], exc, report, per_thread=alone)
            return []
        updates: list[SyncUpdate] = []
        conflicts: list[tuple[SyncState, wire.PushConflict]] = []
        refused: list[tuple[SyncState, ThreadlineError]] = []
        again = []
        for (state, deltas), result in zip(pushes, results, strict=True):
            thread_id = state.thread_id
            if result.accepted is not None:
                updates.append(
                    SyncUpdate(
                        thread_id,
                        synced_v=state.synced_v + len(deltas),
                        remote_v=result.accepted.version,
                        succeeded=True,
                        merged=None if thread_id in merged else False,
                    )
                )
                report.pushed += 1
                report.deltas_pushed += len(deltas)
            elif result.status == 409 and result.conflict is not None:
                conflicts.append((state, result.conflict))
            elif result.status == 404 and state.synced_v > 0:
                # Deleted on the server meanwhile: push it again whole.
                updates.append(SyncUpdate(thread_id, reset=True))
                again.append(replace(state, synced_v=0, remote_v=0))
            else:
                message = result.error.message if result.error is not None else "refused"
                error: ThreadlineError = (
                    RemoteUnavailable(self.remote.location, f"{result.status}: {message}")
                    if result.status >= 500 or result.status == 429
                    else RemoteRefused(self.remote.location, result.status, message)
                )
                refused.append((state, error))
        await self.local.update_sync(updates)
        for state, error in refused:
            await self._fail([state], error, report, per_thread=True)
        for state, conflict in conflicts:
            try:
                reconciled = await self._reconcile(state, conflict, report, merged)
            except ThreadlineError as exc:
                await self._fail([state], exc, report, per_thread=True)
                continue
            if reconciled is not None and reconciled.local_v > reconciled.synced_v:
                again.append(reconciled)
        return again

    async def _fail(
        self,
        states: Sequence[SyncState],
        exc: ThreadlineError,
        report: SyncReport,
        *,
        per_thread: bool,
    ) -> None:
        """Record a failed attempt: a back-off for each thread; a refusal of one
        thread's push for good (``per_thread``) also waits for the thread to change."""
        now = self._clock()
        retryable = is_retryable(exc)
        reason = _reason(exc)
        updates: list[SyncUpdate] = []
        for state in states:
            failures = state.failures + 1
            delay = self.settings.backoff.delay(failures, self._rng)
            stuck = state.local_v if per_thread and not retryable else None
            failure = SyncFailure(reason, failures, now + int(delay * 1000), stuck)
            updates.append(SyncUpdate(state.thread_id, failure=failure))
            report.failed[state.thread_id] = reason
        await self.local.update_sync(updates)
        log.warning("sync of %d thread(s) failed: %s", len(states), reason)

    # -- conflicts -----------------------------------------------------------------

    async def _reconcile(
        self,
        state: SyncState,
        conflict: wire.PushConflict | None,
        report: SyncReport,
        merged: set[str],
    ) -> SyncState | None:
        """Bring a thread level with the server; returns its state if it still has
        local deltas to push, else ``None`` (also when a local write raced: the
        next round takes it up)."""
        thread_id = state.thread_id
        synced = state.synced_v
        ours = await self.local.deltas(thread_id, after=synced)
        if not ours and await self.local.head(thread_id) is None:
            return None
        local_v = ours[-1].v if ours else synced
        if conflict is not None and len(conflict.missing) == conflict.version - synced:
            theirs = [w.delta for w in conflict.missing]
        else:
            records = await self._request(lambda: self.remote.deltas(thread_id, after=synced))
            theirs = [r.delta for r in records]
        remote_v = synced + len(theirs)
        mine = [r.delta for r in ours]
        shared = _common_prefix(mine, theirs)
        common = synced + shared
        if shared == len(theirs):  # the server has nothing this replica lacks
            level = common == local_v
            await self.local.update_sync(
                [SyncUpdate(thread_id, synced_v=common, remote_v=remote_v, succeeded=level)]
            )
            return replace(state, local_v=local_v, synced_v=common, remote_v=remote_v)
        if shared == len(mine):  # this replica has nothing the server lacks
            pulled = PulledThread(
                thread_id, base=local_v, deltas=theirs[shared:], remote_v=remote_v
            )
            (outcome,) = await self.local.record_pull(self.remote.location, None, [pulled])
            if outcome == "applied":
                report.pulled += 1
                report.deltas_pulled += len(pulled.deltas)
                self._pulled(pulled)
            return None
        base = fold(r.delta for r in await self.local.deltas(thread_id, upto=common))
        local = fold(mine[shared:], base)
        remote = fold(theirs[shared:], base)
        merge = merge_deltas(base, local, remote)
        try:
            head = await self.local.rebase(
                thread_id,
                local_v,
                common,
                [*theirs[shared:], *merge],
                SyncUpdate(thread_id, synced_v=remote_v, remote_v=remote_v, merged=True),
            )
        except VersionConflict:
            return None
        merged.add(thread_id)
        report.merged.append(thread_id)
        self._changed(thread_id, THREAD_UPDATED, head.v)
        log.info(
            "merged thread %s: local v%d and server v%d from v%d into v%d",
            thread_id,
            local_v,
            remote_v,
            common,
            head.v,
        )
        return replace(state, local_v=head.v, synced_v=remote_v, remote_v=remote_v)
