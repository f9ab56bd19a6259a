"""Cold storage: archive inactive threads to an object store, restore them, recover.

**Object layout.** One object per thread and per archive operation, at
``threads/<thread id>/<op id>.json.zst`` (an id that is not plain
``[A-Za-z0-9_-]`` is replaced by ``x-`` and the start of its SHA-256). The
object is the thread's whole delta log, one JSON document::

    {"format": "threadline.archive/1", "thread_id": "T-...", "head": {...},
     "log": [{"v": 1, "at": 1750000000000, "delta": {"type": "thread:create", ...}}, ...]}

compressed as one zstd frame that carries its content size and a content
checksum. The SHA-256 of the object's bytes, its size and the thread's version
are kept in the thread's archived metadata (:class:`~threadline.model.ArchivedObject`).
A fresh key per operation means an object is never overwritten: a leftover of an
interrupted operation can be deleted without touching a newer archive.

**Archive** (:meth:`Lifecycle.archive`), crash-safe at every step:

1. take the writer leases of the thread and its sub-agent threads
   (``child_thread_ids``, at any depth), so no writer changes them meanwhile;
2. read their logs and encode the objects;
3. record the operation in the database (a :class:`~threadline.model.LifecycleOp`);
4. write every object and read it back: its SHA-256 must be the one computed;
5. in one transaction, check that no thread moved on (an append without a
   writer is refused by the version check), replace the active rows by the
   metadata and drop the operation's record.

A crash before 5 leaves the threads active and the record: recovery finishes
the move if every object is intact and every thread is still at its version,
else deletes the objects. A crash after 5 leaves them archived.

**Restore** (:meth:`Lifecycle.restore`): read and check every object (SHA-256,
zstd checksum, the log folds to the recorded head); in one transaction put the
logs back with their original versions and commit times, drop the metadata
and record the objects left to delete; then delete them and the record. A
crash before the transaction changes nothing; after it, recovery deletes the
objects.

**Recovery** (:meth:`Lifecycle.recover`, run by ``ThreadStore.open``) handles
every recorded operation whose owner is gone: an archive operation is
recovered only when the writer leases of its threads can be taken (a live
archiver holds them; the operating system frees them when it dies).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import obstore
import orjson
import zstandard
from obstore.exceptions import BaseError as ObjectStoreError
from obstore.store import LocalStore, MemoryStore
from obstore.store import from_url as store_from_url
from pydantic import BaseModel, ValidationError

from threadline.deltas import Delta, delta_to_json, fold_head
from threadline.errors import (
    ArchiveObjectCorrupt,
    ArchiveObjectMissing,
    ArchiveUnavailable,
    InvalidDelta,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.ids import now_ms, uuid7
from threadline.model import (
    ArchivedObject,
    ArchivedThread,
    LifecycleOp,
    ThreadHead,
    stored_context,
)
from threadline.recorders.roles import ArchiveLedger, RecordedDelta, WriterLease

if TYPE_CHECKING:
    from obstore.store import ObjectStore

log = logging.getLogger(__name__)

FORMAT = "threadline.archive/1"
ARCHIVE_URL_ENV = "THREADLINE_ARCHIVE_URL"
OBJECT_PREFIX = "threads/"
DEFAULT_LEVEL = 3
DEFAULT_CONCURRENCY = 4

Progress = Callable[[int, int], None]
"""Called with (threads done, threads in all) as work advances."""


# -- cold storage ------------------------------------------------------------------


class ColdStorage:
    """An object store (through ``obstore``) and the URL that names it in messages.

    The one place where object-store errors become threadline errors: a missing
    object reads as ``None``; anything else raises :class:`ArchiveUnavailable`.
    """

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url.rstrip("/")

    @classmethod
    def from_url(cls, url: str) -> ColdStorage:
        """``file:///path`` or a plain path (a local folder, created if needed),
        ``memory://``, or any ``s3://``, ``gs://``, ``az://`` (...) URL that
        ``obstore`` understands, with credentials from the usual environment."""
        if "://" not in url:
            return cls.local(Path(url))
        try:
            if url.startswith("file://"):
                Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
                return cls(LocalStore.from_url(url), url)
            if url.startswith("memory://"):
                return cls(MemoryStore(), url)
            return cls(store_from_url(url), url)
        except (ObjectStoreError, ValueError, OSError) as exc:
            raise ArchiveUnavailable(url, str(exc)) from exc

    @classmethod
    def local(cls, folder: Path) -> ColdStorage:
        """A folder on this machine (created if needed)."""
        folder = folder.resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveUnavailable(str(folder), str(exc)) from exc
        return cls(LocalStore(folder), folder.as_uri())

    @classmethod
    def in_memory(cls) -> ColdStorage:
        """Objects in this process's memory: for ``:memory:`` stores and tests."""
        return cls(MemoryStore(), "memory://")

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}"

    async def put(self, key: str, data: bytes) -> None:
        try:
            await obstore.put_async(self.store, key, data, use_multipart=False)
        except (ObjectStoreError, OSError) as exc:
            raise ArchiveUnavailable(self.url_of(key), str(exc)) from exc

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` if there is no such object."""
        try:
            result = await obstore.get_async(self.store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None
        except (ObjectStoreError, OSError) as exc:
            raise ArchiveUnavailable(self.url_of(key), str(exc)) from exc

    async def delete(self, key: str) -> None:
        """Delete the object; a missing one is not an error."""
        try:
            await obstore.delete_async(self.store, key)
        except FileNotFoundError:
            return
        except (ObjectStoreError, OSError) as exc:
            raise ArchiveUnavailable(self.url_of(key), str(exc)) from exc

    async def keys(self, prefix: str = OBJECT_PREFIX) -> list[str]:
        """Every object key under ``prefix``."""
        found: list[str] = []
        try:
            async for batch in obstore.list(self.store, prefix):
                found.extend(meta["path"] for meta in batch)
        except FileNotFoundError:
            return []
        except (ObjectStoreError, OSError) as exc:
            raise ArchiveUnavailable(self.url_of(prefix), str(exc)) from exc
        return found


def default_cold_storage(location: str, url: str | None = None) -> ColdStorage:
    """The cold storage of a store at ``location``: ``url`` if given, else
    ``$THREADLINE_ARCHIVE_URL``, else a folder beside the database
    (``threads.db`` → ``threads.archive/``, so under ``$THREADLINE_HOME`` for
    the default store), or memory for an in-memory store."""
    chosen = url or os.environ.get(ARCHIVE_URL_ENV)
    if chosen:
        return ColdStorage.from_url(chosen)
    if location == ":memory:":
        return ColdStorage.in_memory()
    if "://" in location:
        raise ArchiveUnavailable(
            location, f"a store at a URL needs an archive URL (archive_url= or ${ARCHIVE_URL_ENV})"
        )
    return ColdStorage.local(Path(location).with_suffix(".archive"))


# -- the object format -------------------------------------------------------------

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def object_key(thread_id: str, op_id: str) -> str:
    """Where the archive of ``thread_id`` made by operation ``op_id`` goes."""
    name = thread_id
    if not _PLAIN_ID.fullmatch(thread_id):
        name = "x-" + hashlib.sha256(thread_id.encode()).hexdigest()[:40]
    return f"{OBJECT_PREFIX}{name}/{op_id}.json.zst"


def encode_log(head: ThreadHead, log: Sequence[RecordedDelta]) -> bytes:
    """The uncompressed object: the thread's head and its whole log, as JSON."""
    entries = b",".join(
        b'{"v":%d,"at":%d,"delta":%b}' % (r.v, r.at, delta_to_json(r.delta)) for r in log
    )
    return b"".join(
        (
            b'{"format":',
            orjson.dumps(FORMAT),
            b',"thread_id":',
            orjson.dumps(head.id),
            b',"head":',
            head.model_dump_json().encode(),
            b',"log":[',
            entries,
            b"]}",
        )
    )


class _LoggedDelta(BaseModel):
    v: int
    at: int
    delta: Delta


class _Payload(BaseModel):
    format: Literal["threadline.archive/1"]
    thread_id: str
    head: ThreadHead
    log: list[_LoggedDelta]


def decode_log(raw: bytes) -> tuple[ThreadHead, list[RecordedDelta]]:
    """The head and log of an uncompressed object (pydantic errors if malformed)."""
    payload = _Payload.model_validate_json(raw, context=stored_context())
    thread_id = payload.thread_id
    return payload.head, [RecordedDelta(thread_id, e.v, e.at, e.delta) for e in payload.log]


def compress(raw: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    return compressor.compress(raw)


def decompress(data: bytes) -> bytes:
    """Raises :class:`zstandard.ZstdError` for a damaged frame (checksum included)."""
    return zstandard.ZstdDecompressor().decompress(data)


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PackedThread:
    """One thread ready to go to cold storage: its folded head and object."""

    head: ThreadHead
    object: ArchivedObject
    data: bytes


def pack(log: Sequence[RecordedDelta], op_id: str, level: int = DEFAULT_LEVEL) -> PackedThread:
    """Encode and compress a whole log into its object (CPU only, no I/O)."""
    head = fold_head(r.delta for r in log)
    raw = encode_log(head, log)
    data = compress(raw, level)
    return PackedThread(
        head,
        ArchivedObject(
            thread_id=head.id,
            key=object_key(head.id, op_id),
            checksum=checksum(data),
            size=len(data),
            raw_size=len(raw),
            v=head.v,
        ),
        data,
    )


def unpack(entry: ArchivedThread, data: bytes, url: str) -> list[RecordedDelta]:
    """The log in ``data``, checked against ``entry`` (the thread's metadata)
    end to end; :class:`ArchiveObjectCorrupt` names what does not match."""
    thread_id = entry.id
    found = checksum(data)
    if found != entry.object.checksum:
        raise ArchiveObjectCorrupt(
            thread_id, url, f"SHA-256 {found[:16]}… instead of {entry.object.checksum[:16]}…"
        )
    try:
        head, records = decode_log(decompress(data))
    except zstandard.ZstdError as exc:
        raise ArchiveObjectCorrupt(thread_id, url, f"zstd: {exc}") from exc
    except ValidationError as exc:
        raise ArchiveObjectCorrupt(thread_id, url, f"not a {FORMAT} log") from exc
    if head.id != thread_id or any(r.thread_id != thread_id for r in records):
        raise ArchiveObjectCorrupt(thread_id, url, f"it holds thread {head.id}")
    if [r.v for r in records] != list(range(1, entry.object.v + 1)):
        raise ArchiveObjectCorrupt(thread_id, url, f"its log is not versions 1..{entry.object.v}")
    try:
        folded = fold_head(r.delta for r in records)
    except InvalidDelta as exc:
        raise ArchiveObjectCorrupt(thread_id, url, f"its log does not fold: {exc}") from exc
    if folded != head or folded != entry.head.model_copy(update={"archived_at": None}):
        raise ArchiveObjectCorrupt(thread_id, url, "its log does not fold to the recorded head")
    return records


# -- the operations ----------------------------------------------------------------


class Lifecycle:
    """Archive, restore and recovery of the threads of one recorder.

    ``ThreadStore`` delegates to this; it talks only to the storage roles it needs
    (an :class:`~threadline.recorders.roles.ArchiveLedger`)
    and to :class:`ColdStorage`.
    """

    def __init__(
        self, recorder: ArchiveLedger, cold: ColdStorage, *, level: int = DEFAULT_LEVEL
    ) -> None:
        self.recorder = recorder
        self.cold = cold
        self.level = level

    # -- choosing -----------------------------------------------------------------

    async def family(self, root: ThreadHead) -> list[ThreadHead]:
        """``root`` and its active sub-agent threads at any depth, parents first."""
        members = [root]
        seen = {root.id}
        pending = list(root.child_thread_ids)
        while pending:
            child_id = pending.pop(0)
            if child_id in seen:
                continue
            seen.add(child_id)
            head = await self.recorder.head(child_id)
            if head is not None:
                members.append(head)
                pending.extend(head.child_thread_ids)
        return members

    async def inactive_families(self, older_than: timedelta, now: int) -> list[list[ThreadHead]]:
        """The families (a thread that is not an active thread's sub-agent, with
        its sub-agents) whose every member's last activity is before
        ``now - older_than``, oldest first."""
        cutoff = now - int(older_than.total_seconds() * 1000)
        candidates: list[ThreadHead] = []
        after = (cutoff, "")  # (last_activity, id) < (cutoff, ""): last_activity < cutoff
        while True:
            page = await self.recorder.list_heads(limit=500, after=after)
            candidates.extend(page)
            if len(page) < 500:
                break
            after = (page[-1].last_activity, page[-1].id)
        families: list[list[ThreadHead]] = []
        for head in reversed(candidates):
            if await self._is_linked_sub_agent(head):
                continue  # it goes with its parent
            members = await self.family(head)
            if all(member.last_activity < cutoff for member in members):
                families.append(members)
        return families

    async def _is_linked_sub_agent(self, head: ThreadHead) -> bool:
        if head.parent_thread_id is None:
            return False
        parent = await self.recorder.head(head.parent_thread_id)
        return parent is not None and head.id in parent.child_thread_ids

    # -- archiving ----------------------------------------------------------------

    async def archive(
        self, thread_id: str, *, inactive_before: int | None = None, dry_run: bool = False
    ) -> list[str]:
        """Move a thread and its sub-agent threads to cold storage; returns their
        ids (``[]`` if it is already archived, or, with ``inactive_before``, if
        one of them was active at or after that time when it was read). With
        ``dry_run``, only says which threads would move."""
        root = await self.recorder.head(thread_id)
        if root is None:
            if await self.recorder.archived(thread_id) is not None:
                return []
            raise ThreadNotFound(thread_id)
        members = await self.family(root)
        if dry_run:
            return [m.id for m in members]
        leases = self._take_leases([m.id for m in members])
        try:
            logs = [await self.recorder.deltas(m.id) for m in members]
            op_id = str(uuid7())
            packed = await asyncio.to_thread(
                lambda: [pack(one, op_id, self.level) for one in logs if one]
            )
            if len(packed) != len(members):  # deleted since it was listed
                return []
            if inactive_before is not None and any(
                p.head.last_activity >= inactive_before for p in packed
            ):
                return []
            op = LifecycleOp(
                id=op_id, kind="archive", started=now_ms(), objects=tuple(p.object for p in packed)
            )
            await self.recorder.begin_lifecycle(op)
            try:
                await asyncio.gather(*(self._put_verified(p.object, p.data) for p in packed))
                archived_at = now_ms()
                await self.recorder.commit_archive(
                    op.id,
                    [
                        ArchivedThread(
                            head=p.head.model_copy(update={"archived_at": archived_at}),
                            object=p.object,
                        )
                        for p in packed
                    ],
                )
            except BaseException:
                await self._undo_archive(op)
                raise
        finally:
            for lease in leases:
                lease.release()
        log.info("archived %s to %s", ", ".join(p.head.id for p in packed), self.cold.url)
        return [p.head.id for p in packed]

    async def archive_inactive(
        self,
        older_than: timedelta,
        *,
        now: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Archive every family inactive for ``older_than``; returns the ids moved
        (with ``dry_run``, the ids that would move, moving nothing).

        A family that is written to meanwhile (its writer is held, or a thread
        moved on) is left active and logged; any other error stops the run.
        """
        at = now_ms() if now is None else now
        families = await self.inactive_families(older_than, at)
        if dry_run:
            return [head.id for family in families for head in family]
        cutoff = at - int(older_than.total_seconds() * 1000)
        total = sum(len(f) for f in families)
        done = 0
        archived: list[str] = []
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(family: list[ThreadHead]) -> None:
            nonlocal done
            async with gate:
                try:
                    archived.extend(await self.archive(family[0].id, inactive_before=cutoff))
                except (WriterBusy, VersionConflict, ThreadNotFound) as exc:
                    log.info("left thread %s active: %s", family[0].id, exc)
            done += len(family)
            if progress is not None:
                progress(done, total)

        try:
            async with asyncio.TaskGroup() as group:
                for family in families:
                    group.create_task(one(family))
        except* ThreadlineError as failed:
            # The first failure (cold storage unavailable, say) as itself: the other
            # families stopped with it, and what did move stays archived.
            raise failed.exceptions[0] from None
        return archived

    async def _put_verified(self, obj: ArchivedObject, data: bytes) -> None:
        url = self.cold.url_of(obj.key)
        await self.cold.put(obj.key, data)
        stored = await self.cold.get(obj.key)
        if stored is None:
            raise ArchiveUnavailable(url, "the object just written cannot be read back")
        if checksum(stored) != obj.checksum:
            raise ArchiveUnavailable(url, "the object read back differs from what was written")

    async def _undo_archive(self, op: LifecycleOp) -> None:
        """Delete an unfinished archive's objects, then its record. If this fails
        too, the record stays and recovery retries."""
        try:
            await asyncio.shield(self._delete_objects_and_end(op))
        except ThreadlineError as exc:
            log.warning("could not undo archive op %s now (recovery will): %s", op.id, exc)

    async def _delete_objects_and_end(self, op: LifecycleOp) -> None:
        await asyncio.gather(*(self.cold.delete(o.key) for o in op.objects))
        await self.recorder.end_lifecycle(op.id)

    def is_running(self, op: LifecycleOp) -> bool:
        """Whether a recorded archive op is still running (in this process or
        another): its threads' writer leases are held."""
        if op.kind != "archive":
            return False
        try:
            leases = self._take_leases(op.thread_ids)
        except WriterBusy:
            return True
        for lease in leases:
            lease.release()
        return False

    def _take_leases(self, thread_ids: Sequence[str]) -> list[WriterLease]:
        leases: list[WriterLease] = []
        try:
            for thread_id in thread_ids:
                leases.append(self.recorder.acquire_lease(thread_id))
        except BaseException:
            for lease in leases:
                lease.release()
            raise
        return leases

    # -- restoring ----------------------------------------------------------------

    async def restore(
        self,
        thread_id: str,
        *,
        with_subagents: bool = True,
        progress: Progress | None = None,
    ) -> list[str]:
        """Bring an archived thread (and, by default, its archived sub-agent
        threads) back to active storage exactly as it was; returns their ids
        (``[]`` if it is active). A missing or damaged object raises
        :class:`ArchiveObjectMissing` or :class:`ArchiveObjectCorrupt` naming
        the thread and the object, and changes nothing."""
        entry = await self.recorder.archived(thread_id)
        if entry is None:
            if await self.recorder.head(thread_id) is not None:
                return []
            raise ThreadNotFound(thread_id)
        entries = await self._archived_family(entry) if with_subagents else [entry]
        logs: list[list[RecordedDelta]] = []
        for number, one in enumerate(entries, start=1):
            logs.append(await self.read_archived_log(one))
            if progress is not None:
                progress(number, len(entries))
        op = LifecycleOp(
            id=str(uuid7()),
            kind="restore",
            started=now_ms(),
            objects=tuple(e.object for e in entries),
        )
        try:
            await self.recorder.commit_restore(logs, op)
        except (ThreadExists, ThreadNotFound, VersionConflict):
            if await self.recorder.head(thread_id) is not None:
                return []  # restored by someone else meanwhile
            raise
        await self._finish_restore(op)
        ids = [e.id for e in entries]
        log.info("restored %s from %s", ", ".join(ids), self.cold.url)
        return ids

    async def _archived_family(self, root: ArchivedThread) -> list[ArchivedThread]:
        members = [root]
        seen = {root.id}
        pending = list(root.head.child_thread_ids)
        while pending:
            child_id = pending.pop(0)
            if child_id in seen:
                continue
            seen.add(child_id)
            entry = await self.recorder.archived(child_id)
            if entry is not None:
                members.append(entry)
                pending.extend(entry.head.child_thread_ids)
        return members

    async def read_archived_log(self, entry: ArchivedThread) -> list[RecordedDelta]:
        """The whole log of an archived thread, read from its object and checked."""
        url = self.cold.url_of(entry.object.key)
        data = await self.cold.get(entry.object.key)
        if data is None:
            raise ArchiveObjectMissing(entry.id, url)
        return await asyncio.to_thread(unpack, entry, data, url)

    async def _finish_restore(self, op: LifecycleOp) -> None:
        try:
            await self._delete_objects_and_end(op)
        except ThreadlineError as exc:  # the threads are back; only cleanup is left
            log.warning("restore op %s left objects to delete (recovery will): %s", op.id, exc)

    # -- recovery -----------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Finish or undo every operation interrupted by a crash; returns (and
        logs) one line per operation handled. An archive whose threads' leases
        are held elsewhere is still running there and is left alone."""
        done: list[str] = []
        for op in await self.recorder.pending_lifecycle():
            try:
                action = await self.recover_op(op)
            except ArchiveUnavailable as exc:  # opening the store must not depend on it
                log.warning("recovery of %s op %s postponed: %s", op.kind, op.id, exc)
                continue
            if action is not None:
                log.warning("recovery: %s", action)
                done.append(action)
        return done

    async def recover_op(self, op: LifecycleOp) -> str | None:
        """Finish or undo one recorded op; what was done, or ``None`` if it is an
        archive still running in another process (its leases are held)."""
        if op.kind == "restore":
            await self._delete_objects_and_end(op)
            return (
                f"finished the restore of {_names(op)}: deleted its "
                f"{len(op.objects)} archive object(s)"
            )
        try:
            leases = self._take_leases(op.thread_ids)
        except WriterBusy:
            log.info("archive op %s is still running elsewhere", op.id)
            return None
        try:
            return await self._recover_archive(op)
        finally:
            for lease in leases:
                lease.release()

    async def _recover_archive(self, op: LifecycleOp) -> str:
        """Finish the move if every object is intact and every thread is still
        at the version written; else delete the objects (the threads stay active)."""
        logs = [await self.recorder.deltas(o.thread_id) for o in op.objects]
        intact = all(len(one) == o.v for one, o in zip(logs, op.objects, strict=True))
        if intact:
            for o in op.objects:
                stored = await self.cold.get(o.key)
                if stored is None or checksum(stored) != o.checksum:
                    intact = False
                    break
        if intact:
            archived_at = now_ms()
            entries = [
                ArchivedThread(
                    head=fold_head(r.delta for r in one).model_copy(
                        update={"archived_at": archived_at}
                    ),
                    object=o,
                )
                for one, o in zip(logs, op.objects, strict=True)
            ]
            try:
                await self.recorder.commit_archive(op.id, entries)
                return f"finished the interrupted archive of {_names(op)}"
            except (VersionConflict, ThreadNotFound):
                pass
        await self._delete_objects_and_end(op)
        return f"undid the interrupted archive of {_names(op)}: it stays active"


def _names(op: LifecycleOp) -> str:
    ids = op.thread_ids
    return ids[0] if len(ids) == 1 else f"{ids[0]} and {len(ids) - 1} sub-agent thread(s)"
