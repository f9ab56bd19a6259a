"""The data model: threads, messages, tool calls and results, token usage.

All types are immutable pydantic models. A :class:`Thread` is the fold of its
delta log (see :mod:`threadline.deltas`); a :class:`ThreadHead` is the same
fold without the messages, which is what listings and snapshots keep.

Optional fields that are empty are left out of the JSON (``exclude_if``), so a
stored message costs about what its content costs; reading the JSON back gives
an equal object (the round trip is lossless).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from threadline.ids import new_message_id, new_thread_id, now_ms

Role = Literal["user", "assistant", "system"]

# -- limits: what the edges accept is what every read path can show (issue 16) --

MAX_TIMESTAMP_MS = 253_402_300_799_999
"""The last millisecond of year 9999 (UTC): later timestamps cannot be shown as dates."""
MAX_TOKENS = 2**31 - 1
"""Token counts of one response, at most: sums over any number of messages stay far
below the 64-bit integers both backends sum in."""
MAX_COST_USD = 1_000_000_000.0
"""Cost of one response in USD, at most: sums stay finite floats."""
STORED = "threadline.stored"
"""Validation context key: the value was read back from a store, so limits newer
than the store are not enforced on it (it must stay readable)."""


def stored_context() -> dict[str, bool]:
    """The validation context of values read back from storage."""
    return {STORED: True}


def _is_stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get(STORED))


def _at_most(limit: float) -> AfterValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is not None and value > limit and not _is_stored(info):
            raise ValueError(f"must be at most {int(limit) if limit == int(limit) else limit}")
        return value

    return AfterValidator(check)


MAX_JSON_DEPTH = 64
"""How deeply JSON values (metadata, env, tool input and output) may nest: the
JSON parser that reads them back refuses deeper documents."""


def _finite_json(value: Any) -> Any:
    """``value`` unchanged if it holds only JSON numbers (no NaN or infinity, which
    JSON cannot carry and which would be stored as null) and nests at most
    :data:`MAX_JSON_DEPTH` deep."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"JSON may nest at most {MAX_JSON_DEPTH} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


Json = Annotated[JsonValue, AfterValidator(_finite_json)]
"""Any JSON value whose numbers are finite."""
JsonObject = Annotated[dict[str, JsonValue], AfterValidator(_finite_json)]
"""A JSON object whose numbers are finite."""
Timestamp = Annotated[
    int, Field(ge=0, json_schema_extra={"maximum": MAX_TIMESTAMP_MS}), _at_most(MAX_TIMESTAMP_MS)
]
"""Milliseconds since the epoch, up to the end of year 9999."""
Tokens = Annotated[
    int, Field(ge=0, json_schema_extra={"maximum": MAX_TOKENS}), _at_most(MAX_TOKENS)
]
Cost = Annotated[
    float,
    Field(ge=0, allow_inf_nan=False, json_schema_extra={"maximum": MAX_COST_USD}),
    _at_most(MAX_COST_USD),
]


def _empty(value: object) -> bool:
    return not value


def _none(value: object) -> bool:
    return value is None


def _false(value: object) -> bool:
    return value is False


_set = object.__setattr__


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> Self:
        """An instance from ``values``, which this process built and knows valid: every
        field, each of its declared type. No validation, no defaults (docs/performance.md:
        validating what the process built itself cost about a third of an append).
        """
        made = cls.__new__(cls)
        _set(made, "__dict__", values)
        _set(made, "__pydantic_fields_set__", set(values))
        _set(made, "__pydantic_extra__", None)
        _set(made, "__pydantic_private__", None)
        return made

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's ``model_copy``, without its generic copying machinery for the
        shallow case: a frozen model with ``extra="forbid"`` and no private
        attributes is its ``__dict__``, so a copy is a new dict (same semantics:
        ``update`` is not validated, and marks its fields as set)."""
        if deep or self.__pydantic_private__ is not None:
            return super().model_copy(update=update, deep=deep)
        cls = type(self)
        copied = cls.__new__(cls)
        if update:
            _set(copied, "__dict__", {**self.__dict__, **update})
            _set(copied, "__pydantic_fields_set__", self.__pydantic_fields_set__ | update.keys())
        else:
            _set(copied, "__dict__", dict(self.__dict__))
            _set(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        _set(copied, "__pydantic_extra__", None)
        _set(copied, "__pydantic_private__", None)
        return copied


class ToolCall(_Frozen):
    """A tool invocation requested by the assistant."""

    id: str
    name: str
    input: JsonObject = Field(default_factory=dict)


class ToolResult(_Frozen):
    """The outcome of a tool call, joined to it by ``tool_call_id``."""

    tool_call_id: str
    output: Json = ""
    is_error: bool = Field(default=False, exclude_if=_false)


class Usage(_Frozen):
    """Token usage and cost of one model response."""

    model: str | None = Field(default=None, exclude_if=_none)
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cache_read_tokens: Tokens = Field(default=0, exclude_if=_empty)
    cache_write_tokens: Tokens = Field(default=0, exclude_if=_empty)
    # The part of ``cache_write_tokens`` written to the 1-hour cache (Anthropic's
    # ``ephemeral_1h_input_tokens``); the rest went to the 5-minute cache. The
    # two are priced at different rates (see threadline.pricing).
    cache_write_1h_tokens: Tokens = Field(default=0, exclude_if=_empty)
    cost_usd: Cost | None = Field(default=None, exclude_if=_none)


class Message(_Frozen):
    """One message of a thread. Never modified once appended."""

    id: str = Field(default_factory=new_message_id)
    role: Role
    content: str = ""
    timestamp: Timestamp = Field(default_factory=now_ms)
    tool_calls: tuple[ToolCall, ...] = Field(default=(), exclude_if=_empty)
    tool_results: tuple[ToolResult, ...] = Field(default=(), exclude_if=_empty)
    usage: Usage | None = Field(default=None, exclude_if=_none)
    metadata: JsonObject = Field(default_factory=dict, exclude_if=_empty)


class UsageTotals(_Frozen):
    """Sums of :class:`Usage` over every message ever appended to a thread.

    A truncate does not refund: tokens spent on a response that was later
    dropped were still spent. ``unpriced_messages`` counts responses that had
    usage but no ``cost_usd``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    priced_messages: int = 0
    unpriced_messages: int = 0

    @field_validator("cost_usd", mode="before")
    @classmethod
    def _stored_non_finite(cls, value: Any) -> Any:
        # Stores written before costs were bounded may hold a total that overflowed,
        # kept as null: read it as 0 so the thread still lists; `doctor` reports the
        # totals as differing from the log and `doctor --repair` recomputes them.
        return 0.0 if value is None else value

    def add(self, usage: Usage) -> UsageTotals:
        priced = usage.cost_usd is not None
        cost = self.cost_usd + (usage.cost_usd or 0.0)
        # Sums of validated non-negative numbers: nothing to validate again. Bounded
        # costs keep sums finite; a log from before the bound saturates instead.
        return UsageTotals._trusted(
            {
                "input_tokens": self.input_tokens + usage.input_tokens,
                "output_tokens": self.output_tokens + usage.output_tokens,
                "cache_read_tokens": self.cache_read_tokens + usage.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens + usage.cache_write_tokens,
                "cost_usd": cost if cost <= sys.float_info.max else sys.float_info.max,
                "priced_messages": self.priced_messages + int(priced),
                "unpriced_messages": self.unpriced_messages + int(not priced),
            }
        )


class _ThreadFields(_Frozen):
    id: str = Field(default_factory=new_thread_id)
    v: int = Field(default=1, ge=1)
    created: Timestamp = Field(default_factory=now_ms)
    title: str | None = None
    parent_thread_id: str | None = None
    child_thread_ids: tuple[str, ...] = ()
    origin_thread_id: str | None = None
    summary_thread_ids: tuple[str, ...] = ()
    env: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)


class Thread(_ThreadFields):
    """A conversation thread at one version: the fold of deltas ``1..v``."""

    messages: tuple[Message, ...] = ()

    def with_message(self, message: Message) -> Thread:
        """This thread with ``message`` appended, one version later."""
        from threadline.deltas import MessageDelta, apply

        return apply(self, MessageDelta.of(message))

    def with_title(self, title: str | None) -> Thread:
        """This thread retitled, one version later."""
        from threadline.deltas import TitleDelta, apply

        return apply(self, TitleDelta(value=title))

    def truncated(self, from_index: int) -> Thread:
        """This thread without the messages from ``from_index`` on, one version later."""
        from threadline.deltas import TruncateDelta, apply

        return apply(self, TruncateDelta(from_index=from_index))


class ThreadHead(_ThreadFields):
    """A thread without its messages: what listings and snapshots keep.

    ``last_activity`` is the newest message timestamp, else ``created``.
    ``archived_at`` is set (ms) only on the metadata of a thread moved to cold
    storage (see :mod:`threadline.lifecycle.archive`); an active head never has it.
    """

    message_count: int = 0
    last_activity: int = 0
    totals: UsageTotals = Field(default_factory=UsageTotals)
    archived_at: int | None = Field(default=None, exclude_if=_none)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class ThreadPage(_Frozen):
    """A page of a thread's messages, oldest first, with the head it was read at."""

    head: ThreadHead
    messages: tuple[Message, ...]
    offset: int
    has_more: bool

    @property
    def v(self) -> int:
        return self.head.v

    @property
    def id(self) -> str:
        return self.head.id

    @property
    def total_messages(self) -> int:
        return self.head.message_count

    @property
    def first_index(self) -> int:
        """Index in the thread of ``messages[0]``; pass it as ``before`` for the older page."""
        return self.head.message_count - self.offset - len(self.messages)


class ThreadListPage(_Frozen):
    """One page of :meth:`ThreadStore.list_threads`, newest activity first."""

    threads: tuple[ThreadHead, ...]
    next_cursor: str | None


def thread_to_json(thread: Thread) -> bytes:
    return thread.model_dump_json().encode()


def thread_from_json(data: bytes | str) -> Thread:
    return Thread.model_validate_json(data)


# -- lifecycle: what the store keeps of archived threads -----------------------


class ArchivedObject(_Frozen):
    """One thread's object in cold storage: its whole delta log, zstd-compressed.

    ``checksum`` is the SHA-256 (hex) of the object's bytes as stored; ``size``
    counts those bytes, ``raw_size`` the uncompressed log; ``v`` is the
    thread's version in it.
    """

    thread_id: str
    key: str
    checksum: str
    size: int
    raw_size: int
    v: int


class ArchivedThread(_Frozen):
    """The metadata an archived thread keeps in active storage, for listing and
    search: its head (title, created, counts, cost totals, relationships) with
    ``archived_at`` set, and where its log went."""

    head: ThreadHead
    object: ArchivedObject

    @property
    def id(self) -> str:
        return self.head.id


class LifecycleOp(_Frozen):
    """An archive or restore in progress, recorded in the database so that a
    store opened after a crash can finish or undo it (see ``ThreadStore.recover``).

    An ``archive`` op is recorded before its objects are written; a ``restore``
    op is recorded in the transaction that puts the logs back and lists the
    objects left to delete.
    """

    id: str
    kind: Literal["archive", "restore"]
    started: int
    objects: tuple[ArchivedObject, ...]

    @property
    def thread_ids(self) -> tuple[str, ...]:
        return tuple(o.thread_id for o in self.objects)
