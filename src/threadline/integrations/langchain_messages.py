"""LangChain messages as threadline messages, and back, exactly.

A LangChain message becomes a threadline :class:`~threadline.Message` that the
viewer, search and cost reports read: ``HumanMessage`` → ``user``,
``AIMessage`` → ``assistant`` with its tool calls and its
:class:`~threadline.Usage` (from ``usage_metadata`` and the model named in
``response_metadata``), ``ToolMessage`` → a ``user`` message holding one tool
result, ``SystemMessage`` → ``system``; any other kind becomes a ``user``
message. The LangChain message itself is kept in the message's metadata under
``"langchain"`` (LangChain's own dict form, or the checkpointer's typed
serialization when that form is not JSON), so :func:`from_threadline` gives
back an equal object.
"""

from __future__ import annotations

import base64
import copy
import math
from dataclasses import dataclass
from typing import Any

import orjson
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from pydantic import JsonValue

from threadline.ids import new_message_id, now_ms
from threadline.model import Message, Role, ToolCall, ToolResult, Usage

RAW_KEY = "langchain"
"""The key of a mirrored message's metadata that holds the LangChain message."""


def is_message_list(value: object) -> bool:
    """Whether a channel's value is a list of LangChain messages (mirrorable)."""
    return isinstance(value, list) and all(isinstance(item, BaseMessage) for item in value)


def text_of(content: str | list[str | dict[str, Any]]) -> str:
    """The text of a message's content (its text blocks, joined)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def usage_of(message: AIMessage) -> Usage | None:
    """The usage an AI message reports; input tokens are the uncached ones."""
    usage = message.usage_metadata
    meta = message.response_metadata or {}
    model = meta.get("model_name") or meta.get("model")
    if usage is None:
        return None
    details = usage.get("input_token_details") or {}
    cache_read = int(details.get("cache_read") or 0)
    cache_write = int(details.get("cache_creation") or 0)
    cost = meta.get("cost_usd")
    return Usage(
        model=model if isinstance(model, str) else None,
        input_tokens=max(0, int(usage.get("input_tokens") or 0) - cache_read - cache_write),
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cost_usd=float(cost) if isinstance(cost, int | float) and cost >= 0 else None,
    )


def _raw(message: BaseMessage, serde: SerializerProtocol) -> JsonValue:
    as_dict = message_to_dict(message)
    try:
        encoded = orjson.dumps(as_dict)
        if orjson.loads(encoded) == as_dict and messages_from_dict([as_dict])[0] == message:
            return as_dict
    except (TypeError, ValueError):
        pass
    kind, data = serde.dumps_typed(message)
    return {"typed": [kind, base64.b64encode(data).decode()]}


def to_threadline(message: BaseMessage, serde: SerializerProtocol) -> Message:
    """The threadline message that mirrors ``message`` (see the module's docstring)."""
    role: Role = "user"
    content = text_of(message.content)
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    usage: Usage | None = None
    if isinstance(message, AIMessage):
        role = "assistant"
        tool_calls = tuple(
            ToolCall(id=call.get("id") or "", name=call["name"], input=_json_dict(call["args"]))
            for call in message.tool_calls
        )
        usage = usage_of(message)
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ToolMessage):
        tool_results = (
            ToolResult(
                tool_call_id=message.tool_call_id,
                output=content,
                is_error=message.status == "error",
            ),
        )
        content = ""
    elif not isinstance(message, HumanMessage):
        content = content or str(message.content)
    return Message(
        id=message.id or new_message_id(),
        role=role,
        content=content,
        timestamp=now_ms(),
        tool_calls=tool_calls,
        tool_results=tool_results,
        usage=usage,
        metadata={RAW_KEY: _raw(message, serde)},
    )


def _json_dict(args: dict[str, Any]) -> dict[str, JsonValue]:
    try:
        loaded = orjson.loads(orjson.dumps(args, default=str))
    except TypeError:
        return {"repr": repr(args)}
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def from_threadline(message: Message, serde: SerializerProtocol) -> BaseMessage:
    """The LangChain message a mirrored threadline message keeps."""
    raw = message.metadata.get(RAW_KEY)
    if isinstance(raw, dict) and "typed" in raw:
        typed = raw["typed"]
        assert isinstance(typed, list)
        assert len(typed) == 2
        kind, data = typed
        assert isinstance(kind, str)
        assert isinstance(data, str)
        value = serde.loads_typed((kind, base64.b64decode(data)))
        assert isinstance(value, BaseMessage)
        return value
    if isinstance(raw, dict):
        return messages_from_dict([raw])[0]
    raise ValueError(f"Message {message.id} does not mirror a LangChain message")


_ATOMS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Template:
    """A LangChain message that hands out fresh, equal copies quickly.

    LangGraph's callers may edit the messages a checkpointer gives them, in
    place, so every read must get objects of its own (LangGraph's savers
    decode them anew). Decoding is the slow part of a read; here a copy is
    the message's fields, with each container field (tool calls, metadata,
    content blocks) new: empty ones made empty, the others loaded again from
    their JSON. A message with a field JSON cannot carry exactly (a tuple, a
    datetime, an object) or with extra fields is deep-copied. ``obj`` itself
    is never handed out.
    """

    obj: BaseMessage
    filled: bytes | None  # the non-empty containers as one JSON object; None: deep-copy
    empty: tuple[tuple[str, type[list[Any]] | type[dict[str, Any]]], ...] = ()

    @classmethod
    def of(cls, obj: BaseMessage) -> Template:
        if obj.__pydantic_extra__:
            return cls(obj, None)
        filled: dict[str, Any] = {}
        empty: list[tuple[str, type[list[Any]] | type[dict[str, Any]]]] = []
        for name, value in obj.__dict__.items():
            if value.__class__ in _ATOMS:
                continue
            if not _plain(value):
                return cls(obj, None)
            if value:
                filled[name] = value
            else:
                empty.append((name, value.__class__))
        return cls(obj, orjson.dumps(filled), tuple(empty))

    def copy(self) -> BaseMessage:
        """A new message equal to ``obj`` that shares no mutable part with it."""
        obj = self.obj
        if self.filled is None:
            return copy.deepcopy(obj)
        fields = obj.__dict__.copy()
        fields.update(orjson.loads(self.filled))
        for name, kind in self.empty:
            fields[name] = kind()
        # what pydantic's own copy sets, without its per-call overhead
        fresh = obj.__class__.__new__(obj.__class__)
        _set(fresh, "__dict__", fields)
        _set(fresh, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
        _set(fresh, "__pydantic_extra__", None if obj.__pydantic_extra__ is None else {})
        private = obj.__pydantic_private__
        _set(fresh, "__pydantic_private__", None if private is None else dict(private))
        return fresh

    def equals(self, other: object) -> bool:
        """Whether ``other`` is a message of the same type and fields."""
        return (
            other.__class__ is self.obj.__class__
            and isinstance(other, BaseMessage)
            and other.__dict__ == self.obj.__dict__
            and other.__pydantic_extra__ == self.obj.__pydantic_extra__
        )


_set = object.__setattr__


def _plain(value: object) -> bool:
    """Only dicts with str keys, lists and JSON atoms (what JSON gives back as
    is: not an int beyond 64 bits, nor a float that is not finite)."""
    if isinstance(value, float):
        return math.isfinite(value)  # JSON has no NaN or infinity
    if value.__class__ is int:
        return isinstance(value, int) and -(2**63) <= value < 2**64
    if value.__class__ in _ATOMS:
        return True
    if value.__class__ is list:
        return all(_plain(item) for item in value)
    if value.__class__ is dict:
        return all(k.__class__ is str and _plain(v) for k, v in value.items())
    return False
