"""LangGraph checkpoints in a :class:`~threadline.ThreadStore`: the async work
behind :mod:`threadline.integrations.langgraph`'s savers.

One threadline thread per (thread_id, checkpoint_ns), with a deterministic id
(:func:`thread_key`), so every process finds the same one. A subgraph's
namespace is a child thread of the root namespace's thread. Checkpoints and
pending writes are :class:`~threadline.deltas.RecordDelta` records appended
through the planner (see :mod:`threadline.integrations.checkpoint_log`), and
the ``messages`` channel is mirrored as the thread's messages, so a graph's
conversation reads like any thread (viewer, search, cost, sync, archive).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from pydantic import JsonValue

from threadline.deltas import ChildLinkDelta, Delta, MessageDelta, RecordDelta, ThreadCreate
from threadline.deltas import TruncateDelta as Truncate
from threadline.errors import ThreadExists, ThreadNotFound, VersionConflict
from threadline.integrations import langchain_messages as lc
from threadline.integrations.checkpoint_log import (
    KIND_CHECKPOINT,
    KIND_DROP,
    KIND_WRITES,
    MESSAGES_REF,
    CheckpointEntry,
    CheckpointLog,
    MirroredMessage,
    blob_hash,
    encode_blob,
    json_or_none,
)
from threadline.recorders.roles import Append
from threadline.store import ThreadStore

_NAMESPACE = uuid.UUID("6f1b0f38-5d0e-4c1e-9a55-6c616e676772")
META_KEY = "langgraph"
"""The key of a thread's metadata that names its LangGraph thread and namespace."""


def thread_key(thread_id: str, checkpoint_ns: str = "") -> str:
    """The threadline thread of a LangGraph (thread_id, checkpoint_ns): the same
    in every process."""
    name = thread_id + "\0" + checkpoint_ns
    return f"T-{uuid.uuid5(_NAMESPACE, name)}"


def _configurable(config: RunnableConfig) -> dict[str, Any]:
    configurable = config.get("configurable") or {}
    if "thread_id" not in configurable:
        raise ValueError("A LangGraph config needs configurable.thread_id")
    return configurable


Found = tuple[CheckpointLog, CheckpointEntry, str, str]
"""A listed checkpoint: its thread's index, its entry, thread id, namespace."""


class CheckpointStore:
    """The checkpoints of LangGraph threads in a ThreadStore (async; see the module)."""

    def __init__(
        self,
        store: ThreadStore,
        serde: SerializerProtocol,
        *,
        messages_channel: str | None = "messages",
        cache_threads: int = 256,
    ) -> None:
        self.store = store
        self.serde = serde
        self.messages_channel = messages_channel
        self._cache_threads = cache_threads
        self._logs: OrderedDict[str, CheckpointLog] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the index of a thread ---------------------------------------------

    def _lock(self, thread_id: str) -> asyncio.Lock:
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        return lock

    async def log(self, thread_id: str) -> CheckpointLog | None:
        """The index of a thread, caught up with its log (``None``: no thread)."""
        head = await self.store.recorder.head(thread_id)
        log = self._logs.get(thread_id)
        if head is None:
            self._logs.pop(thread_id, None)
            try:  # an archived thread comes back from cold storage
                records = await self.store.history(thread_id)
            except ThreadNotFound:
                return None
            if not records:  # created since its head was read: not there for this read
                return None
            log = CheckpointLog(thread_id)
        else:
            if log is None or log.created != head.created or head.v < log.v:
                log = CheckpointLog(thread_id)
            records = await self.store.history(thread_id, after=log.v) if head.v > log.v else []
        for record in records:
            log.absorb(record.v, record.delta)
        log.child_thread_ids = head.child_thread_ids if head else log.child_thread_ids
        self._logs[thread_id] = log
        self._logs.move_to_end(thread_id)
        while len(self._logs) > self._cache_threads:
            self._logs.popitem(last=False)
        return log

    def forget(self, thread_id: str) -> None:
        self._logs.pop(thread_id, None)

    async def namespace_logs(
        self, thread_id: str, checkpoint_ns: str | None
    ) -> list[CheckpointLog]:
        """The indexes of one namespace, or of every namespace of a LangGraph thread."""
        root = await self.log(thread_key(thread_id, checkpoint_ns or ""))
        if checkpoint_ns is not None or root is None:
            return [] if root is None else [root]
        logs = [root]
        for child in root.child_thread_ids:
            child_log = await self.log(child)
            if child_log is not None:
                logs.append(child_log)
        return logs

    def threadline_thread_id(self, config: RunnableConfig) -> str:
        configurable = _configurable(config)
        return thread_key(str(configurable["thread_id"]), configurable.get("checkpoint_ns") or "")

    # -- writing ---------------------------------------------------------------

    async def _append(
        self,
        thread_id: str,
        checkpoint_ns: str,
        build: Callable[[CheckpointLog | None], list[Delta]],
    ) -> None:
        """Append the deltas ``build(log)`` returns to the thread of (thread_id,
        ns), creating it (and linking it under the root namespace's thread)
        first if needed; retried on a concurrent append."""
        key = thread_key(thread_id, checkpoint_ns)
        async with self._lock(key):
            while True:
                log = await self.log(key)
                deltas = build(log)
                if not deltas:
                    return
                expected = 0 if log is None else log.v
                if log is None:
                    deltas = [self._create(key, thread_id, checkpoint_ns), *deltas]
                appends: list[Append] = [(key, expected, deltas)]
                if log is None and checkpoint_ns:
                    appends.append(await self._link_under_root(thread_id, key))
                try:
                    await self.store.append_together(appends)
                except (VersionConflict, ThreadExists):
                    continue
                if log is None:
                    log = CheckpointLog(key)
                # by their versions: a reader may have indexed them meanwhile
                for offset, delta in enumerate(deltas, start=1):
                    log.absorb(expected + offset, delta)
                self._logs[key] = log
                return

    def _create(self, key: str, thread_id: str, checkpoint_ns: str) -> ThreadCreate:
        title = f"LangGraph {thread_id}" + (f" [{checkpoint_ns}]" if checkpoint_ns else "")
        return ThreadCreate(
            id=key,
            title=title,
            parent_thread_id=thread_key(thread_id) if checkpoint_ns else None,
            metadata={META_KEY: {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}},
        )

    async def _link_under_root(self, thread_id: str, child: str) -> Append:
        root_key = thread_key(thread_id)
        root = await self.log(root_key)
        link = ChildLinkDelta(thread_id=child)
        if root is None:
            return (root_key, 0, [self._create(root_key, thread_id, ""), link])
        return (root_key, root.v, [link])

    def _blob(self, log: CheckpointLog | None, new: dict[str, JsonValue], value: Any) -> str:
        kind, data = self.serde.dumps_typed(value)
        digest = blob_hash(kind, data)
        if (log is None or digest not in log.blobs) and digest not in new:
            new[digest] = encode_blob(kind, data)
        return digest

    def _json(self, log: CheckpointLog | None, new: dict[str, JsonValue], value: Any) -> JsonValue:
        as_json = json_or_none(value)
        if as_json is not None or value is None:
            return as_json
        return {"blob": self._blob(log, new, value)}

    async def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = _configurable(config)
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        parent_id = configurable.get("checkpoint_id")
        meta = get_serializable_checkpoint_metadata(config, metadata)
        without_values = {k: v for k, v in checkpoint.items() if k not in ("id", "channel_values")}

        def build(log: CheckpointLog | None) -> list[Delta]:
            blobs: dict[str, JsonValue] = {}
            deltas: list[Delta] = []
            parent = log.checkpoints.get(parent_id) if log and parent_id else None
            refs: dict[str, JsonValue] = {}
            values = checkpoint["channel_values"]
            for channel, version in checkpoint["channel_versions"].items():
                if channel not in values:
                    refs[channel] = ""
                    continue
                value = values[channel]
                if channel == self.messages_channel and lc.is_message_list(value):
                    deltas = self._mirror(log, value)
                    refs[channel] = f"{MESSAGES_REF}{len(value)}"
                    continue
                known = parent.blob_at(channel, version) if parent else None
                if known and channel not in new_versions:
                    refs[channel] = known
                else:
                    refs[channel] = self._blob(log, blobs, value)
            body: dict[str, JsonValue] = {
                "id": checkpoint["id"],
                "parent": parent_id,
                "cp": self._json(log, blobs, without_values),
                "meta": self._json(log, blobs, meta),
                "versions": self._json(log, blobs, dict(checkpoint["channel_versions"])),
                "values": refs,
            }
            if blobs:
                body["blobs"] = blobs
            deltas.append(RecordDelta(kind=KIND_CHECKPOINT, body=body))
            return deltas

        await self._append(thread_id, checkpoint_ns, build)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _mirror(self, log: CheckpointLog | None, messages: list[Any]) -> list[Delta]:
        """The deltas that turn the thread's messages into ``messages``: a
        truncate where they part (compared by value: a caller may have edited a
        message in place), then the new ones."""
        current = log.mirror if log else []
        common = 0
        for entry, message in zip(current, messages, strict=False):
            if not self._template(entry).equals(message):
                break
            common += 1
        deltas: list[Delta] = []
        if common < len(current):
            deltas.append(Truncate(from_index=common))
        for message in messages[common:]:
            deltas.append(MessageDelta.of(lc.to_threadline(message, self.serde)))
        return deltas

    async def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = _configurable(config)
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        checkpoint_id = configurable.get("checkpoint_id")
        if checkpoint_id is None:
            raise ValueError("put_writes needs configurable.checkpoint_id")

        def build(log: CheckpointLog | None) -> list[Delta]:
            existing = log.writes.get(checkpoint_id, {}) if log else {}
            blobs: dict[str, JsonValue] = {}
            items: list[JsonValue] = []
            for idx, (channel, value) in enumerate(writes):
                index = WRITES_IDX_MAP.get(channel, idx)
                if (task_id, index) in existing and channel not in WRITES_IDX_MAP:
                    continue  # a retried task's writes are kept once
                items.append([index, channel, self._blob(log, blobs, value)])
            if not items:
                return []
            body: dict[str, JsonValue] = {
                "checkpoint": checkpoint_id,
                "task": task_id,
                "path": task_path,
                "writes": items,
            }
            if blobs:
                body["blobs"] = blobs
            return [RecordDelta(kind=KIND_WRITES, body=body)]

        await self._append(thread_id, checkpoint_ns, build)

    async def drop(self, log: CheckpointLog, checkpoint_ids: Sequence[str]) -> None:
        """Forget checkpoints (and their writes) of one namespace's thread."""
        ids = sorted(set(checkpoint_ids))
        if not ids:
            return
        thread_id, ns = log.graph_thread_id, log.namespace

        def build(current: CheckpointLog | None) -> list[Delta]:
            present = [i for i in ids if current is not None and i in current.checkpoints]
            if not present:
                return []
            body: dict[str, JsonValue] = {"checkpoints": list(present)}
            return [RecordDelta(kind=KIND_DROP, body=body)]

        await self._append(thread_id, ns, build)

    # -- reading ---------------------------------------------------------------

    def _load_json(self, log: CheckpointLog, stored: JsonValue) -> Any:
        """A fresh copy of a stored value: LangGraph mutates the checkpoints it
        reads (``versions_seen``, ``channel_versions``), and the index must not
        see that."""
        if isinstance(stored, dict) and set(stored) == {"blob"} and isinstance(stored["blob"], str):
            return self.serde.loads_typed(log.blob(stored["blob"]))
        return orjson.loads(orjson.dumps(stored))

    def _template(self, entry: MirroredMessage) -> lc.Template:
        """The index's own decoded copy of a mirrored message (decoded once)."""
        if entry.obj is None:
            entry.obj = lc.Template.of(lc.from_threadline(entry.message, self.serde))
        template: lc.Template = entry.obj
        return template

    async def _messages(self, log: CheckpointLog, entry: CheckpointEntry, count: int) -> list[Any]:
        # objects of the reader's own on every read, as LangGraph's savers give:
        # callers edit them in place
        if log.mirror_is_current(entry.v, count):
            return [self._template(m).copy() for m in log.mirror[:count]]
        # an older branch (before a time-travel fork): the thread as it was then
        thread = await self.store.thread_at(log.thread_id, entry.v)
        return [lc.from_threadline(m, self.serde) for m in thread.messages[:count]]

    async def checkpoint_tuple(
        self, log: CheckpointLog, entry: CheckpointEntry, thread_id: str, checkpoint_ns: str
    ) -> CheckpointTuple:
        """The tuple LangGraph reads for one indexed checkpoint."""
        values: dict[str, Any] = {}
        for channel, ref in entry.values.items():
            if not ref:
                continue
            if ref.startswith(MESSAGES_REF):
                values[channel] = await self._messages(log, entry, int(ref[len(MESSAGES_REF) :]))
            else:
                values[channel] = self.serde.loads_typed(log.blob(ref))
        checkpoint = {**self._load_json(log, entry.checkpoint), "id": entry.id}
        checkpoint["channel_values"] = values
        writes = [
            (w.task_id, w.channel, self.serde.loads_typed(log.blob(w.ref)))
            for w in log.pending_writes(entry.id)
        ]
        configurable = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        parent = (
            {"configurable": {**configurable, "checkpoint_id": entry.parent_id}}
            if entry.parent_id
            else None
        )
        return CheckpointTuple(
            config={"configurable": {**configurable, "checkpoint_id": entry.id}},
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=cast(CheckpointMetadata, self._load_json(log, entry.metadata) or {}),
            parent_config=parent,  # type: ignore[arg-type]
            pending_writes=writes,
        )

    async def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = _configurable(config)
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        log = await self.log(thread_key(thread_id, checkpoint_ns))
        if log is None:
            return None
        checkpoint_id = configurable.get("checkpoint_id")
        entry = log.checkpoints.get(checkpoint_id) if checkpoint_id else log.latest
        if entry is None:
            return None
        return await self.checkpoint_tuple(log, entry, thread_id, checkpoint_ns)

    async def find_checkpoints(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> list[Found]:
        """The checkpoints LangGraph's ``list`` describes, newest first (by
        id), before their tuples are made: a caller that reads only the first
        few (``get_state_history`` cut short) makes only those
        (:meth:`checkpoint_tuple`)."""
        if config is None:
            targets = [(t, None) for t in await self.langgraph_threads()]
        else:
            configurable = _configurable(config)
            targets = [(str(configurable["thread_id"]), configurable.get("checkpoint_ns"))]
        wanted = (config or {}).get("configurable", {}).get("checkpoint_id")
        before_id = (before or {}).get("configurable", {}).get("checkpoint_id")
        found: list[tuple[str, CheckpointLog, CheckpointEntry, str, str]] = []
        for thread_id, checkpoint_ns in targets:
            for log in await self.namespace_logs(thread_id, checkpoint_ns):
                ns = log.namespace
                for entry in log.newest_first():
                    if wanted and entry.id != wanted:
                        continue
                    if before_id and entry.id >= before_id:
                        continue
                    if filter and not self._matches(log, entry, filter):
                        continue
                    found.append((entry.id, log, entry, thread_id, ns))
        found.sort(key=lambda item: item[0], reverse=True)
        if limit is not None:
            found = found[:limit]
        return [(log, e, t, ns) for _, log, e, t, ns in found]

    def _matches(self, log: CheckpointLog, entry: CheckpointEntry, filter: dict[str, Any]) -> bool:
        meta = self._load_json(log, entry.metadata) or {}
        return all(meta.get(key) == value for key, value in filter.items())

    async def langgraph_threads(self) -> list[str]:
        """Every LangGraph thread id the store holds (a scan of the thread list)."""
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_threads(200, cursor, include_archived=False)
            for head in page.threads:
                ref = head.metadata.get(META_KEY)
                if isinstance(ref, dict) and ref.get("checkpoint_ns") == "":
                    thread_id = ref.get("thread_id")
                    if isinstance(thread_id, str):
                        found.append(thread_id)
            cursor = page.next_cursor
            if cursor is None:
                return found

    # -- whole threads ---------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        root_key = thread_key(thread_id)
        root = await self.log(root_key)
        if root is None:
            return
        for key in (*root.child_thread_ids, root_key):
            self.forget(key)
            with contextlib.suppress(ThreadNotFound):
                await self.store.delete_thread(key)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = set(run_ids)
        if not runs:
            return
        for thread_id in await self.langgraph_threads():
            for log in await self.namespace_logs(thread_id, None):
                doomed = [e.id for e in log.checkpoints.values() if e.run_id() in runs]
                await self.drop(log, doomed)

    async def prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy {strategy!r}: keep_latest or delete")
        for thread_id in thread_ids:
            for log in await self.namespace_logs(thread_id, None):
                keep = self._kept(log) if strategy == "keep_latest" else set()
                await self.drop(log, [i for i in log.checkpoints if i not in keep])

    @staticmethod
    def _kept(log: CheckpointLog) -> set[str]:
        """The latest checkpoint and the ancestors its delta channels are rebuilt
        from: back to the nearest one storing a value of each of them."""
        entry = log.latest
        if entry is None:
            return set()
        keep = {entry.id}
        meta = entry.metadata if isinstance(entry.metadata, dict) else {}
        counters = meta.get("counters_since_delta_snapshot")
        needed = set(counters if isinstance(counters, dict) else {})
        needed = {c for c in needed if not entry.populated(c)}
        while needed and entry.parent_id in log.checkpoints:
            entry = log.checkpoints[entry.parent_id]
            keep.add(entry.id)
            needed = {c for c in needed if not entry.populated(c)}
        return keep

    async def copy_thread(self, source: str, target: str) -> None:
        """Copy every namespace's thread of ``source`` (its whole log, so the
        copy's history is the source's) to ``target``; the target must not exist."""
        if await self.log(thread_key(target)) is not None:
            raise ThreadExists(thread_key(target))
        root = await self.log(thread_key(source))
        if root is None:
            return
        appends: list[Append] = []
        links: list[Delta] = []
        for key in (thread_key(source), *root.child_thread_ids):
            history = await self.store.history(key)
            first = history[0].delta
            assert isinstance(first, ThreadCreate)
            ref = first.metadata.get(META_KEY)
            ns = ref.get("checkpoint_ns") if isinstance(ref, dict) else ""
            assert isinstance(ns, str)
            create = self._create(thread_key(target, ns), target, ns)
            rest = [r.delta for r in history[1:] if not isinstance(r.delta, ChildLinkDelta)]
            appends.append((create.id, 0, [create, *rest]))
            if ns:
                links.append(ChildLinkDelta(thread_id=create.id))
        root_id, _, root_deltas = appends[0]
        appends[0] = (root_id, 0, [*root_deltas, *links])
        await self.store.append_together(appends)
