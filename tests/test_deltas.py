"""Property tests of the pure core: apply, fold, heads, diff and JSON round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import logs, messages, thread_from
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageAmendDelta,
    MessageDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    apply,
    apply_head,
    delta_from_json,
    delta_to_json,
    diff,
    fold,
    fold_head,
    head_of,
    merge_patch,
)
from threadline.errors import InvalidDelta, InvalidModification
from threadline.model import Message, Thread, Usage, thread_from_json, thread_to_json


@given(logs())
def test_version_is_the_number_of_deltas(log: list[Delta]) -> None:
    assert fold(log).v == len(log)


@given(logs(), messages)
def test_apply_increments_version_by_exactly_one(log: list[Delta], message: Message) -> None:
    thread = fold(log)
    assert apply(thread, MessageDelta.of(message)).v == thread.v + 1
    assert apply(thread, TitleDelta(value="t")).v == thread.v + 1


@given(logs())
def test_fold_is_apply_one_at_a_time(log: list[Delta]) -> None:
    state: Thread | None = None
    for delta in log:
        state = apply(state, delta)
    assert state == fold(log)
    assert fold(log[3:], fold(log[:3])) == fold(log) if len(log) > 3 else True


@given(logs())
def test_head_fold_matches_thread_fold(log: list[Delta]) -> None:
    thread = fold(log)
    head = fold_head(log)
    assert head.model_dump(exclude={"message_count", "last_activity", "totals"}) == (
        thread.model_dump(exclude={"messages"})
    )
    assert head.message_count == len(thread.messages)
    if not any(isinstance(d, TruncateDelta) for d in log):
        # An amendment takes a cost out and puts one in: floats may differ in the last bit.
        expected = head_of(thread)
        assert head.totals.cost_usd == pytest.approx(expected.totals.cost_usd, rel=1e-9, abs=1e-9)
        totals = head.totals.model_copy(update={"cost_usd": expected.totals.cost_usd})
        assert head.model_copy(update={"totals": totals}) == expected


@given(logs())
def test_head_totals_count_every_response_ever_appended(log: list[Delta]) -> None:
    """...with an amended message's usage replaced by its amendment's."""
    head = fold_head(log)
    spent: list[Usage | None] = []  # per appended message, its latest usage
    current: list[int] = []  # per position, its message's index in spent
    for d in log:
        if isinstance(d, MessageDelta):
            current.append(len(spent))
            spent.append(d.message.usage)
        elif isinstance(d, MessageAmendDelta):
            spent[current[d.index]] = d.message.usage
        elif isinstance(d, TruncateDelta):
            del current[d.from_index :]
    usages = [u for u in spent if u is not None]
    assert head.totals.input_tokens == sum(u.input_tokens for u in usages)
    assert head.totals.output_tokens == sum(u.output_tokens for u in usages)
    assert head.totals.priced_messages + head.totals.unpriced_messages == len(usages)


@given(logs(), st.data())
def test_truncate_keeps_exactly_the_prefix(log: list[Delta], data: st.DataObject) -> None:
    thread = fold(log)
    index = data.draw(st.integers(0, len(thread.messages)))
    cut = apply(thread, TruncateDelta(from_index=index))
    assert cut.messages == thread.messages[:index]
    assert cut.v == thread.v + 1


def test_truncate_beyond_the_end_is_refused() -> None:
    thread = fold([ThreadCreate(), MessageDelta.of(Message(role="user", content="a"))])
    with pytest.raises(InvalidDelta, match="cannot truncate from index 2"):
        apply(thread, TruncateDelta(from_index=2))


@given(logs())
def test_delta_json_round_trip_is_lossless(log: list[Delta]) -> None:
    for delta in log:
        assert delta_from_json(delta_to_json(delta)) == delta


@given(logs())
def test_thread_json_round_trip_is_lossless(log: list[Delta]) -> None:
    thread = fold(log)
    assert thread_from_json(thread_to_json(thread)) == thread


def test_delta_json_has_the_spec_shape() -> None:
    message = Message(id="M-1", role="user", content="hi", timestamp=5)
    assert delta_to_json(MessageDelta.of(message)) == (
        b'{"type":"user:message","message":{"id":"M-1","role":"user","content":"hi","timestamp":5}}'
    )
    assert delta_to_json(TitleDelta(value="x")) == b'{"type":"title","value":"x"}'
    assert (
        delta_to_json(TruncateDelta(from_index=3)) == b'{"type":"thread:truncate","from_index":3}'
    )


@given(logs(), logs())
def test_diff_then_fold_reaches_the_modified_thread(
    old_log: list[Delta], other: list[Delta]
) -> None:
    old = fold(old_log)
    target = fold(other)
    # Same identity as old, any messages/title/env/metadata of another thread.
    new = old.model_copy(
        update={
            "v": old.v + 1,
            "title": target.title,
            "messages": target.messages,
            "env": target.env,
            "metadata": target.metadata,
        }
    )
    deltas = diff(old, new)
    result = fold(deltas, old)
    assert result.model_dump(exclude={"v"}) == new.model_dump(exclude={"v"})
    assert result.v == old.v + len(deltas)


def test_diff_refuses_a_modifier_that_does_not_raise_the_version() -> None:
    thread = fold([ThreadCreate()])
    with pytest.raises(InvalidModification, match="greater version"):
        diff(thread, thread.model_copy(update={"title": "x"}))


def test_diff_refuses_identity_changes_and_dropped_links() -> None:
    thread = fold([ThreadCreate(), ChildLinkDelta(thread_id="T-c")])
    with pytest.raises(InvalidModification, match="id"):
        diff(thread, thread.model_copy(update={"id": "T-other", "v": 3}))
    with pytest.raises(InvalidModification, match="only grow"):
        diff(thread, thread.model_copy(update={"child_thread_ids": (), "v": 3}))


def test_message_delta_role_must_match_its_type() -> None:
    with pytest.raises(ValueError, match="cannot hold a user message"):
        delta_from_json(b'{"type":"assistant:message","message":{"role":"user","content":"x"}}')


def test_first_delta_must_create_the_thread() -> None:
    with pytest.raises(InvalidDelta, match="must be thread:create"):
        apply(None, TitleDelta(value="x"))
    with pytest.raises(InvalidDelta, match="already exists"):
        apply(fold([ThreadCreate()]), ThreadCreate())
    with pytest.raises(InvalidDelta):
        apply_head(None, TitleDelta(value="x"))


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    patch = {"a": "z", "c": {"f": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}}  # type: ignore[arg-type]
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_thread_helpers_are_one_version_each() -> None:
    thread = thread_from([ThreadCreate(title="a")])
    changed = thread.with_title("b").with_message(Message(role="user", content="x"))
    assert (changed.v, changed.title, len(changed.messages)) == (3, "b", 1)
    assert changed.truncated(0).messages == ()
