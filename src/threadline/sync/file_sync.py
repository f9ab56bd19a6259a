"""File changes travel with their thread: the file-log step of a sync round.

A thread's file log (:mod:`threadline.files`) is recorded on the machine whose
files they are; the sync copies it to the server and from there to the other
replicas, so that ``threadline files ID`` and the viewer's diffs show the same
changes everywhere (rollback stays where the files are; elsewhere a dry run
reads them). The ledger's ``files_synced`` counts the changes the server has.

- **Push**, after the round's thread pushes: each thread the server has whose
  local file log holds changes past ``files_synced`` sends them (``POST
  /v1/threads/{id}/files`` on ``after = files_synced``) with the contents the
  server lacks (asked first: ``POST /v1/contents/missing``; a content's bases
  go with it, still zstd-compressed deltas).
- **Pull**, for each thread the round pulled deltas of: the server's changes
  past the local log (``GET /v1/threads/{id}/files?after=``), with the contents
  this replica lacks (``GET /v1/contents/{hash}``: a content and its bases).

A change whose content before (or after) is not recorded (an import's edit
of a file its transcript never showed) travels as it is, marked unknown, with
no content for that side.

File logs are append-only and recorded on one machine; two machines that
both record file changes for one thread diverge, and the sync then reports
the thread failing (``file log diverged``) rather than merge them. A file
change recorded after the thread's last delta reaches other replicas with
the thread's next change (the change feed announces thread versions only).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from threadline.errors import ThreadlineError, ThreadNotFound, VersionConflict
from threadline.files.log import FileChange, StoredContent, content_hashes
from threadline.recorders.roles import FileLog
from threadline.recorders.sync_state import SyncLedger, SyncState, SyncUpdate
from threadline.sync import files_wire as fw
from threadline.sync.client import RemoteRecorder

_T = TypeVar("_T")


class Request(Protocol):
    """Run one request, with the sync's immediate retries."""

    def __call__(self, call: Callable[[], Awaitable[_T]]) -> Awaitable[_T]: ...


def _hashes(changes: Iterable[FileChange]) -> list[str]:
    """The contents ``changes`` name; a content not recorded has none to send."""
    return list(dict.fromkeys(h for c in changes for h in content_hashes(c)))


class FileSync:
    """The file-log step of :class:`~threadline.sync.service.SyncService`
    (see the module docstring). ``request`` runs one request with its retries."""

    def __init__(self, local: SyncLedger, remote: RemoteRecorder, request: Request) -> None:
        self.local = local
        self.files = local if isinstance(local, FileLog) else None
        self.remote = remote
        self._request = request

    async def push(self) -> tuple[int, dict[str, str]]:
        """Push every backlog; the changes pushed, and the threads that failed (why)."""
        if self.files is None:
            return 0, {}
        pushed = 0
        failed: dict[str, str] = {}
        for state in await self.local.sync_file_backlog():
            try:
                pushed += await self._push_one(self.files, state)
            except ThreadlineError as exc:
                failed[state.thread_id] = f"file changes: {exc}"
        return pushed, failed

    async def _push_one(self, files: FileLog, state: SyncState) -> int:
        thread_id, after = state.thread_id, state.files_synced
        changes = [c for c in await files.file_changes(thread_id) if c.seq > after]
        changes = changes[: fw.MAX_FILE_CHANGES]
        chains: dict[str, StoredContent] = {}
        for content_hash in _hashes(changes):
            for content in await files.content_chain(content_hash):
                chains.setdefault(content.hash, content)
        missing = await self._request(lambda: self.remote.missing_contents(list(chains)))
        wanted = set(missing)
        contents = [c for h, c in chains.items() if h in wanted]
        # Bases first, so that every delta finds its base stored.
        contents.sort(key=lambda c: c.depth)
        try:
            count = await self._request(
                lambda: self.remote.push_file_changes(thread_id, after, changes, contents)
            )
        except VersionConflict as exc:
            raise VersionConflict(thread_id, after, exc.actual) from exc
        except ThreadNotFound:
            return 0  # not on the server (yet): pushed with a later round
        await self.local.update_sync([SyncUpdate(thread_id, files_synced=count)])
        return len(changes)

    async def pull(self, thread_ids: Sequence[str]) -> tuple[int, dict[str, str]]:
        """Pull the server's new file changes of ``thread_ids``; the changes
        pulled, and the threads that failed (why)."""
        if self.files is None or not thread_ids:
            return 0, {}
        pulled = 0
        failed: dict[str, str] = {}
        states = await self.local.sync_states(list(dict.fromkeys(thread_ids)))
        for state in states.values():
            try:
                pulled += await self._pull_one(self.files, state)
            except ThreadlineError as exc:
                failed[state.thread_id] = f"file changes: {exc}"
        return pulled, failed

    async def _pull_one(self, files: FileLog, state: SyncState) -> int:
        thread_id = state.thread_id
        local = len(await files.file_changes(thread_id))
        page = await self._request(lambda: self.remote.read_file_log(thread_id, after=local))
        if not page.changes:
            return 0
        if local != state.files_synced:
            raise VersionConflict(thread_id, state.files_synced, local)
        stored = await files.content_depths(_hashes(page.changes))
        contents: dict[str, StoredContent] = {}
        for content_hash in _hashes(page.changes):
            if content_hash in stored or content_hash in contents:
                continue
            chain = await self._request(
                functools.partial(self.remote.remote_content_chain, content_hash)
            )
            for content in chain:
                contents.setdefault(content.hash, content)
        count = await files.copy_file_changes(
            thread_id, local, page.changes, sorted(contents.values(), key=lambda c: c.depth)
        )
        await self.local.update_sync([SyncUpdate(thread_id, files_synced=count)])
        return len(page.changes)
