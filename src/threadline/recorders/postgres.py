"""PostgreSQL recorder: the server side (asyncpg, one connection pool).

One database holds many workspaces. :class:`PostgresWorkspaces` owns the
pool, applies the numbered migrations of :mod:`.postgres_schema` on start
and keeps the tokens (:mod:`.postgres_db`); :class:`PostgresRecorder` is one workspace's view of
it, a cheap object that every query scopes to its workspace. Several server
processes may share the database: everything that must be exclusive is
decided by PostgreSQL (see below), nothing by process memory.

An append is one round trip in the common case: the head it builds on is
read (or taken from a small cache keyed by the row's ``tid`` and version,
which the database re-checks), the new head and projections are computed
here, and one call of the ``threadline_append`` function checks the version
under the thread's row lock and writes the log, the head and the projections
(messages by position, links, usage, search tokens) in one transaction. A
stale append writes nothing and becomes :class:`VersionConflict`. Appends
that arrive while others of the workspace are being committed wait and go
together, in one transaction (group commit, :mod:`.commit_groups`): the feed
lock below would otherwise make each wait for the previous one's disk flush.

Change feed: every commit that changes threads numbers its changes under the
lock of its workspace's row, held until it commits, so the numbers of a
workspace are handed out in commit order and a follower never misses one (see
``threadline_publish``). Each thread has one feed row, moved to its newest
change; a deleted thread's row stays as a tombstone. Commits ``NOTIFY``
``threadline_changes`` with the workspace, which live streams of every server
process listen to.

Writer leases are session advisory locks held on a dedicated connection (in a
thread of its own, since taking a lease is synchronous in the contract): the
database drops them when the holding process dies.

``bytea`` rather than ``jsonb`` for deltas and heads: nothing queries inside
them, and on 4,000 realistic agent messages (1.3 KB of JSON each, PostgreSQL
15, loopback) inserting took 0.17 s as ``bytea`` against 0.25 s as ``jsonb``,
reading 200 pages of 50 took 0.12 s against 0.22 s (``jsonb`` is re-rendered
as text on every read), and the table was 4 % smaller. ``jsonb`` also
rejects ``\\u0000``, which message text may hold.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Self, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

from threadline import planner
from threadline.deltas import (
    Delta,
    delta_from_json,
)
from threadline.errors import (
    InvalidDelta,
    StoreBusy,
    StoreClosed,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.files.log import (
    ContentUsage,
    FileChange,
    FileRollback,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.ids import now_ms
from threadline.model import ArchivedThread, LifecycleOp, Message, Thread, ThreadHead
from threadline.planner import AppendPlan, UsageRow
from threadline.recorders import postgres_files as files
from threadline.recorders import postgres_schema as sql
from threadline.recorders import postgres_search as pg_search
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
from threadline.recorders.commit_groups import CommitGroups
from threadline.recorders.postgres_db import PostgresDatabase, translated
from threadline.search import SearchHit, parse_query

_DAY_MS = 86_400_000
_MAX_V = 2**31 - 1
_HEAD_CACHE = 4096

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


class _AdvisoryLease(WriterLease):
    def __init__(self, recorder: PostgresRecorder, thread_id: str, key: str) -> None:
        self._recorder = recorder
        self.thread_id = thread_id
        self._key: str | None = key

    def release(self) -> None:
        key, self._key = self._key, None
        if key is not None:
            self._recorder._leases.discard(self.thread_id)
            with contextlib.suppress(Exception):  # a dead connection released it already
                self._recorder._db._lease_keeper().unlock(key)


# -- the database ----------------------------------------------------------------


class PostgresWorkspaces(PostgresDatabase):
    """One PostgreSQL database: the pool, migrations, tokens and a recorder per workspace.

    ``await PostgresWorkspaces.connect(dsn)`` opens it; :meth:`close` closes
    every recorder it handed out and the pool (see :class:`PostgresDatabase`).
    """

    async def recorder(self, workspace: str) -> PostgresRecorder:
        if self._closed:
            raise StoreClosed()
        found = self._recorders.get(workspace)
        if found is None:
            found = self._recorders[workspace] = PostgresRecorder(self, workspace)
        return found


# -- the recorder -----------------------------------------------------------------


def _plan(
    thread_id: str, head: ThreadHead | None, expected: int, deltas: Sequence[Delta]
) -> AppendPlan:
    """The planner's plan (raising before anything is written). ``head`` is
    ``None`` for a new thread: whether it exists is the database's to say."""
    return planner.plan(thread_id, head, expected, deltas, at=now_ms())


def _head_json(head: ThreadHead) -> bytes:
    return head.model_dump_json().encode()


def _thread_of(head: ThreadHead, bodies: Sequence[bytes]) -> Thread:
    # The store wrote these: build without validating them again.
    fields = {name: getattr(head, name) for name in _THREAD_FIELDS}
    return Thread.model_construct(**fields, messages=tuple(map(pg_search.message_of, bodies)))


_THREAD_FIELDS = [name for name in Thread.model_fields if name != "messages"]


def _graph(rows: Sequence[asyncpg.Record]) -> LinkGraph:
    links: list[ThreadLink] = []
    heads: dict[str, ThreadHead] = {}
    for parent_id, child_id, kind, end, head in rows:
        if kind is not None:
            links.append(ThreadLink(parent_id, child_id, "child" if kind == "child" else "summary"))
        if head is not None and end not in heads:
            heads[end] = ThreadHead.model_validate_json(head)
    return LinkGraph(tuple(dict.fromkeys(links)), heads)


class PostgresRecorder(ThreadRecorder):
    """The threads of one workspace in a PostgreSQL database.

    Get one from :meth:`PostgresWorkspaces.recorder`, or open a database for a
    single workspace with ``await PostgresRecorder.connect(dsn, workspace=...)``
    (then :meth:`close` closes the pool too).
    """

    def __init__(self, db: PostgresWorkspaces, workspace: str, *, owns_db: bool = False) -> None:
        self._db = db
        self.workspace = workspace
        self._owns_db = owns_db
        self._closed = False
        self._leases: set[str] = set()
        # thread id -> (tid, head): heads this process wrote, reused when the next
        # append builds on the same version (the database re-checks tid and v).
        self._heads: OrderedDict[str, tuple[int, ThreadHead]] = OrderedDict()
        # Concurrent appends share a transaction: the feed lock makes every commit
        # of the workspace wait for the previous one's flush (see commit_groups.py).
        self._appends: CommitGroups[Append, ThreadHead] = CommitGroups(
            self._append_group, key=lambda append: append[0]
        )

    @classmethod
    async def connect(cls, dsn: str, *, workspace: str = "default", max_size: int = 10) -> Self:
        db = await PostgresWorkspaces.connect(dsn, min_size=1, max_size=max_size)
        return cls(db, workspace, owns_db=True)

    @property
    def location(self) -> str:
        return f"{self._db.location}#{self.workspace}"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Connection]:
        self._check_open()
        async with translated(self.location), self._db.pool.acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self, isolation: str = "read_committed") -> AsyncIterator[Connection]:
        async with self._conn() as conn, conn.transaction(isolation=isolation):  # type: ignore[arg-type]
            yield conn

    def _remember(self, thread_id: str, tid: int, head: ThreadHead) -> None:
        self._heads[thread_id] = (tid, head)
        self._heads.move_to_end(thread_id)
        if len(self._heads) > _HEAD_CACHE:
            self._heads.popitem(last=False)

    # -- writes -------------------------------------------------------------------

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        if not deltas:
            raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        self._check_open()
        return await self._appends.submit((thread_id, expected_version, deltas))

    async def _append_group(self, appends: list[Append]) -> list[ThreadHead | ThreadlineError]:
        """Appends to distinct threads that waited for one another (see
        :class:`CommitGroups`): one transaction, one flush, one feed lock; alone,
        one round trip. If the database refuses the group (a raised error, not a
        stale version), each goes again alone, for its own answer."""
        if len(appends) > 1:
            try:
                return await self._append_together(appends)
            except ThreadlineError:
                pass
        results: list[ThreadHead | ThreadlineError] = []
        for thread_id, expected, deltas in appends:
            try:
                async with self._conn() as conn:
                    tid, head = await self._append(conn, thread_id, expected, deltas, True)
            except ThreadlineError as exc:
                results.append(exc)
                continue
            self._remember(thread_id, tid, head)
            results.append(head)
        return results

    async def _append_together(self, appends: list[Append]) -> list[ThreadHead | ThreadlineError]:
        results: list[ThreadHead | ThreadlineError | None] = [None] * len(appends)
        planned: list[tuple[int, int | None, AppendPlan]] = []
        written: dict[str, tuple[int, ThreadHead]] = {}
        async with self._transaction() as conn:
            for i, (thread_id, expected, deltas) in enumerate(appends):
                try:
                    tid, head = await self._base(conn, thread_id, expected, deltas)
                    planned.append((i, tid, _plan(thread_id, head, expected, deltas)))
                except ThreadlineError as exc:
                    results[i] = exc
            planned.sort(key=lambda p: appends[p[0]][0])  # row locks in one order: no deadlock
            arguments = [
                self._append_args(appends[i][0], tid, appends[i][1], plan, False)
                for i, tid, plan in planned
            ]
            rows = await conn.fetchmany(sql.APPEND, arguments) if arguments else []
            for (i, _, plan), row in zip(planned, rows, strict=True):
                thread_id, expected, _ = appends[i]
                try:
                    written[thread_id] = self._appended(thread_id, expected, plan, row)
                    results[i] = plan.head
                except ThreadlineError as exc:
                    results[i] = exc
            await self._publish(conn, {t: (head.v, False) for t, (_, head) in written.items()})
        for thread_id, (tid, head) in written.items():
            self._remember(thread_id, tid, head)
        return [r for r in results if r is not None]  # each got a head or an error

    async def _append(
        self,
        conn: Connection,
        thread_id: str,
        expected: int,
        deltas: Sequence[Delta],
        publish: bool,
    ) -> tuple[int, ThreadHead]:
        tid, head = await self._base(conn, thread_id, expected, deltas)
        plan = _plan(thread_id, head, expected, deltas)
        args = self._append_args(thread_id, tid, expected, plan, publish)
        return self._appended(thread_id, expected, plan, await conn.fetchrow(sql.APPEND, *args))

    async def _base(
        self, conn: Connection, thread_id: str, expected: int, deltas: Sequence[Delta]
    ) -> tuple[int | None, ThreadHead | None]:
        """The row id and head an append builds on (none for a new thread): the
        cached ones if they are at the expected version, else the database's."""
        if expected == 0 or not deltas:
            return None, None  # the planner refuses no deltas; the database a taken id
        cached = self._heads.get(thread_id)
        if cached is not None and cached[1].v == expected:
            return cached
        row = await conn.fetchrow(sql.HEAD, self.workspace, thread_id)
        if row is None:
            return None, None
        return row[0], ThreadHead.model_validate_json(row[1])

    def _append_args(
        self, thread_id: str, tid: int | None, expected: int, plan: AppendPlan, publish: bool
    ) -> tuple[object, ...]:
        """The arguments of ``threadline_append`` (sql.APPEND) for ``plan``."""
        new = plan.head
        messages = plan.messages
        usage = plan.usage
        links = plan.links
        return (
            self.workspace,
            thread_id,
            tid,
            expected,
            list(plan.bodies),
            plan.at,
            new.v,
            new.last_activity,
            _head_json(new),
            plan.title_tokens(),
            plan.cut,
            [m.pos for m in messages],
            [m.v for m in messages],
            [m.tokens() for m in messages],
            [link.parent_id for link in links],
            [link.child_id for link in links],
            [link.kind for link in links],
            [u.v for u in usage],
            [u.day for u in usage],
            [u.model for u in usage],
            [u.input_tokens for u in usage],
            [u.output_tokens for u in usage],
            [u.cache_read_tokens for u in usage],
            [u.cache_write_tokens for u in usage],
            [u.cost_usd for u in usage],
            [u.message_id for u in usage],
            [u.cache_write_1h_tokens for u in usage],
            [u.cost_source for u in usage],
            [u.price_version for u in usage],
            publish,
            [m.pos for m in plan.amended],
            [m.v for m in plan.amended],
            [m.tokens() for m in plan.amended],
        )

    def _appended(
        self, thread_id: str, expected: int, plan: AppendPlan, row: asyncpg.Record | None
    ) -> tuple[int, ThreadHead]:
        """The new row id and head, or the error of a stale append (which wrote nothing)."""
        assert row is not None
        ok, found, new_tid = row
        if not ok:
            self._heads.pop(thread_id, None)
            if expected == 0:
                raise ThreadExists(thread_id)
            if found == 0:
                raise ThreadNotFound(thread_id)
            raise VersionConflict(thread_id, expected, found)
        return new_tid, plan.head

    async def _publish(self, conn: Connection, changes: dict[str, tuple[int, bool]]) -> None:
        if changes:
            await conn.execute(
                sql.PUBLISH,
                self.workspace,
                list(changes),
                [v for v, _ in changes.values()],
                [deleted for _, deleted in changes.values()],
                now_ms(),
            )

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        written: list[tuple[str, int, ThreadHead]] = []
        try:
            async with self._transaction() as conn:
                for thread_id, expected, deltas in appends:
                    tid, head = await self._append(conn, thread_id, expected, deltas, False)
                    written.append((thread_id, tid, head))
                await self._publish(conn, {t: (h.v, False) for t, _, h in written})
        except BaseException:
            for thread_id, _, _ in written:
                self._heads.pop(thread_id, None)
            raise
        for thread_id, tid, head in written:
            self._remember(thread_id, tid, head)
        return [head for _, _, head in written]

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        results: list[ThreadHead | ThreadlineError] = []
        written: list[tuple[str, int, ThreadHead]] = []
        try:
            async with self._transaction() as conn:
                for thread_id, expected, deltas in appends:
                    try:
                        async with conn.transaction():  # a savepoint
                            tid, head = await self._append(conn, thread_id, expected, deltas, False)
                    except ThreadlineError as exc:
                        results.append(exc)
                        continue
                    written.append((thread_id, tid, head))
                    results.append(head)
                await self._publish(conn, {t: (h.v, False) for t, _, h in written})
        except BaseException:
            for thread_id, _, _ in written:
                self._heads.pop(thread_id, None)
            raise
        for thread_id, tid, head in written:
            self._remember(thread_id, tid, head)
        return results

    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        return (await self._delete([thread_id], version))[0]

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        return await self._delete(thread_ids, None)

    async def _delete(self, thread_ids: Sequence[str], version: int | None) -> list[bool]:
        async with self._transaction() as conn:
            if version is not None:  # one thread, locked until the delete commits
                found = await conn.fetchval(sql.LOCK_THREAD_V, self.workspace, thread_ids[0])
                if found is not None and found != version:
                    raise VersionConflict(thread_ids[0], version, found)
            rows = await conn.fetch(sql.DELETE, self.workspace, list(thread_ids))
            gone = {row[0]: row[1] for row in rows}
            for thread_id in gone:
                await files.forget(conn, self.workspace, thread_id)
            await self._publish(conn, {t: (v, True) for t, v in gone.items()})
        for thread_id in gone:
            self._heads.pop(thread_id, None)
        results: list[bool] = []
        for thread_id in thread_ids:
            results.append(thread_id in gone)
            gone.pop(thread_id, None)
        return results

    # -- reads --------------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(sql.HEAD, self.workspace, thread_id)
        return None if row is None else ThreadHead.model_validate_json(row[1])

    async def load(self, thread_id: str) -> Thread | None:
        return (await self.load_many([thread_id])).get(thread_id)

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        async with self._conn() as conn:
            rows = await conn.fetch(sql.LOAD_MANY, self.workspace, list(dict.fromkeys(thread_ids)))
        found = {row[0]: _thread_of(ThreadHead.model_validate_json(row[1]), row[2]) for row in rows}
        return {i: found[i] for i in dict.fromkeys(thread_ids) if i in found}

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        async with self._conn() as conn:
            rows = await conn.fetch(sql.HEADS_MANY, self.workspace, list(dict.fromkeys(thread_ids)))
        found = {row[0]: ThreadHead.model_validate_json(row[1]) for row in rows}
        return {i: found[i] for i in dict.fromkeys(thread_ids) if i in found}

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                sql.PAGE,
                self.workspace,
                thread_id,
                _MAX_V if before is None else min(before, _MAX_V),
                max(0, min(limit, _MAX_V)),
                min(offset, _MAX_V),
            )
        if row is None:
            return None
        return ThreadHead.model_validate_json(row[0]), [pg_search.message_of(b) for b in row[1]]

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                sql.DELTAS,
                self.workspace,
                thread_id,
                max(min(after, _MAX_V), -1),
                _MAX_V if upto is None else max(min(upto, _MAX_V), -1),
            )
        return [
            RecordedDelta(thread_id, v, at, delta_from_json(body, stored=True))
            for v, at, body in rows
        ]

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        async with self._conn() as conn:
            if after is None:
                rows = await conn.fetch(sql.LIST_HEADS, self.workspace, limit)
            else:
                rows = await conn.fetch(
                    sql.LIST_HEADS_AFTER, self.workspace, after[0], after[1], limit
                )
        return [ThreadHead.model_validate_json(row[0]) for row in rows]

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        async with self._conn() as conn:
            rows = await conn.fetch(sql.CHANGES, self.workspace, cursor, limit)
        return [Change(seq, thread_id, v, deleted, at) for seq, thread_id, v, deleted, at in rows]

    # -- relationships and costs ----------------------------------------------------

    async def subtree(self, thread_id: str) -> LinkGraph:
        async with self._conn() as conn:
            graph = _graph(await conn.fetch(sql.SUBTREE, self.workspace, thread_id))
            return await self._with_archived(conn, graph)

    async def ancestry(self, thread_id: str) -> LinkGraph:
        async with self._conn() as conn:
            graph = _graph(await conn.fetch(sql.ANCESTRY, self.workspace, thread_id))
            return await self._with_archived(conn, graph)

    async def _with_archived(self, conn: Connection, graph: LinkGraph) -> LinkGraph:
        """``graph`` with its linked threads that are archived, not gone, named."""
        ends = {end for link in graph.links for end in (link.parent_id, link.child_id)}
        absent = sorted(ends - graph.heads.keys())
        if not absent:
            return graph
        rows = await conn.fetch(sql.ARCHIVED_AMONG, self.workspace, absent)
        archived = frozenset(row[0] for row in rows)
        gone = [i for i in absent if i not in archived]
        rows = await conn.fetch(sql.DELETED_AMONG, self.workspace, gone) if gone else []
        return LinkGraph(graph.links, graph.heads, archived, frozenset(row[0] for row in rows))

    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        async with self._conn() as conn:
            if thread_ids is None:
                rows = await conn.fetch(sql.ROLLUP_ALL, self.workspace)
            else:
                query = sql.ROLLUP_TREES if subtrees else sql.ROLLUP_THESE
                rows = await conn.fetch(query, self.workspace, list(dict.fromkeys(thread_ids)))
        return [UsageGroup(*row) for row in rows]

    async def reprice_usage(
        self, price: Callable[[UsageRow], UsageRow], *, never_priced: bool = False
    ) -> int:
        async with self._conn() as conn, conn.transaction():
            found = await conn.fetch(sql.UNPRICED, self.workspace, never_priced)
            changed = []
            for tid, *fields in found:
                row = UsageRow(*fields)
                new = price(row)
                if new[7:] != row[7:]:
                    changed.append((tid, row.v, new.cost_usd, new.cost_source, new.price_version))
            await conn.executemany(sql.SET_PRICE, changed)
        return len(changed)

    # -- lifecycle --------------------------------------------------------------------

    async def begin_lifecycle(self, op: LifecycleOp) -> None:
        async with self._conn() as conn:
            await conn.execute(
                sql.PUT_LIFECYCLE_OP,
                self.workspace,
                op.id,
                op.started,
                op.model_dump_json().encode(),
            )

    async def end_lifecycle(self, op_id: str) -> bool:
        async with self._conn() as conn:
            done = await conn.execute(sql.DELETE_LIFECYCLE_OP, self.workspace, op_id)
        return done != "DELETE 0"

    async def pending_lifecycle(self) -> list[LifecycleOp]:
        async with self._conn() as conn:
            rows = await conn.fetch(sql.LIFECYCLE_OPS, self.workspace)
        return [LifecycleOp.model_validate_json(row[0]) for row in rows]

    async def commit_archive(self, op_id: str, entries: Sequence[ArchivedThread]) -> None:
        try:
            async with self._transaction() as conn:
                for item in entries:
                    row = await conn.fetchrow(sql.LOCK_THREAD_V, self.workspace, item.id)
                    if row is None:
                        raise ThreadNotFound(item.id)
                    if row[0] != item.object.v:
                        raise VersionConflict(item.id, item.object.v, row[0])
                await conn.fetch(sql.DELETE, self.workspace, [e.id for e in entries])
                await conn.executemany(
                    sql.ADD_ARCHIVED,
                    [
                        (self.workspace, e.id, e.head.last_activity, e.model_dump_json().encode())
                        for e in entries
                    ],
                )
                await conn.execute(sql.DELETE_LIFECYCLE_OP, self.workspace, op_id)
        finally:
            for item in entries:
                self._heads.pop(item.id, None)

    async def commit_restore(
        self, logs: Sequence[Sequence[RecordedDelta]], op: LifecycleOp
    ) -> list[ThreadHead]:
        heads: list[ThreadHead] = []
        restored: dict[str, tuple[int, bool]] = {}
        async with self._transaction() as conn:
            for log in logs:
                thread_id = whole_log_thread_id(log)
                if await conn.fetchrow(sql.HEAD, self.workspace, thread_id) is not None:
                    raise ThreadExists(thread_id)
                entry = await conn.fetchrow(sql.TAKE_ARCHIVED, self.workspace, thread_id)
                if entry is None:
                    raise ThreadNotFound(thread_id)
                archived = ArchivedThread.model_validate_json(entry[0])
                if archived.object.v != len(log):
                    raise VersionConflict(thread_id, archived.object.v, len(log))
                tid, head = await self._append(conn, thread_id, 0, [r.delta for r in log], False)
                restored[thread_id] = (head.v, False)
                await conn.execute(
                    sql.RESTORE_COMMIT_TIMES, tid, [r.v for r in log], [r.at for r in log]
                )
                heads.append(head)
            await self._publish(conn, restored)
            await conn.execute(
                sql.PUT_LIFECYCLE_OP,
                self.workspace,
                op.id,
                op.started,
                op.model_dump_json().encode(),
            )
        return heads

    async def archived(self, thread_id: str) -> ArchivedThread | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(sql.ARCHIVED, self.workspace, thread_id)
        return None if row is None else ArchivedThread.model_validate_json(row[0])

    async def list_archived(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ArchivedThread]:
        async with self._conn() as conn:
            if after is None:
                rows = await conn.fetch(sql.LIST_ARCHIVED, self.workspace, limit)
            else:
                rows = await conn.fetch(
                    sql.LIST_ARCHIVED_AFTER, self.workspace, after[0], after[1], limit
                )
        return [ArchivedThread.model_validate_json(row[0]) for row in rows]

    async def unreadable_heads(self) -> list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch(sql.ALL_HEADS, self.workspace)
        found = []
        for thread_id, body in rows:
            try:
                ThreadHead.model_validate_json(body)
            except ValueError:  # pydantic's ValidationError, for bytes that are no head
                found.append(thread_id)
        return found

    async def rebuild_snapshot(self, thread_id: str) -> ThreadHead | None:
        """Rebuild from the log: the thread's rows are replaced by a re-append of
        its whole log in one transaction (same tid is not kept; commit times are)."""
        async with self._transaction() as conn:
            row = await conn.fetchrow(sql.LOCK_THREAD_TID, self.workspace, thread_id)
            if row is None:
                return None
            rows = await conn.fetch(sql.LOG, row[0])
            # A log that does not fold raises here, before anything changes.
            plan = planner.replay(
                thread_id, [delta_from_json(body, stored=True) for _, _, body in rows]
            )
            await conn.fetch(sql.DELETE, self.workspace, [thread_id])
            args = self._append_args(thread_id, None, 0, plan, False)
            tid, head = self._appended(thread_id, 0, plan, await conn.fetchrow(sql.APPEND, *args))
            await conn.execute(
                sql.RESTORE_COMMIT_TIMES, tid, [r[0] for r in rows], [r[1] for r in rows]
            )
        self._heads.pop(thread_id, None)
        return head

    # -- search (see postgres_search.py) -------------------------------------------

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Candidates from the token index (GIN), then the same matching and BM25
        ranking as :mod:`threadline.search`, with corpus figures from the database
        (a phrase's document frequency counts documents holding all its tokens)."""
        terms = parse_query(query)
        async with self._transaction("repeatable_read") as conn:
            return await pg_search.search(conn, self.workspace, terms, limit)

    # -- file changes (see postgres_files.py) ---------------------------------------

    async def record_file_changes(
        self,
        thread_id: str,
        changes: Sequence[NewFileChange],
        contents: Sequence[StoredContent],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        async with self._transaction() as conn:
            return await files.record(conn, self.workspace, thread_id, changes, contents, rollback)

    async def copy_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        async with self._transaction() as conn:
            return await files.copy(conn, self.workspace, thread_id, after, changes, contents)

    async def file_changes(
        self,
        thread_id: str,
        *,
        operation_id: str | None = None,
        since_version: int | None = None,
    ) -> list[FileChange]:
        async with self._conn() as conn:
            return await files.changes(conn, self.workspace, thread_id, operation_id, since_version)

    async def file_reverts(self, thread_id: str, seqs: Sequence[int]) -> list[FileChange]:
        async with self._conn() as conn:
            return await files.reverts_of(conn, self.workspace, thread_id, seqs)

    async def latest_file_changes(
        self, thread_id: str, paths: Sequence[str]
    ) -> dict[str, FileChange]:
        async with self._conn() as conn:
            return await files.latest(conn, self.workspace, thread_id, paths)

    async def content_chain(self, content_hash: str) -> list[StoredContent]:
        async with self._conn() as conn:
            return await files.chain(conn, self.workspace, content_hash)

    async def content_depths(self, hashes: Sequence[str]) -> dict[str, int]:
        async with self._conn() as conn:
            return await files.depths(conn, self.workspace, hashes)

    async def content_usage(self) -> ContentUsage:
        async with self._conn() as conn:
            return await files.usage(conn, self.workspace)

    async def file_rollbacks(
        self, thread_id: str, *, unfinished: bool = False
    ) -> list[FileRollback]:
        async with self._conn() as conn:
            return await files.rollbacks(conn, self.workspace, thread_id, unfinished)

    async def finish_rollback(self, thread_id: str, operation_id: str) -> None:
        async with self._transaction() as conn:
            await files.finish(conn, self.workspace, thread_id, operation_id)

    # -- leases and lifecycle -------------------------------------------------------

    def acquire_lease(self, thread_id: str) -> WriterLease:
        self._check_open()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        key = f"{self.workspace}/{thread_id}"
        try:
            locked = self._db._lease_keeper().try_lock(key)
        except (OSError, asyncpg.PostgresError, asyncpg.exceptions.InterfaceError) as exc:
            raise StoreBusy(self.location, f"cannot take the writer lease: {exc}") from exc
        if not locked:
            raise WriterBusy(thread_id)
        self._leases.add(thread_id)
        return _AdvisoryLease(self, thread_id, key)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            await self._db.close()

    # -- inspection -------------------------------------------------------------

    async def derived_rows(self) -> planner.DerivedRows:
        """Every derived row of the workspace, in the form all backends report (for tests)."""
        async with self._transaction("repeatable_read") as conn:
            return await pg_search.derived_rows(conn, self.workspace)
