"""The sync wire protocol: the JSON bodies the server and its clients exchange.

One module, imported by both sides (:mod:`threadline.sync.server` and
:class:`~threadline.sync.client.RemoteRecorder`), so they cannot drift.
Deltas travel in their own JSON form (:mod:`threadline.deltas`). Every error
body is an :class:`ErrorBody`; a refused push (409) is a :class:`PushConflict`
that carries the server's version and the deltas the client is missing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, computed_field

from threadline.deltas import Delta
from threadline.model import JsonObject, Message, ThreadHead, Timestamp

THREAD_ID_PATTERN = (
    r"^(?:[^\x00-\x1f\x7f/.][^\x00-\x1f\x7f/]{0,199}"
    r"|\.[^\x00-\x1f\x7f/.][^\x00-\x1f\x7f/]{0,198}"
    r"|\.\.[^\x00-\x1f\x7f/]{1,198})$"
)
"""Thread ids on the wire: 1 to 200 characters, no control characters, no ``/``,
and not ``.`` or ``..`` (a URL path cannot name those: they would be created and
then never reached)."""

ThreadId = Annotated[str, Field(pattern=THREAD_ID_PATTERN)]
LIST_CURSOR_PATTERN = r"^[0-9]{1,18}:[^\x00-\x1f\x7f/]{1,200}$"
"""A thread list cursor as the schema states it (``next_cursor`` of a listing;
the server refuses any other with 422 ``invalid_cursor``)."""
Version = Annotated[int, Field(ge=0, le=2**31 - 1)]
Cursor = Annotated[int, Field(ge=0, le=2**63 - 1)]

MAX_BATCH = 50


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ErrorBody(_Wire):
    """Every error answer: a stable ``code`` for programs, a ``message`` for people.
    A server failure (5xx) says nothing of the server's internals: its message is
    generic and ``error_id`` names the server log entry that has the details."""

    code: str
    message: str
    errors: list[dict[str, JsonValue]] | None = None
    error_id: str | None = None


class Health(_Wire):
    """``ok``; or ``degraded`` (answered 503) with the ``problems`` seen, e.g.
    ``store_full`` since a write found the storage full and until one succeeds."""

    status: Literal["ok", "degraded"] = "ok"
    problems: list[str] | None = None


class WireDelta(_Wire):
    """One logged delta: its version and commit time (ms)."""

    v: int
    at: int
    delta: Delta


class PushRequest(_Wire):
    """Append ``deltas`` as versions ``base_version+1 ...``; ``base_version=0`` creates."""

    base_version: Version
    deltas: list[Delta] = Field(min_length=1)


class PushAccepted(_Wire):
    """The push is in (or was already: ``replayed``); ``version`` is the head now."""

    version: int
    head: ThreadHead
    replayed: bool = False


class PushConflict(_Wire):
    """The server is at ``version``, not the push's base: ``missing`` are the deltas
    after the base that the client lacks (merge them, then push again)."""

    code: Literal["version_conflict"] = "version_conflict"
    message: str
    version: int
    missing: list[WireDelta]


class BatchPush(_Wire):
    thread_id: ThreadId
    base_version: Version
    deltas: list[Delta] = Field(min_length=1)


class BatchRequest(_Wire):
    """Up to 50 pushes; each succeeds or fails alone, unless ``atomic`` (then all or none)."""

    pushes: list[BatchPush] = Field(min_length=1, max_length=MAX_BATCH)
    atomic: bool = False


class BatchResult(_Wire):
    """One push's outcome: ``status`` is what the push alone would have answered."""

    thread_id: str
    status: int
    accepted: PushAccepted | None = None
    conflict: PushConflict | None = None
    error: ErrorBody | None = None


class BatchResponse(_Wire):
    results: list[BatchResult]


class CreateThread(_Wire):
    """A new thread (version 1, plus one version per message). The id is the
    client's to choose (it names the thread on every replica), else the server's."""

    id: ThreadId | None = None
    title: str | None = None
    created: Timestamp | None = None
    parent_thread_id: ThreadId | None = None
    origin_thread_id: ThreadId | None = None
    env: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    messages: list[Message] = Field(default_factory=list)


class MessagesPage(_Wire):
    """Messages oldest first, and the head they were read at. ``first_index`` is the
    position of ``messages[0]``: pass it as ``before`` for the older page.

    ``archived`` is true for a thread in cold storage: ``head`` is then its kept
    metadata (with ``archived_at``) and there are no messages."""

    head: ThreadHead
    messages: list[Message]
    first_index: int
    has_more: bool
    archived: bool = False


class ListedHead(ThreadHead):
    """A head in a listing, with ``archived`` spelled out: an archived thread's
    head is the metadata kept for it (with ``archived_at``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # ``archived`` is recomputed

    @computed_field  # type: ignore[prop-decorator]
    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @classmethod
    def of(cls, head: ThreadHead) -> ListedHead:
        return cls.model_construct(**dict(head))

    def as_head(self) -> ThreadHead:
        return ThreadHead.model_construct(**dict(self))


class ThreadList(_Wire):
    """Heads by newest activity first (archived threads among them unless asked
    not to); pass ``next_cursor`` back for the next page."""

    threads: list[ListedHead]
    next_cursor: str | None


class DeltasPage(_Wire):
    """Deltas after ``since``, oldest first; ``version`` is the head when read.
    ``has_more``: ask again with ``since`` = the last one's ``v``."""

    thread_id: str
    version: int
    deltas: list[WireDelta]
    has_more: bool


class Related(_Wire):
    """A thread's family: its parent, its summaries and its sub-agent threads
    (heads of those that exist in the workspace)."""

    thread: ThreadHead
    parent: ThreadHead | None
    summaries: list[ThreadHead]
    children: list[ThreadHead]


class WireChange(_Wire):
    """Thread ``thread_id`` is at ``v`` as of commit ``cursor`` (or deleted)."""

    cursor: int
    thread_id: str
    v: int
    deleted: bool
    at: int


class ChangesPage(_Wire):
    """Changes after ``since`` in commit order; continue from ``cursor``."""

    changes: list[WireChange]
    cursor: int
    has_more: bool


class WireLink(_Wire):
    parent_id: str
    child_id: str
    kind: Literal["child", "summary"]


class WireGraph(_Wire):
    """Links reachable from a thread, the heads of the linked threads that exist,
    the ids of those that are archived (not deleted), and of those deleted (a
    linked thread in none of these never reached the server: held back by its
    persistence policy)."""

    links: list[WireLink]
    heads: dict[str, ThreadHead]
    archived: list[str] = []
    deleted: list[str] = []


class WireUsage(_Wire):
    """Usage of one thread's messages with one model on one UTC day (see UsageGroup)."""

    thread_id: str
    model: str | None
    day: int
    messages: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None
    # Stored costs (threadline.pricing); defaults so a client reads an older server.
    cache_write_1h_tokens: int = 0
    reported_messages: int = 0
    computed_messages: int = 0
    computed_cost_usd: float = 0.0


class UsageReport(_Wire):
    groups: list[WireUsage]


class WireHit(_Wire):
    thread_id: str
    message_id: str | None
    kind: Literal["message", "title"]
    snippet: str
    highlights: list[tuple[int, int]]
    score: float
    thread_title: str | None = None


class SearchResults(_Wire):
    hits: list[WireHit]


# -- cold storage (threadline.sync.routes.archive) ----------------------------------


class ArchiveInactive(_Wire):
    """Archive every thread (with its sub-agent threads) inactive for
    ``older_than_days``; with ``dry_run``, only say which."""

    older_than_days: float = Field(ge=0, le=100_000, allow_inf_nan=False)
    dry_run: bool = False


class ArchiveThese(_Wire):
    """Archive these threads (each with its sub-agent threads) whatever their
    activity; with ``dry_run``, only say which would move."""

    thread_ids: list[ThreadId] = Field(min_length=1, max_length=1000)
    dry_run: bool = False


def _archive_selection(value: Any) -> str:
    if isinstance(value, dict):
        return "these" if "thread_ids" in value else "inactive"
    return "these" if isinstance(value, ArchiveThese) else "inactive"


ArchiveRequest = Annotated[
    Annotated[ArchiveInactive, Tag("inactive")] | Annotated[ArchiveThese, Tag("these")],
    Discriminator(_archive_selection),
]
"""The body of ``POST /v1/archive``: by inactivity, or by ids (a body with
``thread_ids`` is read as the second, so errors name the fields it lacks)."""


class ArchiveResult(_Wire):
    """The threads archived (with ``dry_run``, those that would be)."""

    thread_ids: list[str]
    dry_run: bool


class RestoreResult(_Wire):
    """The threads restored: the one asked for and its archived sub-agent threads
    (empty if it was active)."""

    thread_ids: list[str]
