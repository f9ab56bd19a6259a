"""The file change log of a thread: what a recorder stores for file tracking. Pure data.

Beside its delta log, a thread keeps an append-only log of the file changes
its tool calls made (see :mod:`threadline.files`). Each :class:`FileChange`
says which operation (tool call) changed which path from which state to which
state; states name their contents by hash, and contents are stored once each,
compressed (see :mod:`threadline.files.contents`). A rollback is itself a set of
changes that name the changes they revert, so it can be undone in turn.

The file log does not add versions to the thread: ``thread_version`` only
records which version the thread was at when the change was recorded, which
is what "every change after this message" means.

A state may be :class:`UnknownContent`: the log does not hold what the file
contained. Only imports record such states (an agent's edit of a file its
transcript never showed, :mod:`threadline.importers.edits`); nothing reads,
diffs or restores a content it does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import orjson
from pydantic import ConfigDict, Field, model_validator

from threadline.model import _Frozen

ChangeType = Literal["create", "modify", "delete"]


class FileState(_Frozen):
    """A regular file's content (SHA-256 hex of its bytes), size and permission bits."""

    hash: str
    size: int = Field(ge=0)
    mode: int = Field(ge=0, le=0o7777)


class UnknownContent(_Frozen):
    """A file whose content the log does not hold: an imported agent edited or
    overwrote it, and the transcript did not show what it contained, so
    neither its bytes nor its size nor its mode are known.

    It is never invented: no diff is made against it, and no rollback puts it
    back (:mod:`threadline.files.rollback` refuses, even when forced). In JSON,
    ``{"unknown": true}``.
    """

    unknown: Literal[True]


UNKNOWN = UnknownContent(unknown=True)

State: TypeAlias = FileState | UnknownContent | None
"""What a change says about a file on one side: its content, a content not
recorded, or (``None``) that there was no file."""


def same_content(a: State, b: State) -> bool:
    """Both absent, or both present with the same bytes (modes are not compared).
    A content not recorded is the same as nothing, not even another unknown one."""
    if isinstance(a, UnknownContent) or isinstance(b, UnknownContent):
        return False
    if a is None or b is None:
        return a is b
    return a.hash == b.hash


def content_hashes(change: FileChange | NewFileChange) -> list[str]:
    """The contents ``change`` names (a content not recorded names none)."""
    return [s.hash for s in (change.before, change.after) if isinstance(s, FileState)]


def change_type(before: State, after: State) -> ChangeType:
    """``create`` from nothing, ``delete`` to nothing, else ``modify``."""
    if before is None and after is None:
        raise ValueError("a file change needs a file before or after it")
    if before is None:
        return "create"
    return "delete" if after is None else "modify"


class FileChange(_Frozen):
    """One recorded change of one file, numbered ``seq`` (1, 2, ...) in its thread's file log.

    ``before`` is ``None`` for a file that did not exist (a create), ``after``
    for one that no longer exists (a delete); either may be
    :class:`UnknownContent` (``before_unknown``, ``after_unknown``) when an
    imported transcript did not hold it. ``dirs`` are directories (relative
    paths, deepest last) that a create made because they were missing, or
    that a delete made by a rollback removes once they are empty. ``reverts``
    lists the changes a rollback change undoes; it is empty for a tool's own
    change. ``at`` is when it was recorded (ms).
    """

    thread_id: str
    seq: int = Field(ge=1)
    operation_id: str
    path: str
    type: ChangeType
    before: FileState | UnknownContent | None
    after: FileState | UnknownContent | None
    dirs: tuple[str, ...] = ()
    reverts: tuple[int, ...] = ()
    thread_version: int = Field(ge=1)
    at: int

    # The schema says what _type_matches_states checks, so that an API client
    # (and schemathesis) knows which states go with which type.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {
                        "type": {"const": "create"},
                        "before": {"type": "null"},
                        "after": {"type": "object"},
                    }
                },
                {
                    "properties": {
                        "type": {"const": "modify"},
                        "before": {"type": "object"},
                        "after": {"type": "object"},
                    }
                },
                {
                    "properties": {
                        "type": {"const": "delete"},
                        "before": {"type": "object"},
                        "after": {"type": "null"},
                    }
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _type_matches_states(self) -> FileChange:
        if change_type(self.before, self.after) != self.type:
            raise ValueError(f"change {self.seq} of {self.path} is not a {self.type}")
        return self

    @property
    def before_unknown(self) -> bool:
        """What the file held before the change is not recorded."""
        return isinstance(self.before, UnknownContent)

    @property
    def after_unknown(self) -> bool:
        """What the file held after the change is not recorded."""
        return isinstance(self.after, UnknownContent)


@dataclass(frozen=True, slots=True)
class NewFileChange:
    """A change to record; the recorder numbers it and stamps version and time."""

    operation_id: str
    path: str
    before: State
    after: State
    dirs: tuple[str, ...] = ()
    reverts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        change_type(self.before, self.after)  # a file before or after it, or ValueError

    @property
    def type(self) -> ChangeType:
        return change_type(self.before, self.after)


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A content as stored: a zstd frame of the bytes whose SHA-256 is ``hash``.

    With a ``base``, the frame was compressed against the base content as a
    dictionary (a delta), and ``depth`` counts the bases below it; without,
    ``depth`` is 0. See :mod:`threadline.files.contents`.
    """

    hash: str
    size: int
    base: str | None
    depth: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ContentUsage:
    """What the stored contents cost: how many, their bytes, and what they hold raw."""

    contents: int
    stored_bytes: int
    raw_bytes: int


class FileRollback(_Frozen):
    """The journal entry of a rollback: written, with the rollback's changes,
    before any file is touched; ``finished`` (ms) once every file was handled.

    A rollback of an operation has ``undoes_operation``; a rewind to a message
    has ``after_message``. Its changes carry ``operation_id``.
    """

    thread_id: str
    operation_id: str
    undoes_operation: str | None = None
    after_message: str | None = None
    started: int
    finished: int | None = None


@dataclass(frozen=True, slots=True)
class NewRollback:
    """The journal entry to open with a rollback's changes."""

    operation_id: str
    undoes_operation: str | None = None
    after_message: str | None = None


def check_copy(thread_id: str, after: int, changes: Sequence[FileChange]) -> None:
    """Refuse copied ``changes`` that are not numbered ``after + 1 ...`` of ``thread_id``."""
    from threadline.errors import InvalidFileChange

    for number, change in enumerate(changes, start=after + 1):
        if change.thread_id != thread_id or change.seq != number:
            raise InvalidFileChange(
                thread_id,
                change.path,
                f"copied change {change.seq} of {change.thread_id} is not change {number} "
                f"of {thread_id}",
            )


# One stored change, in the column order both SQL backends use:
# thread_id, seq, operation_id, path, before (hash, size, mode), after (hash,
# size, mode), dirs (JSON), reverts (JSON), thread_version, at, before_unknown,
# after_unknown. A content not recorded is stored as no hash, size and mode with
# its *_unknown flag set (migration 12 of both backends added the flags; rows
# written before it read as they did).
ChangeRow = tuple[
    str,
    int,
    str,
    str,
    str | None,
    int | None,
    int | None,
    str | None,
    int | None,
    int | None,
    bytes | None,
    bytes | None,
    int,
    int,
    bool,
    bool,
]


def stored_state(
    content_hash: str | None, size: int | None, mode: int | None, unknown: object
) -> State:
    """A state as a backend stored it (see :data:`ChangeRow`); not validated again."""
    if unknown:
        return UNKNOWN
    if content_hash is None:
        return None
    return FileState.model_construct(hash=content_hash, size=size or 0, mode=mode or 0)


def _columns(state: State) -> tuple[str | None, int | None, int | None]:
    if isinstance(state, FileState):
        return state.hash, state.size, state.mode
    return None, None, None


def copied_row(change: FileChange) -> ChangeRow:
    """The row a backend stores for a change copied from another replica, as it was."""
    new = NewFileChange(
        change.operation_id, change.path, change.before, change.after, change.dirs, change.reverts
    )
    return change_row(change.thread_id, change.seq, new, change.thread_version, change.at)


def change_row(
    thread_id: str, seq: int, change: NewFileChange, thread_version: int, at: int
) -> ChangeRow:
    """The row a backend stores for ``change``, numbered ``seq``."""
    before, after = change.before, change.after
    return (
        thread_id,
        seq,
        change.operation_id,
        change.path,
        *_columns(before),
        *_columns(after),
        orjson.dumps(change.dirs) if change.dirs else None,
        orjson.dumps(change.reverts) if change.reverts else None,
        thread_version,
        at,
        isinstance(before, UnknownContent),
        isinstance(after, UnknownContent),
    )
