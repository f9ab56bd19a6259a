"""The checkpoints of one LangGraph (thread_id, checkpoint_ns), indexed from
the log of the threadline thread that stores them. Pure: no I/O, no framework.

The thread's log holds, besides its messages, three kinds of
:class:`~threadline.deltas.RecordDelta`:

- ``langgraph:checkpoint``: one checkpoint — its id, its parent's, the
  checkpoint without its values (``cp``), its metadata (``meta``), and for
  each channel a reference (``values``): the hash of a content-addressed blob,
  ``m:<n>`` for "the thread's first ``n`` messages as of this record" (the
  mirrored messages channel), or ``""`` for a channel without a value. Blobs
  the log does not hold yet ride along in ``blobs`` (``hash → [type, codec,
  base64]``, zstd-compressed when that is smaller): an unchanged channel value
  is stored once per thread however many checkpoints refer to it.
- ``langgraph:writes``: pending writes of one task against one checkpoint.
- ``langgraph:drop``: checkpoints removed by ``prune``/``delete_for_runs``
  (they stay in the log; the index forgets them and their writes).

:class:`CheckpointLog` folds a log into an index (every checkpoint, its writes,
the blobs, the mirrored messages), so reading a checkpoint never replays the
log: a saver keeps one per thread and feeds it only the deltas it has not
seen (:meth:`CheckpointLog.absorb`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard
from pydantic import JsonValue

from threadline.deltas import Delta, MessageDelta, RecordDelta, ThreadCreate, TruncateDelta
from threadline.model import Message

KIND_CHECKPOINT = "langgraph:checkpoint"
KIND_WRITES = "langgraph:writes"
KIND_DROP = "langgraph:drop"

MESSAGES_REF = "m:"
"""Prefix of a reference to the thread's first ``n`` messages."""

_COMPRESSOR = zstandard.ZstdCompressor(level=3)
_DECOMPRESSOR = zstandard.ZstdDecompressor()


def blob_hash(kind: str, data: bytes) -> str:
    """The content address of a serialized value (its type and bytes)."""
    return hashlib.sha256(kind.encode() + b"\0" + data).hexdigest()[:32]


def encode_blob(kind: str, data: bytes) -> JsonValue:
    """A blob's JSON form in a record: ``[type, codec, base64]``."""
    packed = _COMPRESSOR.compress(data)
    if len(packed) < len(data):
        return [kind, "zstd", base64.b64encode(packed).decode()]
    return [kind, "raw", base64.b64encode(data).decode()]


def decode_blob(stored: JsonValue) -> tuple[str, bytes]:
    """The ``(type, bytes)`` of a blob's JSON form."""
    assert isinstance(stored, list)
    assert len(stored) == 3
    kind, codec, text = stored
    assert isinstance(kind, str)
    assert isinstance(codec, str)
    assert isinstance(text, str)
    data = base64.b64decode(text)
    return kind, _DECOMPRESSOR.decompress(data) if codec == "zstd" else data


def json_or_none(value: object) -> JsonValue | None:
    """``value`` as JSON if it round-trips through JSON unchanged, else ``None``."""
    try:
        loaded: JsonValue = orjson.loads(orjson.dumps(value))
    except TypeError:
        return None
    return loaded if loaded == value else None


@dataclass(slots=True)
class CheckpointEntry:
    """One checkpoint as its record holds it (``v``: the record's version)."""

    v: int
    id: str
    parent_id: str | None
    checkpoint: JsonValue
    metadata: JsonValue
    values: dict[str, str]
    versions: dict[str, str]  # channel -> version_key of its version

    def run_id(self) -> str | None:
        meta = self.metadata
        run = meta.get("run_id") if isinstance(meta, dict) else None
        return run if isinstance(run, str) else None

    def populated(self, channel: str) -> bool:
        """Whether the checkpoint stores a value of ``channel`` itself."""
        return bool(self.values.get(channel))

    def blob_at(self, channel: str, version: JsonValue) -> str | None:
        """The blob holding ``channel``'s value if this checkpoint has it at
        ``version``. Only a child may reuse it: versions are not unique across
        the branches of a thread (two forks of one checkpoint number their
        first writes alike)."""
        ref = self.values.get(channel)
        if not ref or ref.startswith(MESSAGES_REF):
            return None
        return ref if self.versions.get(channel) == version_key(version) else None


@dataclass(slots=True)
class WriteEntry:
    """One pending write: ``value`` is a blob reference."""

    task_id: str
    idx: int
    channel: str
    ref: str
    task_path: str


@dataclass(slots=True)
class MirroredMessage:
    """A message of the thread, and the framework's object once decoded from
    it (a template that hands out copies), to compare a new checkpoint's
    messages with and to copy for readers (never handed out itself, never the
    caller's own object)."""

    message: Message
    obj: Any = None


@dataclass
class CheckpointLog:
    """The index of one thread's checkpoint records (see the module's docstring)."""

    thread_id: str
    created: int | None = None
    v: int = 0
    checkpoints: dict[str, CheckpointEntry] = field(default_factory=dict)
    writes: dict[str, dict[tuple[str, int], WriteEntry]] = field(default_factory=dict)
    blobs: dict[str, JsonValue] = field(default_factory=dict)
    mirror: list[MirroredMessage] = field(default_factory=list)
    truncates: list[tuple[int, int]] = field(default_factory=list)
    child_thread_ids: tuple[str, ...] = ()
    namespace: str = ""
    graph_thread_id: str = ""
    _latest: str | None = None
    _order: list[str] | None = None

    def absorb(self, v: int, delta: Delta) -> None:
        """Index the delta logged as version ``v``: the next one, or one already
        indexed (skipped: the readers and the writer of a thread catch the same
        index up concurrently)."""
        if v <= self.v:
            return
        if v != self.v + 1:
            raise ValueError(f"Thread {self.thread_id}: expected version {self.v + 1}, got {v}")
        self.v = v
        match delta:
            case ThreadCreate(created=created, metadata=metadata):
                self.created = created
                ref = metadata.get("langgraph")
                namespace = ref.get("checkpoint_ns") if isinstance(ref, dict) else None
                self.namespace = namespace if isinstance(namespace, str) else ""
                graph_thread = ref.get("thread_id") if isinstance(ref, dict) else None
                self.graph_thread_id = graph_thread if isinstance(graph_thread, str) else ""
            case MessageDelta(message=message):
                self.mirror.append(MirroredMessage(message))
            case TruncateDelta(from_index=cut):
                self.truncates.append((v, cut))
                del self.mirror[cut:]
            case RecordDelta(kind=kind, body=body):
                self._absorb_record(v, kind, body)
            case _:
                pass

    def _absorb_record(self, v: int, kind: str, body: dict[str, JsonValue]) -> None:
        blobs = body.get("blobs")
        if isinstance(blobs, dict):
            for digest, stored in blobs.items():
                self.blobs.setdefault(digest, stored)
        if kind == KIND_CHECKPOINT:
            self._add_checkpoint(v, body)
        elif kind == KIND_WRITES:
            self._add_writes(body)
        elif kind == KIND_DROP:
            dropped = body.get("checkpoints")
            for checkpoint_id in dropped if isinstance(dropped, list) else ():
                if isinstance(checkpoint_id, str):
                    self.checkpoints.pop(checkpoint_id, None)
                    self.writes.pop(checkpoint_id, None)
            self._latest = max(self.checkpoints, default=None)
            self._order = None

    def _add_checkpoint(self, v: int, body: dict[str, JsonValue]) -> None:
        checkpoint_id = body["id"]
        parent = body.get("parent")
        values = body.get("values")
        versions = body.get("versions")
        assert isinstance(checkpoint_id, str)
        assert isinstance(values, dict)
        entry = CheckpointEntry(
            v=v,
            id=checkpoint_id,
            parent_id=parent if isinstance(parent, str) else None,
            checkpoint=body.get("cp"),
            metadata=body.get("meta"),
            values={channel: ref for channel, ref in values.items() if isinstance(ref, str)},
            versions={
                channel: version_key(version)
                for channel, version in (versions.items() if isinstance(versions, dict) else ())
            },
        )
        self.checkpoints[checkpoint_id] = entry
        if self._latest is None or checkpoint_id > self._latest:
            self._latest = checkpoint_id
        self._order = None

    def _add_writes(self, body: dict[str, JsonValue]) -> None:
        checkpoint_id = body["checkpoint"]
        task_id = body["task"]
        task_path = body.get("path") or ""
        items = body["writes"]
        assert isinstance(checkpoint_id, str)
        assert isinstance(task_id, str)
        assert isinstance(task_path, str)
        assert isinstance(items, list)
        table = self.writes.setdefault(checkpoint_id, {})
        for item in items:
            assert isinstance(item, list)
            assert len(item) == 3
            idx, channel, ref = item
            assert isinstance(idx, int)
            assert isinstance(channel, str)
            assert isinstance(ref, str)
            table[(task_id, idx)] = WriteEntry(task_id, idx, channel, ref, task_path)

    # -- reading ------------------------------------------------------------

    @property
    def latest(self) -> CheckpointEntry | None:
        """The checkpoint with the greatest id (LangGraph's ids grow with time)."""
        return None if self._latest is None else self.checkpoints[self._latest]

    def newest_first(self) -> list[CheckpointEntry]:
        """Every checkpoint, greatest id first."""
        if self._order is None:
            self._order = sorted(self.checkpoints, reverse=True)
        return [self.checkpoints[checkpoint_id] for checkpoint_id in self._order]

    def pending_writes(self, checkpoint_id: str) -> list[WriteEntry]:
        """The writes against a checkpoint, in LangGraph's ``writes_sort_key`` order."""
        table = self.writes.get(checkpoint_id, {})
        return sorted(table.values(), key=lambda w: (w.task_path, w.task_id, w.idx))

    def blob(self, ref: str) -> tuple[str, bytes]:
        """The ``(type, bytes)`` of a blob this log holds."""
        return decode_blob(self.blobs[ref])

    def mirror_is_current(self, v: int, count: int) -> bool:
        """Whether the first ``count`` messages as of version ``v`` are still the
        thread's first ``count`` (no later truncate cut below ``count``)."""
        return count <= len(self.mirror) and all(
            cut >= count for at, cut in self.truncates if at > v
        )


def version_key(version: JsonValue) -> str:
    """A channel version as a dictionary key (versions are str, int or float)."""
    return orjson.dumps(version).decode()
