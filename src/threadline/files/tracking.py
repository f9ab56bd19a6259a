"""File change tracking and rollback: the spec's ``ThreadFileTracker``, and more.

A coding agent's tool calls create, modify and delete files. Before a tool
writes, :meth:`FileTracker.record_change` keeps the file as it is (read from
disk) and as it will be (given), under the operation id of the tool call;
the record is durable before the call returns. :class:`ToolFiles` does both
for a tool: it records, then writes.

Undoing (:meth:`FileTracker.rollback_operation`, :meth:`FileTracker.rollback_to`)
puts files back. A file is overwritten only if it still holds what the
changes left; otherwise it is refused and reported, unless forced. Every
rollback is recorded as changes of its own operation (so it can be rolled
back in turn), and these records are written, with a journal entry, before
the first file is touched: a rollback killed half-way leaves each file rolled
back or untouched (files are replaced by rename), and running it again
finishes it. See :mod:`threadline.files.rollback` for the rules.

Paths resolve inside the thread's working directory, ``env.cwd``
(:mod:`threadline.files.workdir`). Contents are stored once per distinct content,
zstd-compressed, as deltas against the previous content where there is one
(:mod:`threadline.files.contents`).

Two rollbacks of one thread must not run at once; this tracker serialises
those it runs, not those of other processes.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pydantic import Field

from threadline.deltas import MessageDelta
from threadline.errors import (
    ContentCorrupt,
    ContentMissing,
    InvalidFileChange,
    MessageNotFound,
    NoWorkingDirectory,
    OperationNotFound,
    PathOutsideWorkspace,
    RollbackInterrupted,
    ThreadNotFound,
)
from threadline.files import contents, workdir
from threadline.files.diffs import DIFF_LIMIT, unified_diff
from threadline.files.log import (
    ChangeType,
    FileChange,
    FileRollback,
    FileState,
    NewFileChange,
    NewRollback,
    State,
    StoredContent,
)
from threadline.files.rollback import (
    Decision,
    FileOutcome,
    PathPlan,
    RollbackReport,
    dead_seqs,
    decide,
    plan_operation,
    plan_resume,
    plan_rewind,
)
from threadline.files.workdir import DiskFile, WorkDir
from threadline.ids import uuid7
from threadline.model import _Frozen

if TYPE_CHECKING:  # the role is only named here; importing it would be a cycle
    from threadline.recorders.roles import FileLog

CHANGE_TYPES: tuple[ChangeType, ...] = ("create", "modify", "delete")


class FileDiff(_Frozen):
    """A change and its unified diff (a one-line summary for binary or huge files,
    and for a change with a content not recorded: :mod:`threadline.files.diffs`)."""

    change: FileChange
    diff: str


class FileOperation(_Frozen):
    """The changes of one operation (a tool call, or a rollback), oldest first.

    ``rollback`` is the journal entry when the operation is a rollback;
    ``reverted`` says that a later rollback undid every one of its changes.
    """

    operation_id: str
    changes: tuple[FileDiff, ...] = Field(default=())
    rollback: FileRollback | None = None
    reverted: bool = False


class _ContentCache(MutableMapping[str, bytes]):
    """Decoded contents, least recently used dropped first beyond ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()  # decoding runs in worker threads

    def __getitem__(self, key: str) -> bytes:
        with self._lock:
            value = self._items[key]
            self._items.move_to_end(key)
            return value

    def __setitem__(self, key: str, value: bytes) -> None:
        if len(value) > self._limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._size += len(value) - (len(old) if old is not None else 0)
            self._items[key] = value
            while self._size > self._limit:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            self._size -= len(self._items.pop(key))

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A change read from disk and ready to encode and record."""

    change: NewFileChange
    before_data: bytes | None
    after_data: bytes | None


@dataclass(frozen=True, slots=True)
class _Step:
    """One path of a rollback: its plan, the file on disk, the verdict."""

    plan: PathPlan
    disk: DiskFile
    decision: Decision
    create_dirs: tuple[str, ...] = ()


class FileTracker:
    """Records file changes and rolls them back, through a
    :class:`~threadline.recorders.roles.FileLog` (the storage role of file logs)."""

    def __init__(self, recorder: FileLog, *, cache_bytes: int = 64 << 20) -> None:
        self._recorder = recorder
        self._cache = _ContentCache(cache_bytes)
        self._locks: dict[str, asyncio.Lock] = {}

    # -- recording --------------------------------------------------------

    async def record_change(
        self,
        thread_id: str,
        operation_id: str,
        *,
        path: str | os.PathLike[str],
        type: ChangeType,
        new_content: bytes | str | None = None,
        mode: int | None = None,
    ) -> FileChange:
        """Record that operation ``operation_id`` is about to ``type`` the file at
        ``path`` (inside the thread's ``env.cwd``), leaving ``new_content``.

        Call it before the write: the content before is read from disk now. A
        ``create`` needs a missing file, a ``modify`` or ``delete`` an existing
        regular one (else :class:`InvalidFileChange`); ``new_content`` is
        required unless deleting, and ``str`` is stored as UTF-8. ``mode``
        (permission bits) defaults to the file's, or for a new file to what
        ``open()`` would give it. Returns the durable record.
        """
        if not operation_id:
            raise InvalidFileChange(thread_id, os.fspath(path), "give the operation id")
        if type not in CHANGE_TYPES:
            raise InvalidFileChange(
                thread_id, os.fspath(path), f"type must be create, modify or delete, not {type!r}"
            )
        if (new_content is None) != (type == "delete"):
            detail = "a delete has no new content" if type == "delete" else "give new_content"
            raise InvalidFileChange(thread_id, os.fspath(path), detail)
        if mode is not None and not 0 <= mode <= 0o7777:
            raise InvalidFileChange(thread_id, os.fspath(path), f"mode {mode:#o} is not 0..0o7777")
        data = new_content.encode() if isinstance(new_content, str) else new_content
        space = await self.workdir(thread_id)
        prepared = await asyncio.to_thread(_prepare, space, operation_id, path, type, data, mode)
        [change] = await self._record(thread_id, [prepared])
        return change

    def track(self, thread_id: str, operation_id: str) -> ToolFiles:
        """A :class:`ToolFiles` for one tool execution (use ``async with``)."""
        return ToolFiles(self, thread_id, operation_id)

    async def workdir(self, thread_id: str) -> WorkDir:
        """The thread's working directory; :class:`NoWorkingDirectory` without one."""
        head = await self._recorder.head(thread_id)
        if head is None:
            raise ThreadNotFound(thread_id)
        cwd = head.env.get("cwd")
        if not isinstance(cwd, str) or not await asyncio.to_thread(os.path.isdir, cwd):
            raise NoWorkingDirectory(thread_id, cwd)
        return WorkDir.of(thread_id, cwd)

    async def _record(
        self,
        thread_id: str,
        prepared: Sequence[_Prepared],
        *,
        rollback: NewRollback | None = None,
    ) -> list[FileChange]:
        changes = [p.change for p in prepared]
        stored = await self._encode(prepared, use_bases=True)
        try:
            return await self._recorder.record_file_changes(
                thread_id, changes, stored, rollback=rollback
            )
        except ContentMissing:
            # A content this relied on went (its last thread was deleted
            # meanwhile): give every content, whole, once more.
            stored = await self._encode(prepared, use_bases=False)
            return await self._recorder.record_file_changes(
                thread_id, changes, stored, rollback=rollback
            )

    async def _encode(
        self, prepared: Sequence[_Prepared], *, use_bases: bool
    ) -> list[StoredContent]:
        """The contents of ``prepared`` that are not stored yet, encoded: the
        content after a change as a delta against the content before it."""
        wanted: dict[str, tuple[bytes, bytes | None, str | None]] = {}
        for item in prepared:
            before, after = item.change.before, item.change.after
            known = before if isinstance(before, FileState) else None
            if known is not None and item.before_data is not None:
                wanted.setdefault(known.hash, (item.before_data, None, None))
            if isinstance(after, FileState) and item.after_data is not None:
                base = item.before_data if known is not None else None
                wanted.setdefault(
                    after.hash, (item.after_data, base, known.hash if known else None)
                )
        if not wanted:
            return []
        depths = await self._recorder.content_depths(list(wanted)) if use_bases else {}

        def encode_all() -> list[StoredContent]:
            done: dict[str, StoredContent] = {}
            for digest, (data, base, base_hash) in wanted.items():
                if digest in depths:
                    continue
                depth = None
                if use_bases and base_hash is not None:
                    depth = depths.get(base_hash)
                    if depth is None and base_hash in done:
                        depth = done[base_hash].depth
                if depth is None:
                    done[digest] = contents.encode(data, digest=digest)
                else:
                    done[digest] = contents.encode(
                        data, digest=digest, base=base, base_hash=base_hash, base_depth=depth
                    )
            return list(done.values())

        return await asyncio.to_thread(encode_all)

    # -- reading ----------------------------------------------------------

    async def content(self, content_hash: str) -> bytes:
        """The bytes of a stored content; :class:`ContentCorrupt` if it is not stored."""
        if content_hash in self._cache:
            return self._cache[content_hash]
        chain = await self._recorder.content_chain(content_hash)
        if not chain:
            raise ContentCorrupt(content_hash, "it is not stored")
        return await asyncio.to_thread(contents.decode_chain, chain, self._cache)

    async def changes(self, thread_id: str, *, operation_id: str | None = None) -> list[FileChange]:
        """The thread's file changes, oldest first (of one operation, if given)."""
        found = await self._recorder.file_changes(thread_id, operation_id=operation_id)
        if not found and await self._recorder.head(thread_id) is None:
            raise ThreadNotFound(thread_id)
        return found

    async def operations(
        self, thread_id: str, *, operation_id: str | None = None, diffs: bool = True
    ) -> list[FileOperation]:
        """The thread's file changes grouped by operation, in the order the
        operations began, each change with its unified diff (with ``diffs``)."""
        log = await self.changes(thread_id)
        journal = {r.operation_id: r for r in await self._recorder.file_rollbacks(thread_id)}
        dead = dead_seqs(log)
        grouped: dict[str, list[FileChange]] = {}
        for change in log:
            if operation_id is None or change.operation_id == operation_id:
                grouped.setdefault(change.operation_id, []).append(change)
        if operation_id is not None and operation_id not in grouped:
            raise OperationNotFound(thread_id, operation_id)
        listed: list[FileOperation] = []
        for op, changes in grouped.items():
            described = [
                FileDiff(change=c, diff=await self._diff(c) if diffs else "") for c in changes
            ]
            listed.append(
                FileOperation(
                    operation_id=op,
                    changes=tuple(described),
                    rollback=journal.get(op),
                    reverted=all(c.seq in dead for c in changes),
                )
            )
        return listed

    async def _diff(self, change: FileChange) -> str:
        if change.before_unknown or change.after_unknown:
            return unified_diff(change, None, None)  # a summary: nothing to diff against
        states = (change.before, change.after)
        if any(isinstance(s, FileState) and s.size > DIFF_LIMIT for s in states):
            return unified_diff(change, None, None, too_large=True)
        before = await self._content_of(change.before)
        after = await self._content_of(change.after)
        return unified_diff(change, before, after)

    async def _content_of(self, state: State) -> bytes | None:
        return await self.content(state.hash) if isinstance(state, FileState) else None

    # -- rolling back -----------------------------------------------------

    def _lock(self, thread_id: str) -> asyncio.Lock:
        return self._locks.setdefault(thread_id, asyncio.Lock())

    async def rollback_operation(
        self, thread_id: str, operation_id: str, *, force: bool = False, dry_run: bool = False
    ) -> RollbackReport:
        """Undo every change of ``operation_id``, newest first: a created file is
        removed, a modified one gets its earlier content and mode back, a
        deleted one comes back. See :mod:`threadline.files.rollback` for refusals."""
        async with self._lock(thread_id):
            space = await self.workdir(thread_id)
            resumed = await self._pending(thread_id, undoes_operation=operation_id)
            if resumed is not None:
                return await self._resume(space, resumed, force=force, dry_run=dry_run)
            changes = await self._recorder.file_changes(thread_id, operation_id=operation_id)
            if not changes:
                raise OperationNotFound(thread_id, operation_id)
            reverting = await self._recorder.file_reverts(thread_id, [c.seq for c in changes])
            paths = sorted({c.path for c in changes})
            latest = await self._recorder.latest_file_changes(thread_id, paths)
            plans, settled = plan_operation(changes, reverting, latest)
            report = RollbackReport(
                thread_id=thread_id, undoes_operation=operation_id, dry_run=dry_run
            )
            return await self._run(
                space, report, plans, settled, force=force, dry_run=dry_run, resuming=None
            )

    async def rollback_to(
        self, thread_id: str, message_id: str, *, force: bool = False, dry_run: bool = False
    ) -> RollbackReport:
        """Undo every change recorded after message ``message_id`` was appended:
        each file goes back to how it was then (the "rewind")."""
        async with self._lock(thread_id):
            space = await self.workdir(thread_id)
            version = await self._message_version(thread_id, message_id)
            resumed = await self._pending(thread_id, after_message=message_id)
            if resumed is not None:
                return await self._resume(space, resumed, force=force, dry_run=dry_run)
            changes = await self._recorder.file_changes(thread_id, since_version=version)
            report = RollbackReport(thread_id=thread_id, after_message=message_id, dry_run=dry_run)
            return await self._run(
                space, report, plan_rewind(changes), [], force=force, dry_run=dry_run, resuming=None
            )

    async def _message_version(self, thread_id: str, message_id: str) -> int:
        version = None
        for record in await self._recorder.deltas(thread_id):
            if isinstance(record.delta, MessageDelta) and record.delta.message.id == message_id:
                version = record.v
        if version is None:
            raise MessageNotFound(thread_id, message_id)
        return version

    async def _pending(
        self,
        thread_id: str,
        *,
        undoes_operation: str | None = None,
        after_message: str | None = None,
    ) -> FileRollback | None:
        """The interrupted rollback with this target, if any; any other
        interrupted rollback of the thread must be finished first."""
        unfinished = await self._recorder.file_rollbacks(thread_id, unfinished=True)
        for entry in unfinished:
            if (entry.undoes_operation, entry.after_message) == (undoes_operation, after_message):
                return entry
        if unfinished:
            entry = unfinished[0]
            hint = (
                f"threadline rollback {thread_id} --operation {entry.undoes_operation}"
                if entry.undoes_operation is not None
                else f"threadline rollback {thread_id} --to-message {entry.after_message}"
            )
            raise RollbackInterrupted(thread_id, entry.operation_id, hint)
        return None

    async def _resume(
        self, space: WorkDir, entry: FileRollback, *, force: bool, dry_run: bool
    ) -> RollbackReport:
        journaled = await self._recorder.file_changes(
            space.thread_id, operation_id=entry.operation_id
        )
        report = RollbackReport(
            thread_id=space.thread_id,
            undoes_operation=entry.undoes_operation,
            after_message=entry.after_message,
            operation_id=entry.operation_id,
            dry_run=dry_run,
            resumed=True,
        )
        return await self._run(
            space, report, plan_resume(journaled), [], force=force, dry_run=dry_run, resuming=entry
        )

    async def _run(
        self,
        space: WorkDir,
        report: RollbackReport,
        plans: Sequence[PathPlan],
        settled: Sequence[FileOutcome],
        *,
        force: bool,
        dry_run: bool,
        resuming: FileRollback | None,
    ) -> RollbackReport:
        steps, refused = await asyncio.to_thread(_inspect, space, plans, force, dry_run)
        outcomes: dict[str, FileOutcome] = {o.path: o for o in (*settled, *refused)}
        for step in steps:
            outcomes[step.plan.path] = step.decision.outcome
        writes = [s for s in steps if s.decision.write]
        operation_id = resuming.operation_id if resuming else None
        if not dry_run:
            # Journal first: what is about to be written is durable before any file moves.
            new = [s for s in writes if not s.plan.journaled or s.decision.outcome.forced]
            await self._check_stored(s.plan.target for s in writes)
            if new:
                operation_id = operation_id or f"R-{uuid7()}"
                journal = None
                if resuming is None:
                    journal = NewRollback(
                        operation_id=operation_id,
                        undoes_operation=report.undoes_operation,
                        after_message=report.after_message,
                    )
                await self._record(
                    space.thread_id,
                    [_rollback_record(operation_id, s) for s in new],
                    rollback=journal,
                )
            for step in writes:
                outcomes[step.plan.path] = await self._write(space, step)
            done = [s for s in steps if outcomes[s.plan.path].status != "failed"]
            await asyncio.to_thread(_tidy, space, done)
        finished = not any(o.status == "failed" for o in outcomes.values())
        if operation_id is not None and finished and not dry_run:
            await self._recorder.finish_rollback(space.thread_id, operation_id)
        return report.model_copy(
            update={
                "operation_id": operation_id,
                "finished": finished or dry_run,
                "files": tuple(outcomes[path] for path in sorted(outcomes)),
            }
        )

    async def _check_stored(self, states: Iterable[State]) -> None:
        """Refuse to start writing if a content to write back is not stored."""
        wanted = sorted({s.hash for s in states if isinstance(s, FileState)})
        stored = await self._recorder.content_depths(wanted)
        for content_hash in wanted:
            if content_hash not in stored:
                raise ContentCorrupt(content_hash, "it is not stored; nothing was rolled back")

    async def _write(self, space: WorkDir, step: _Step) -> FileOutcome:
        target = step.plan.target
        outcome = step.decision.outcome
        try:
            data = await self._content_of(target)  # never unknown: decide() refuses those
            await asyncio.to_thread(_put, space, step.plan, data)
        except (OSError, PathOutsideWorkspace) as exc:
            return outcome.model_copy(
                update={
                    "status": "failed",
                    "reason": f"{exc}; fix that, then run the rollback again to finish it",
                }
            )
        return outcome


class ToolFiles:
    """The files one tool execution writes, recorded before each write.

    ::

        async with store.track_files(thread_id, tool_call.id) as files:
            await files.write("src/app.py", new_source)
            await files.delete("src/old.py")

    Each call records the change (durably), then makes it: writes replace
    files atomically and make missing directories. Paths are relative to the
    thread's ``env.cwd`` (or absolute inside it). Once the block is left the
    object refuses further writes.
    """

    def __init__(self, tracker: FileTracker, thread_id: str, operation_id: str) -> None:
        self.thread_id = thread_id
        self.operation_id = operation_id
        self._tracker = tracker
        self._changes: list[FileChange] = []
        self._closed = False

    @property
    def changes(self) -> tuple[FileChange, ...]:
        """What was recorded through this object, in order."""
        return tuple(self._changes)

    async def __aenter__(self) -> Self:
        await self._tracker.workdir(self.thread_id)  # fail early without a cwd
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True

    def _check_open(self, path: str | os.PathLike[str]) -> None:
        if self._closed:
            raise InvalidFileChange(
                self.thread_id,
                os.fspath(path),
                f"the file tracking of operation {self.operation_id} has ended",
            )

    async def read(self, path: str | os.PathLike[str]) -> bytes:
        """The bytes of a file inside the working directory."""
        space = await self._tracker.workdir(self.thread_id)
        _, real = space.resolve(path)
        return await asyncio.to_thread(real.read_bytes)

    async def write(
        self, path: str | os.PathLike[str], content: bytes | str, *, mode: int | None = None
    ) -> FileChange:
        """Create or replace a file (``str`` is written as UTF-8)."""
        self._check_open(path)
        space = await self._tracker.workdir(self.thread_id)
        _, real = space.resolve(path)
        exists = await asyncio.to_thread(real.exists)
        change = await self._tracker.record_change(
            self.thread_id,
            self.operation_id,
            path=path,
            type="modify" if exists else "create",
            new_content=content,
            mode=mode,
        )
        data = content.encode() if isinstance(content, str) else content
        assert isinstance(change.after, FileState)
        await asyncio.to_thread(workdir.write_file, real, data, change.after.mode)
        self._changes.append(change)
        return change

    async def delete(self, path: str | os.PathLike[str]) -> FileChange:
        """Delete a file."""
        self._check_open(path)
        space = await self._tracker.workdir(self.thread_id)
        _, real = space.resolve(path)
        change = await self._tracker.record_change(
            self.thread_id, self.operation_id, path=path, type="delete"
        )
        await asyncio.to_thread(os.unlink, real)
        self._changes.append(change)
        return change


# -- work done in worker threads (disk I/O) -------------------------------


def _prepare(
    space: WorkDir,
    operation_id: str,
    path: str | os.PathLike[str],
    type: ChangeType,
    data: bytes | None,
    mode: int | None,
) -> _Prepared:
    relative, real = space.resolve(path)
    try:
        disk = workdir.read_file(real)
    except OSError as exc:
        raise InvalidFileChange(space.thread_id, relative, f"cannot read it ({exc})") from exc
    if disk.kind == "other":
        raise InvalidFileChange(space.thread_id, relative, "it is not a regular file")
    if type == "create" and disk.kind == "file":
        raise InvalidFileChange(space.thread_id, relative, "it exists already; record a modify")
    if type != "create" and disk.kind == "missing":
        raise InvalidFileChange(
            space.thread_id, relative, f"it does not exist, so there is nothing to {type}"
        )
    after = None
    if data is not None:
        if mode is None:
            mode = disk.state.mode if disk.state is not None else workdir.default_mode()
        after = FileState(hash=contents.content_hash(data), size=len(data), mode=mode)
    change = NewFileChange(
        operation_id=operation_id,
        path=relative,
        before=disk.state,
        after=after,
        dirs=space.missing_dirs(relative) if type == "create" else (),
    )
    return _Prepared(change, disk.data, data)


def _inspect(
    space: WorkDir, plans: Sequence[PathPlan], force: bool, dry_run: bool
) -> tuple[list[_Step], list[FileOutcome]]:
    """Read the file of each plan and decide; paths that now lead outside the
    working directory, or cannot be read, are refused."""
    steps: list[_Step] = []
    refused: list[FileOutcome] = []
    for plan in plans:
        try:
            real = space.real(plan.path)
            disk = workdir.read_file(real)
        except (PathOutsideWorkspace, OSError) as exc:
            refused.append(
                FileOutcome(
                    path=plan.path,
                    action="none",
                    status="refused",
                    reason=str(exc),
                    changes=plan.undoes,
                )
            )
            continue
        decision = decide(plan, disk, force=force, dry_run=dry_run)
        keep = decision.write and decision.outcome.forced
        if not keep:  # only an overwritten file's bytes are stored
            disk = DiskFile(disk.kind, disk.state)
        create_dirs: tuple[str, ...] = ()
        if decision.write and disk.state is None and plan.target is not None:
            create_dirs = space.missing_dirs(plan.path)
        steps.append(_Step(plan, disk, decision, create_dirs))
    return steps, refused


def _rollback_record(operation_id: str, step: _Step) -> _Prepared:
    """The change a rollback step records: from what is on disk to the target."""
    before = step.disk.state
    target = step.plan.target
    dirs = step.create_dirs if before is None else ()
    if target is None:
        dirs = step.plan.remove_dirs
    change = NewFileChange(
        operation_id=operation_id,
        path=step.plan.path,
        before=before,
        after=target,
        dirs=dirs,
        reverts=() if step.plan.journaled else step.plan.reverts,
    )
    return _Prepared(change, step.disk.data, None)


def _put(space: WorkDir, plan: PathPlan, data: bytes | None) -> None:
    real = space.real(plan.path)  # resolved again right before the write
    workdir.discard_stale_temp(real)
    if plan.target is None:
        workdir.remove_file(real)
    else:
        assert data is not None
        assert isinstance(plan.target, FileState)  # decide() refuses a content not recorded
        workdir.write_file(real, data, plan.target.mode)


def _tidy(space: WorkDir, steps: Sequence[_Step]) -> None:
    """After the writes: remove the directories that removed files' creates
    made, once empty (deepest first, so a tree of them goes), and what an
    interrupted rollback may have left, stale temporary files."""
    dirs: set[str] = set()
    for step in steps:
        if step.plan.target is None and step.decision.outcome.status in ("done", "unchanged"):
            dirs.update(step.plan.remove_dirs)
        if step.decision.write:
            continue
        try:
            workdir.discard_stale_temp(space.real(step.plan.path))
        except PathOutsideWorkspace:
            continue
    workdir.remove_empty_dirs(space, dirs)
