"""A server's storage: one recorder per workspace over one database, and its tokens.

A :class:`~threadline.recorders.base.ThreadRecorder` holds the threads of one
workspace: a thread id names a thread within its workspace, and nothing a
recorder does can reach another workspace's threads. :class:`Workspaces`
hands out those recorders (cheap views over a shared connection pool on
PostgreSQL, one file per workspace on embedded SQLite) and keeps the access
tokens. :func:`open_workspaces` picks the backend from a URL.

It also lets the server's live streams wait for changes: :meth:`notify_changed`
wakes every :meth:`wait_for_changes` of a workspace. The server calls it after
its own writes; the PostgreSQL backend also relays ``NOTIFY`` from other
server processes on the same database.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from pathlib import Path

from threadline.auth import TokenStore
from threadline.recorders.base import ThreadRecorder


class Workspaces(TokenStore, abc.ABC):
    """Recorders by workspace and the tokens that open them."""

    def __init__(self) -> None:
        self._changed: dict[str, dict[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    @abc.abstractmethod
    async def recorder(self, workspace: str) -> ThreadRecorder:
        """The recorder of ``workspace`` (made on first use; owned by this object:
        do not close it, close this)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every recorder and the database. Idempotent."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data lives (a directory or a URL without its password)."""

    def notify_changed(self, workspace: str) -> None:
        """Wake every :meth:`wait_for_changes` of ``workspace`` (in any event loop)."""
        for loop, event in self._changed.pop(workspace, {}).items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    def change_signal(self, workspace: str) -> asyncio.Event:
        """The event the next change of ``workspace`` sets. Take it *before*
        reading the feed, then wait on it: a change in between is not missed."""
        loop = asyncio.get_running_loop()
        events = self._changed.setdefault(workspace, {})
        event = events.get(loop)
        if event is None:
            event = events[loop] = asyncio.Event()
        return event

    async def wait_for_changes(self, signal: asyncio.Event, seconds: float) -> bool:
        """Wait until ``signal`` is set or ``seconds`` pass; ``True`` if set."""
        await self.start_listening()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), seconds)
        return signal.is_set()

    async def start_listening(self) -> None:
        """Start relaying other processes' changes, where the backend can."""


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


_SECRET_PARAMETERS = ("password", "passfile", "sslpassword", "sslkey")


def masked_url(url: str) -> str:
    """``url`` fit to print or log: a password in it (``user:password@`` or a
    ``password=`` parameter) replaced by ``***``; anything else as it is."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, where = netloc.rpartition("@")
        user, colon, _password = credentials.partition(":")
        netloc = f"{user}:***@{where}" if colon else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


async def open_workspaces(url: str | None, *, default_dir: Path) -> Workspaces:
    """The server storage for ``url``, opened: ``postgresql://...`` (or
    ``postgres://``) for PostgreSQL (migrations are applied), else a directory
    of SQLite files (a path, or ``sqlite:///path``); ``None`` for ``default_dir``."""
    if url is not None and is_postgres_url(url):
        from threadline.recorders.postgres import PostgresWorkspaces

        return await PostgresWorkspaces.connect(url)
    from threadline.recorders.sqlite_workspaces import SqliteWorkspaces

    if url is None:
        directory = default_dir
    elif url.startswith("sqlite://"):
        directory = Path(url.removeprefix("sqlite://"))
    else:
        directory = Path(url)
    return await asyncio.to_thread(SqliteWorkspaces, directory)
