"""Hypothesis strategies for threadline's data types, shared by property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from threadline.deltas import (
    Delta,
    EnvDelta,
    MessageAmendDelta,
    MessageDelta,
    MetadataDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
)
from threadline.model import Message, Thread, ToolCall, ToolResult, Usage

text = st.text(max_size=40)
json_scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(text, inner, max_size=2),
    max_leaves=4,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=2)

usages = st.builds(
    Usage,
    model=st.none() | st.sampled_from(["claude-sonnet-4-5", "gpt-5", "o3"]),
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**6),
    cache_read_tokens=st.integers(0, 10**6),
    cache_write_tokens=st.integers(0, 10**6),
    cost_usd=st.none() | st.floats(0, 100, allow_nan=False),
)

tool_calls = st.builds(ToolCall, id=text, name=text, input=json_objects)
tool_results = st.builds(ToolResult, tool_call_id=text, output=json_values, is_error=st.booleans())

messages = st.builds(
    Message,
    role=st.sampled_from(["user", "assistant", "system"]),
    content=st.text(max_size=200),
    timestamp=st.integers(0, 2**45),
    tool_calls=st.lists(tool_calls, max_size=1).map(tuple),
    tool_results=st.lists(tool_results, max_size=1).map(tuple),
    usage=st.none() | usages,
    metadata=json_objects,
)

creates = st.builds(
    ThreadCreate,
    title=st.none() | text,
    created=st.integers(0, 2**45),
    env=json_objects,
    metadata=json_objects,
)


_KINDS = ["message", "message", "message", "amend", "title", "truncate", "meta", "env"]


@st.composite
def logs(draw: st.DrawFn, max_deltas: int = 12) -> list[Delta]:
    """A valid delta log: a create, then message/title/truncate/metadata/env deltas."""
    log: list[Delta] = [draw(creates)]
    current: list[Message] = []
    for _ in range(draw(st.integers(0, max_deltas))):
        kind = draw(st.sampled_from(_KINDS))
        delta: Delta
        if kind == "message" or (kind == "amend" and not current):
            delta = MessageDelta.of(draw(messages))
            current.append(delta.message)
        elif kind == "amend":
            index = draw(st.integers(0, len(current) - 1))
            old = current[index]
            new = draw(messages).model_copy(update={"id": old.id, "timestamp": old.timestamp})
            if new.usage is None and old.usage is not None:  # an amendment keeps usage
                new = new.model_copy(update={"usage": old.usage})
            delta = MessageAmendDelta(index=index, message=new, previous_usage=old.usage)
            current[index] = new
        elif kind == "title":
            delta = TitleDelta(value=draw(st.none() | text))
        elif kind == "truncate":
            delta = TruncateDelta(from_index=draw(st.integers(0, len(current))))
            del current[delta.from_index :]
        elif kind == "meta":
            delta = MetadataDelta(patch=draw(json_objects), replace=draw(st.booleans()))
        else:
            delta = EnvDelta(value=draw(json_objects))
        log.append(delta)
    return log


def thread_from(log: list[Delta]) -> Thread:
    from threadline.deltas import fold

    return fold(log)
