"""The data model's fast paths give what pydantic's general ones give."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from threadline.deltas import MessageDelta, delta_from_json, delta_to_json
from threadline.errors import InvalidDelta
from threadline.model import Message, ThreadHead, Usage, UsageTotals
from threadline.writer import message_delta


def test_model_copy_with_update_equals_pydantics_and_leaves_the_original() -> None:
    head = ThreadHead(id="T-1", title="a", message_count=2, metadata={"k": 1})
    update = {"v": 3, "title": "b"}
    fast = head.model_copy(update=update)
    general = BaseModel.model_copy(head, update=update)
    assert fast == general
    assert fast.model_fields_set == general.model_fields_set
    assert fast.model_dump_json() == general.model_dump_json()
    assert (head.v, head.title) == (1, "a")


def test_model_copy_without_update_is_an_equal_distinct_object() -> None:
    message = Message(role="user", content="hi")
    copied = message.model_copy()
    assert copied == message
    assert copied is not message
    assert copied.model_fields_set == message.model_fields_set


def test_usage_totals_add_equals_validated_totals() -> None:
    totals = UsageTotals().add(Usage(input_tokens=3, output_tokens=4, cost_usd=0.5))
    totals = totals.add(Usage(input_tokens=1, cache_read_tokens=2))
    expected = UsageTotals(
        input_tokens=4,
        output_tokens=4,
        cache_read_tokens=2,
        cost_usd=0.5,
        priced_messages=1,
        unpriced_messages=1,
    )
    assert totals == expected
    assert UsageTotals.model_validate_json(totals.model_dump_json()) == expected
    assert hash(totals) == hash(expected)


def test_message_delta_without_validation_equals_the_validated_one() -> None:
    for role in ("user", "assistant", "system"):
        message = Message(role=role, content=f"a {role} says", usage=Usage(input_tokens=1))
        trusted = message_delta(message)
        assert trusted == MessageDelta.of(message)
        assert delta_to_json(trusted) == delta_to_json(MessageDelta.of(message))
        assert delta_from_json(delta_to_json(trusted)) == trusted


def test_message_delta_refuses_a_role_that_skipped_validation() -> None:
    unchecked: dict[str, Any] = {"role": "tool", "content": "x"}
    message = Message.model_construct(**unchecked)
    with pytest.raises(InvalidDelta, match="'tool'"):
        message_delta(message)
