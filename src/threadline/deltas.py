"""Deltas: the only way a thread changes. Pure functions, no I/O.

A thread is the fold of its log: ``thread_create`` makes version 1 and every
further delta adds exactly one to ``v``. The JSON form of a delta is also its
wire format for sync, e.g. ``{"type": "user:message", "message": {...}}``,
``{"type": "title", "value": "..."}``, ``{"type": "thread:truncate",
"from_index": 3}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal, TypeVar

from pydantic import Field, JsonValue, TypeAdapter, model_validator

from threadline.errors import InvalidDelta, InvalidModification
from threadline.ids import new_thread_id, now_ms
from threadline.model import (
    JsonObject,
    Message,
    Role,
    Thread,
    ThreadHead,
    Timestamp,
    Usage,
    UsageTotals,
    _Frozen,
    stored_context,
)

MessageType = Literal["user:message", "assistant:message", "system:message"]


class ThreadCreate(_Frozen):
    """Version 1 of every thread."""

    type: Literal["thread:create"] = "thread:create"
    id: str = Field(default_factory=new_thread_id)
    created: Timestamp = Field(default_factory=now_ms)
    title: str | None = None
    parent_thread_id: str | None = None
    origin_thread_id: str | None = None
    env: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)


class MessageDelta(_Frozen):
    """Append one message; the type names the message's role."""

    type: MessageType
    message: Message

    @classmethod
    def of(cls, message: Message) -> MessageDelta:
        return cls(type=_MESSAGE_TYPES[message.role], message=message)

    @model_validator(mode="after")
    def _role_matches_type(self) -> MessageDelta:
        if _MESSAGE_TYPES[self.message.role] != self.type:
            raise ValueError(f"a {self.type} delta cannot hold a {self.message.role} message")
        return self


_MESSAGE_TYPES: dict[Role, MessageType] = {
    "user": "user:message",
    "assistant": "assistant:message",
    "system": "system:message",
}


class MessageAmendDelta(_Frozen):
    """Replace the message at position ``index`` by a fuller version of itself
    (the same ``id``): the later lines of a response that was captured while
    it was still being written, or usage that arrived after its turn.

    ``previous_usage`` is the usage the message had (so that a head, which
    keeps usage totals but not messages, can take it out and put the new one
    in); :func:`apply` checks that both it and the id match. The message keeps
    its position; the log keeps both versions."""

    type: Literal["message:amend"] = "message:amend"
    index: int = Field(ge=0)
    message: Message
    previous_usage: Usage | None = None


class TitleDelta(_Frozen):
    type: Literal["title"] = "title"
    value: str | None


class TruncateDelta(_Frozen):
    """Drop the messages from ``from_index`` on (they stay readable in the log)."""

    type: Literal["thread:truncate"] = "thread:truncate"
    from_index: int = Field(ge=0)


class MetadataDelta(_Frozen):
    """A JSON merge patch (RFC 7396) of ``metadata``; ``replace`` sets it whole."""

    type: Literal["metadata"] = "metadata"
    patch: JsonObject
    replace: bool = False


class EnvDelta(_Frozen):
    """Replace the execution context (cwd, git branch, OS, ...)."""

    type: Literal["env"] = "env"
    value: JsonObject


class ChildLinkDelta(_Frozen):
    """Record a sub-agent thread spawned by this one."""

    type: Literal["child:link"] = "child:link"
    thread_id: str


class SummaryLinkDelta(_Frozen):
    """Record a summary thread made from this one."""

    type: Literal["summary:link"] = "summary:link"
    thread_id: str


class MergeDelta(_Frozen):
    """The record of a sync merge (see :mod:`threadline.merge`): the deltas after
    it turn the server's version ``remote`` into the three-way merge of it and
    this replica's version ``local``, whose common ancestor is version ``base``.
    It changes nothing else. ``id`` names the merge, so that two merges' deltas
    are never taken for one another; a merge repeats its record at its end as
    often as it takes for the merged version to exceed ``local`` and ``remote``."""

    type: Literal["thread:merge"] = "thread:merge"
    id: str
    base: int = Field(ge=0)
    local: int = Field(ge=0)
    remote: int = Field(ge=0)


class RecordDelta(_Frozen):
    """A record an integration keeps in the thread's log (a LangGraph checkpoint,
    its pending writes, ...): logged, synced and archived with the thread, it
    changes nothing but ``v``. ``kind`` names the record's schema, e.g.
    ``langgraph:checkpoint``; ``body`` is its JSON."""

    type: Literal["record"] = "record"
    kind: str = Field(min_length=1)
    body: JsonObject = Field(default_factory=dict)


Delta = Annotated[
    ThreadCreate
    | MessageDelta
    | MessageAmendDelta
    | TitleDelta
    | TruncateDelta
    | MetadataDelta
    | EnvDelta
    | ChildLinkDelta
    | SummaryLinkDelta
    | MergeDelta
    | RecordDelta,
    Field(discriminator="type"),
]

_DELTA = TypeAdapter[Delta](Delta)
_DELTAS = TypeAdapter[list[Delta]](list[Delta])


def delta_to_json(delta: Delta) -> bytes:
    return delta.model_dump_json().encode()


def delta_from_json(data: bytes | str, *, stored: bool = False) -> Delta:
    """The delta of ``data``; ``stored`` for a delta read back from a store, which
    must stay readable even past limits set after it was written."""
    return _DELTA.validate_json(data, context=stored_context() if stored else None)


def deltas_from_json(data: bytes | str) -> list[Delta]:
    return _DELTAS.validate_json(data)


def merge_patch(target: dict[str, JsonValue], patch: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """RFC 7396: ``null`` removes a key, objects merge recursively, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = value
    return result


def _merge_patch_between(
    old: dict[str, JsonValue], new: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    patch: dict[str, JsonValue] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            before = old[key]
            if isinstance(before, dict) and isinstance(value, dict):
                patch[key] = _merge_patch_between(before, value)
            else:
                patch[key] = value
    return patch


_T = TypeVar("_T", Thread, ThreadHead)


def _apply_fields(state: _T, delta: Delta) -> dict[str, object]:
    """The field updates a non-message delta makes; shared by threads and heads."""
    match delta:
        case TitleDelta(value=value):
            return {"title": value}
        case MetadataDelta(patch=patch, replace=replace):
            return {"metadata": dict(patch) if replace else merge_patch(state.metadata, patch)}
        case EnvDelta(value=value):
            return {"env": dict(value)}
        case ChildLinkDelta(thread_id=child):
            if child in state.child_thread_ids:
                raise InvalidDelta(f"Thread {state.id} already links child {child}")
            return {"child_thread_ids": (*state.child_thread_ids, child)}
        case SummaryLinkDelta(thread_id=summary):
            if summary in state.summary_thread_ids:
                raise InvalidDelta(f"Thread {state.id} already links summary {summary}")
            return {"summary_thread_ids": (*state.summary_thread_ids, summary)}
        case MergeDelta() | RecordDelta():
            return {}
    raise InvalidDelta(f"Delta {delta.type} cannot apply here")


def amended_totals(totals: UsageTotals, previous: Usage | None, new: Usage | None) -> UsageTotals:
    """``totals`` with a message's usage ``previous`` replaced by ``new``."""
    if previous == new:
        return totals
    sums = totals.model_dump()
    for usage, sign in ((previous, -1), (new, 1)):
        if usage is None:
            continue
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            sums[name] += sign * getattr(usage, name)
        sums["cost_usd"] += sign * (usage.cost_usd or 0.0)
        sums["priced_messages" if usage.cost_usd is not None else "unpriced_messages"] += sign
    sums["cost_usd"] = max(0.0, sums["cost_usd"])
    return UsageTotals.model_validate(sums)


def _check_amend(count: int, thread_id: str, delta: MessageAmendDelta) -> None:
    if delta.index >= count:
        raise InvalidDelta(
            f"Thread {thread_id} has {count} messages; cannot amend message #{delta.index}"
        )
    if delta.previous_usage is not None and delta.message.usage is None:
        # Usage rows are keyed by message id: an amendment replaces the row, never drops it.
        raise InvalidDelta(
            f"Thread {thread_id}: an amendment of message #{delta.index} cannot take its usage away"
        )


def _check_create(state: object, delta: ThreadCreate) -> None:
    if state is not None:
        raise InvalidDelta(f"Thread {delta.id} already exists; thread:create must be version 1")


def _require(state: _T | None, delta: Delta) -> _T:
    if state is None:
        raise InvalidDelta(f"The first delta of a thread must be thread:create, not {delta.type}")
    return state


def apply(thread: Thread | None, delta: Delta) -> Thread:
    """The thread after ``delta``: ``v`` grows by exactly one. Pure."""
    if isinstance(delta, ThreadCreate):
        _check_create(thread, delta)
        return Thread(**delta.model_dump(exclude={"type"}), v=1)
    state = _require(thread, delta)
    update: dict[str, object]
    if isinstance(delta, MessageDelta):
        # One tuple concatenation: ``(*t, m)`` is several times slower on long threads.
        update = {"messages": state.messages + (delta.message,)}  # noqa: RUF005
    elif isinstance(delta, MessageAmendDelta):
        _check_amend(len(state.messages), state.id, delta)
        old = state.messages[delta.index]
        if old.id != delta.message.id or old.usage != delta.previous_usage:
            raise InvalidDelta(
                f"Thread {state.id}: message #{delta.index} is {old.id} with usage "
                f"{old.usage}; the amendment is of {delta.message.id} with usage "
                f"{delta.previous_usage}"
            )
        messages = list(state.messages)
        messages[delta.index] = delta.message
        update = {"messages": tuple(messages)}
    elif isinstance(delta, TruncateDelta):
        if delta.from_index > len(state.messages):
            raise InvalidDelta(
                f"Thread {state.id} has {len(state.messages)} messages; "
                f"cannot truncate from index {delta.from_index}"
            )
        update = {"messages": state.messages[: delta.from_index]}
    else:
        update = _apply_fields(state, delta)
    update["v"] = state.v + 1
    return state.model_copy(update=update)


def apply_head(head: ThreadHead | None, delta: Delta) -> ThreadHead:
    """:func:`apply` for a head (a thread without its messages). Pure."""
    if isinstance(delta, ThreadCreate):
        _check_create(head, delta)
        return ThreadHead(**delta.model_dump(exclude={"type"}), v=1, last_activity=delta.created)
    state = _require(head, delta)
    update: dict[str, object]
    if isinstance(delta, MessageDelta):
        message = delta.message
        update = {
            "message_count": state.message_count + 1,
            "last_activity": max(state.last_activity, message.timestamp),
        }
        if message.usage is not None:
            update["totals"] = state.totals.add(message.usage)
    elif isinstance(delta, MessageAmendDelta):
        _check_amend(state.message_count, state.id, delta)
        update = {
            "last_activity": max(state.last_activity, delta.message.timestamp),
            "totals": amended_totals(state.totals, delta.previous_usage, delta.message.usage),
        }
    elif isinstance(delta, TruncateDelta):
        if delta.from_index > state.message_count:
            raise InvalidDelta(
                f"Thread {state.id} has {state.message_count} messages; "
                f"cannot truncate from index {delta.from_index}"
            )
        update = {"message_count": delta.from_index}
    else:
        update = _apply_fields(state, delta)
    update["v"] = state.v + 1
    return state.model_copy(update=update)


def fold(deltas: Iterable[Delta], thread: Thread | None = None) -> Thread:
    """Apply ``deltas`` in order (from nothing, or from ``thread``).

    The same as :func:`apply` one delta at a time; a run of message deltas is
    applied in one step, so folding ``k`` appends onto ``n`` messages copies the
    message tuple once, not ``k`` times.
    """
    state = thread
    appended: list[Message] = []
    for delta in deltas:
        if state is not None and isinstance(delta, MessageDelta):
            appended.append(delta.message)
            continue
        if appended:
            state = _append_messages(state, appended)
            appended = []
        state = apply(state, delta)
    if state is None:
        raise InvalidDelta("An empty log is not a thread")
    if appended:
        state = _append_messages(state, appended)
    return state


def _append_messages(thread: Thread | None, messages: list[Message]) -> Thread:
    """``apply`` of one message delta per message, as one copy."""
    assert thread is not None
    return thread.model_copy(
        update={"messages": thread.messages + tuple(messages), "v": thread.v + len(messages)}
    )


def fold_head(deltas: Iterable[Delta], head: ThreadHead | None = None) -> ThreadHead:
    state = head
    for delta in deltas:
        state = apply_head(state, delta)
    if state is None:
        raise InvalidDelta("An empty log is not a thread")
    return state


def head_of(thread: Thread, *, log: Sequence[Delta] | None = None) -> ThreadHead:
    """The head of ``thread``. With its ``log``, totals include truncated messages."""
    if log is not None:
        return fold_head(log)
    head = ThreadHead(
        **thread.model_dump(exclude={"messages"}),
        message_count=len(thread.messages),
        last_activity=max([thread.created, *(m.timestamp for m in thread.messages)]),
    )
    for message in thread.messages:
        if message.usage is not None:
            head = head.model_copy(update={"totals": head.totals.add(message.usage)})
    return head


def diff(old: Thread, new: Thread) -> list[Delta]:
    """The deltas that turn ``old`` into ``new``: what a modifier changed.

    ``new`` must have a greater ``v``. Messages are compared as a common prefix:
    if ``new`` dropped or replaced messages, a truncate comes first, then the
    new messages. Identity, creation time and parent/origin links cannot change.
    """
    if new.v <= old.v:
        raise InvalidModification(
            f"A modifier of thread {old.id} must return a thread with a greater version "
            f"(got v={new.v} from v={old.v})"
        )
    for name in ("id", "created", "parent_thread_id", "origin_thread_id"):
        if getattr(new, name) != getattr(old, name):
            raise InvalidModification(f"The {name} of thread {old.id} cannot change")
    deltas: list[Delta] = []
    common = 0
    limit = min(len(old.messages), len(new.messages))
    while common < limit and (
        old.messages[common] is new.messages[common] or old.messages[common] == new.messages[common]
    ):
        common += 1
    if common < len(old.messages):
        deltas.append(TruncateDelta(from_index=common))
    deltas.extend(MessageDelta.of(m) for m in new.messages[common:])
    if new.title != old.title:
        deltas.append(TitleDelta(value=new.title))
    if new.env != old.env:
        deltas.append(EnvDelta(value=new.env))
    if new.metadata != old.metadata:
        patch = _merge_patch_between(old.metadata, new.metadata)
        if merge_patch(old.metadata, patch) == new.metadata:
            deltas.append(MetadataDelta(patch=patch))
        else:  # null values cannot be expressed as a merge patch
            deltas.append(MetadataDelta(patch=new.metadata, replace=True))
    deltas.extend(_link_deltas(old, new, "child_thread_ids", ChildLinkDelta))
    deltas.extend(_link_deltas(old, new, "summary_thread_ids", SummaryLinkDelta))
    return deltas


def _link_deltas(
    old: Thread,
    new: Thread,
    name: str,
    kind: type[ChildLinkDelta] | type[SummaryLinkDelta],
) -> list[Delta]:
    before: tuple[str, ...] = getattr(old, name)
    after: tuple[str, ...] = getattr(new, name)
    if after[: len(before)] != before:
        raise InvalidModification(f"The {name} of thread {old.id} can only grow")
    return [kind(thread_id=thread_id) for thread_id in after[len(before) :]]
