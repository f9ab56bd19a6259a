"""The wire format of file-change sync, shared by the server's routes
(:mod:`threadline.sync.routes.files`) and the client
(:class:`~threadline.sync.client.RemoteRecorder`).

A thread's file log travels as its :class:`~threadline.files.log.FileChange`
rows, numbered as on the machine that recorded them; contents travel as
stored (zstd frames, deltas against a base: :mod:`threadline.files.contents`),
named by hash, and only those the other side lacks.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field

from threadline.files.log import FileChange, StoredContent

MAX_FILE_CHANGES = 1000
"""File changes per push or page."""
MAX_HASHES = 1000
"""Hashes per ``POST /v1/contents/missing``."""
HASH_PATTERN = "^[0-9a-f]{64}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WireContent(_Wire):
    """A stored content: its hash, size, base (a delta's) and depth, and the zstd frame."""

    hash: str = Field(pattern=HASH_PATTERN)
    size: int = Field(ge=0)
    base: str | None = Field(default=None, pattern=HASH_PATTERN)
    depth: int = Field(ge=0)
    data: Base64Bytes

    @classmethod
    def of(cls, content: StoredContent) -> WireContent:
        """``content`` as sent (stored data is trusted: not validated again)."""
        return cls.model_construct(
            hash=content.hash,
            size=content.size,
            base=content.base,
            depth=content.depth,
            data=content.data,
        )

    def stored(self) -> StoredContent:
        return StoredContent(self.hash, self.size, self.base, self.depth, self.data)


class FileChangesPage(_Wire):
    """``GET /v1/threads/{id}/files``: the thread's file changes after ``after``
    (up to a page), and how many its file log holds (``count``)."""

    thread_id: str
    count: int
    changes: list[FileChange]


class FilePush(_Wire):
    """``POST /v1/threads/{id}/files``: append ``changes`` (numbered ``after + 1``
    ...) to the thread's file log, which must hold exactly ``after`` changes;
    ``contents`` are those the server lacks (``POST /v1/contents/missing``)."""

    after: int = Field(ge=0, le=2**31 - 1)
    changes: list[FileChange] = Field(max_length=MAX_FILE_CHANGES)
    contents: list[WireContent] = Field(default=[], max_length=MAX_FILE_CHANGES * 2)


class FilePushAccepted(_Wire):
    """How many changes the thread's file log holds now."""

    count: int


class FilePushConflict(_Wire):
    """The thread's file log holds ``count`` changes, not the push's ``after``."""

    code: str = "version_conflict"
    message: str
    count: int


class ContentQuery(_Wire):
    """``POST /v1/contents/missing``: which of ``hashes`` the server lacks. Each
    is a content hash; anything else (which no backend could hold, a NUL for
    one) is refused at the edge."""

    hashes: list[Annotated[str, Field(pattern=HASH_PATTERN)]] = Field(max_length=MAX_HASHES)


class MissingContents(_Wire):
    missing: list[str]


class ContentChain(_Wire):
    """``GET /v1/contents/{hash}``: the content, then its base, the base's base, ..."""

    contents: list[WireContent]
