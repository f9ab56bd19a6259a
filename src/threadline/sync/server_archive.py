"""The sync server's cold storage: archive and restore for the routes of
:mod:`threadline.sync.routes.archive`, and the transparent restore of an
archived thread that a push or a read needs.

The server archives each workspace to its own prefix of one object store
(:class:`ServerArchive`): ``<archive url>/<workspace>/threads/<id>/<op>.json.zst``,
through the same :class:`~threadline.lifecycle.archive.Lifecycle` as a local store, so
the move is just as crash-safe and the objects have the same format. The
archive URL is ``threadline serve --archive-url`` (``$THREADLINE_ARCHIVE_URL``):
a folder, or an ``s3://``, ``gs://``, ``az://`` ... URL; by default the
``archive/`` folder beside an embedded SQLite store's files, else under the
server's home.

Routes (:mod:`threadline.sync.routes.archive`):

- ``POST /v1/archive`` with ``{"older_than_days": N}`` or ``{"thread_ids": [...]}``
  (and ``"dry_run"``) archives the caller's workspace's threads, each with its
  sub-agent threads, and answers the ids moved;
- ``POST /v1/threads/{id}/restore[?with_subagents=false]`` brings one back.

An archived thread still answers ``GET /v1/threads/{id}`` (its kept metadata,
``archived: true``) and is listed. Asking for its content — its messages, its
deltas — answers 409 ``thread_archived``: a GET never changes anything, and
only ``POST /v1/threads/{id}/restore`` restores (the HTTP client does that POST
by itself and reads again). Pushing to it restores it first, transparently.
Another workspace's thread answers 404 like an unknown id, and nothing here
can reach it: every call goes through the caller's workspace recorder and that workspace's prefix.

Crash recovery: the first use of a workspace's cold storage in a server
process finishes or undoes the archives and restores a crash left recorded
(an archive still running in another server process holds its writer leases
and is left alone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from threadline.errors import (
    ArchiveUnavailable,
    ThreadArchived,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.lifecycle.archive import ColdStorage, Lifecycle
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.recorders.workspaces import Workspaces
from threadline.sync import protocol as wire
from threadline.sync.push import Revive
from threadline.sync.routes.context import Caller, Problem

_T = TypeVar("_T")


def workspace_archive_url(root: str, workspace: str) -> str:
    """The prefix of ``workspace`` under the archive URL ``root``: a subfolder,
    or a sub-path of the bucket (workspace names are safe path segments)."""
    return (root if root.endswith("/") else root + "/") + workspace


class ServerArchive:
    """The server's cold storage and the :class:`Lifecycle` of each workspace.

    ``url`` names it; without one it is the ``archive/`` folder of an embedded
    SQLite store's directory, else ``default_dir/archive``. ``storage`` gives
    the server's open :class:`Workspaces`.
    """

    def __init__(
        self,
        storage: Callable[[], Workspaces],
        *,
        url: str | None = None,
        default_dir: Path | None = None,
    ) -> None:
        self._storage = storage
        self._url = url
        self._default_dir = default_dir
        self._lifecycles: dict[str, Lifecycle] = {}

    @property
    def url(self) -> str | None:
        """The archive URL, or ``None`` if this server has no cold storage."""
        if self._url:
            return self._url
        storage = self._storage()
        if isinstance(storage, SqliteWorkspaces):
            return str(storage.directory / "archive")
        if self._default_dir is not None:
            return str(self._default_dir / "archive")
        return None

    async def lifecycle(self, who: Caller) -> Lifecycle:
        """The lifecycle of the caller's workspace, over its prefix (made on first
        use, which also recovers what a crash left of earlier operations)."""
        workspace = who.principal.workspace
        found = self._lifecycles.get(workspace)
        if found is not None and found.recorder is who.recorder:
            return found
        root = self.url
        if root is None:
            raise ArchiveUnavailable(
                "(none configured)",
                "give the server one: threadline serve --archive-url URL, "
                "or create_app(archive_url=...)",
            )
        made = Lifecycle(who.recorder, ColdStorage.from_url(workspace_archive_url(root, workspace)))
        await made.recover()
        self._lifecycles[workspace] = made
        return made

    async def restore(
        self, who: Caller, thread_id: str, *, with_subagents: bool = True
    ) -> list[str]:
        """Restore an archived thread of the caller's workspace (and by default its
        archived sub-agent threads); ``[]`` if it is active, 404 if neither."""
        if await who.recorder.archived(thread_id) is None:
            if await who.recorder.head(thread_id) is None:
                raise ThreadNotFound(thread_id)
            return []
        lifecycle = await self.lifecycle(who)
        restored = await lifecycle.restore(thread_id, with_subagents=with_subagents)
        if restored:
            self._storage().notify_changed(who.principal.workspace)
        return restored

    def reviver(self, who: Caller) -> Revive:
        """What a push calls when it finds no active thread: restore it if it is
        archived; whether it is active now."""

        async def revive(thread_id: str) -> bool:
            try:
                await self.restore(who, thread_id)
            except ThreadNotFound:
                return False
            return True

        return revive

    async def active_only(
        self, who: Caller, thread_id: str, read: Callable[[], Awaitable[_T]]
    ) -> _T:
        """``read()``; if it finds no active thread and the thread is archived,
        :class:`ThreadArchived` (409 ``thread_archived``). A GET never restores:
        only ``POST /v1/threads/{id}/restore`` does (issue 16: the viewer's cookie
        authorises GETs, which another site can make a browser send)."""
        try:
            return await read()
        except ThreadNotFound:
            entry = await who.recorder.archived(thread_id)
            if entry is None or entry.head.archived_at is None:
                raise
            raise ThreadArchived(thread_id, entry.head.archived_at) from None

    async def reviving(self, who: Caller, thread_id: str, read: Callable[[], Awaitable[_T]]) -> _T:
        """``read()``; if it finds no active thread and the thread is archived,
        restore it and read again."""
        try:
            return await read()
        except ThreadNotFound:
            if not await self.reviver(who)(thread_id):
                raise
        return await read()

    async def archive(
        self, who: Caller, request: wire.ArchiveInactive | wire.ArchiveThese
    ) -> list[str]:
        """Archive what ``request`` asks for in the caller's workspace; the ids moved."""
        lifecycle = await self.lifecycle(who)
        if isinstance(request, wire.ArchiveInactive):
            return await lifecycle.archive_inactive(
                timedelta(days=request.older_than_days), dry_run=request.dry_run
            )
        # Every id is checked before anything moves: an unknown one is a 404.
        planned: dict[str, None] = {}
        for thread_id in request.thread_ids:
            planned.update(dict.fromkeys(await lifecycle.archive(thread_id, dry_run=True)))
        if request.dry_run:
            return list(planned)
        moved: dict[str, None] = {}
        for thread_id in request.thread_ids:
            try:
                moved.update(dict.fromkeys(await lifecycle.archive(thread_id)))
            except (WriterBusy, VersionConflict) as exc:
                raise Problem(
                    409,
                    "thread_busy",
                    f"Thread {thread_id} was written to, archived or restored while it was "
                    f"being archived, so it stays active ({exc}). Threads listed before it "
                    "are archived; send the request again.",
                ) from exc
        return list(moved)
