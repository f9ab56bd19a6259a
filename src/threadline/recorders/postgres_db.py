"""The PostgreSQL database under :mod:`threadline.recorders.postgres`: the pool,
the numbered migrations of :mod:`.postgres_schema`, tokens, the change
notifications every server process listens to, writer-lease connections, and
the one place where asyncpg errors become threadline errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Self, TypeAlias

import asyncpg

from threadline.auth import TokenRecord
from threadline.errors import (
    InvalidDelta,
    StoreBusy,
    StoreCorrupt,
    StoreFull,
    ThreadlineError,
)
from threadline.ids import now_ms
from threadline.recorders import postgres_schema as sql
from threadline.recorders.workspaces import Workspaces, masked_url

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from threadline.recorders.postgres import PostgresRecorder

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

# Errors worth retrying: the database is busy, restarting or out of reach.
RETRYABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.QueryCanceledError,
)


def redacted(dsn: str) -> str:
    """``dsn`` without its password (in the user part or a parameter), for messages."""
    return masked_url(dsn)


@contextlib.asynccontextmanager
async def translated(location: str) -> AsyncIterator[None]:
    """The one place where asyncpg and socket errors become threadline errors."""
    try:
        yield
    except ThreadlineError:
        raise
    except (
        asyncpg.exceptions.CharacterNotInRepertoireError,
        asyncpg.exceptions.UntranslatableCharacterError,
    ) as exc:
        raise InvalidDelta(f"Text PostgreSQL cannot store (a NUL character?): {exc}") from exc
    except asyncpg.exceptions.DiskFullError as exc:
        raise StoreFull(location, str(exc)) from exc
    except RETRYABLE as exc:
        raise StoreBusy(location, str(exc)) from exc
    except (OSError, asyncpg.exceptions.InterfaceError) as exc:
        raise StoreBusy(location, f"cannot reach the database: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreCorrupt(location, f"{type(exc).__name__}: {exc}") from exc


async def keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own rollback
    of an open transaction: nothing. asyncpg's default reset (UNLISTEN, RESET ALL,
    advisory unlocks) is one more round trip per query, for session state that
    pool connections never hold: listening and writer leases have connections
    of their own, and no query changes a session setting or keeps a cursor open."""


async def migrate(conn: Connection) -> None:
    """Apply the migrations this database lacks, once, whoever else starts now."""
    async with conn.transaction():
        await conn.execute(sql.MIGRATIONS_LOCK, sql.MIGRATION_LOCK)
        await conn.execute(sql.MIGRATIONS_TABLE)
        done = {r[0] for r in await conn.fetch(sql.MIGRATIONS_DONE)}
        newest = max(done, default=0)
        if newest > max(sql.MIGRATIONS):
            raise StoreCorrupt(
                "postgresql", f"schema version {newest} is newer than this threadline understands"
            )
        for number, script in sorted(sql.MIGRATIONS.items()):
            if number not in done:
                await conn.execute(script)
                await conn.execute(sql.MIGRATION_DONE, number, now_ms())


# -- leases ----------------------------------------------------------------------


class LeaseKeeper:
    """Session advisory locks on one connection, driven from a thread of its own so
    that :meth:`ThreadRecorder.acquire_lease` (synchronous) can wait for them."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="threadline-pg-leases", daemon=True
        )
        self._thread.start()
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None

    def _call(self, query: str, key: str) -> bool:
        async def run() -> bool:
            if self._conn is None or self._conn.is_closed():
                self._conn = None
                self._conn = await asyncpg.connect(self._dsn)
            return bool(await self._conn.fetchval(query, key))

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def try_lock(self, key: str) -> bool:
        return self._call(sql.TRY_LEASE, key)

    def unlock(self, key: str) -> None:
        self._call(sql.RELEASE_LEASE, key)

    def close(self) -> None:
        async def finish() -> None:
            if self._conn is not None:
                await self._conn.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(finish(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class PostgresDatabase(Workspaces):
    """One PostgreSQL database shared by every workspace's recorder."""

    """One PostgreSQL database: the pool, migrations, tokens and a recorder per workspace.

    ``await PostgresWorkspaces.connect(dsn)`` opens it; :meth:`close` closes
    every recorder it handed out and the pool.
    """

    def __init__(self, dsn: str, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        super().__init__()
        self.dsn = dsn
        self.pool = pool
        self._recorders: dict[str, PostgresRecorder] = {}
        self._leases: LeaseKeeper | None = None
        self._leases_lock = threading.Lock()
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._listening = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Self:
        """Open a pool on ``dsn`` and apply the migrations the database lacks."""
        location = redacted(dsn)
        async with translated(location):
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, reset=keep_session
            )
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
            except BaseException:
                await pool.close()
                raise
        return cls(dsn, pool)

    @property
    def location(self) -> str:
        return redacted(self.dsn)

    def _lease_keeper(self) -> LeaseKeeper:
        with self._leases_lock:
            if self._leases is None:
                self._leases = LeaseKeeper(self.dsn)
            return self._leases

    async def add_token(self, record: TokenRecord) -> None:
        async with translated(self.location):
            await self.pool.execute(
                sql.ADD_TOKEN,
                record.token_id,
                record.secret_hash,
                record.user,
                record.workspace,
                record.created,
            )

    async def find_token(self, token_id: str) -> TokenRecord | None:
        async with translated(self.location):
            row = await self.pool.fetchrow(sql.FIND_TOKEN, token_id)
        if row is None:
            return None
        return TokenRecord(token_id, bytes(row[0]), row[1], row[2], row[3])

    async def list_tokens(self) -> list[TokenRecord]:
        async with translated(self.location):
            rows = await self.pool.fetch(sql.LIST_TOKENS)
        return [TokenRecord(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        async with translated(self.location):
            status = await self.pool.execute(sql.REVOKE_TOKEN, token_id)
        return status.endswith(" 1")

    async def start_listening(self) -> None:
        """Relay ``NOTIFY threadline_changes`` (from any process) to :meth:`notify_changed`."""
        async with self._listening:
            if self._listener is not None or self._closed:
                return

            def relay(conn: object, pid: int, channel: str, payload: object) -> None:
                self.notify_changed(str(payload))

            async with translated(self.location):
                listener = await asyncpg.connect(self.dsn)
                await listener.add_listener("threadline_changes", relay)
            self._listener = listener

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for recorder in self._recorders.values():
            recorder._closed = True
        if self._listener is not None:
            await self._listener.close()
        if self._leases is not None:
            await asyncio.to_thread(self._leases.close)
        await self.pool.close()
