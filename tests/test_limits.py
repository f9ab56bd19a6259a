"""Issue 16 in the library and the CLI: the models refuse what the read paths
cannot show (non-finite numbers, costs and token counts past their bounds,
timestamps past year 9999), and a store written before those limits (holding a
cost that overflowed) still lists, and ``doctor --repair`` fixes it."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.test_cli import run_cli, succeeds
from threadline import Message, MetadataDelta, ThreadCreate, ThreadStore, ToolCall, Usage
from threadline.deltas import MessageDelta, delta_from_json
from threadline.model import (
    MAX_COST_USD,
    MAX_JSON_DEPTH,
    MAX_TIMESTAMP_MS,
    MAX_TOKENS,
    UsageTotals,
)


@pytest.mark.parametrize("cost", [math.inf, -math.inf, math.nan, MAX_COST_USD * 2, 1e308])
def test_a_usage_refuses_a_cost_that_is_not_finite_or_too_large(cost: float) -> None:
    with pytest.raises(ValidationError):
        Usage(cost_usd=cost)
    with pytest.raises(ValidationError):
        Message.model_validate_json(
            json.dumps({"role": "assistant", "usage": {"cost_usd": cost}}).replace(
                "Infinity", "1e999"
            )
        )


def test_a_usage_refuses_token_counts_past_the_bound() -> None:
    assert Usage(input_tokens=MAX_TOKENS).input_tokens == MAX_TOKENS
    for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        with pytest.raises(ValidationError):
            Usage.model_validate({field: MAX_TOKENS + 1})


def test_timestamps_past_year_9999_are_refused() -> None:
    assert Message(role="user", timestamp=MAX_TIMESTAMP_MS).timestamp == MAX_TIMESTAMP_MS
    with pytest.raises(ValidationError):
        Message(role="user", timestamp=MAX_TIMESTAMP_MS + 1)
    with pytest.raises(ValidationError):
        ThreadCreate(created=2**62)
    with pytest.raises(ValidationError):
        Message(role="user", timestamp=-1)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: Message(role="user", metadata={"a": [v]}),
        lambda v: ToolCall(id="c", name="n", input={"deep": {"x": v}}),
        lambda v: MetadataDelta(patch={"a": v}),
        lambda v: ThreadCreate(env={"e": v}),
    ],
)
def test_metadata_and_tool_input_refuse_nan_and_infinity(build: object) -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValidationError):
            build(value)  # type: ignore[operator]


def test_a_stored_delta_past_a_newer_limit_stays_readable() -> None:
    """Limits apply to what comes in, not to what a store already holds."""
    body = json.dumps(
        {
            "type": "assistant:message",
            "message": {"role": "assistant", "usage": {"cost_usd": 1e308}},
        }
    )
    with pytest.raises(ValidationError):
        delta_from_json(body)
    stored = delta_from_json(body, stored=True)
    assert isinstance(stored, MessageDelta)
    assert stored.message.usage is not None
    assert stored.message.usage.cost_usd == 1e308


def test_cost_totals_saturate_instead_of_overflowing() -> None:
    big = Usage.model_construct(cost_usd=1e308)  # as a store from before the bound holds it
    totals = UsageTotals().add(big).add(big)
    assert totals.cost_usd == sys.float_info.max
    assert UsageTotals.model_validate_json(totals.model_dump_json()) == totals


def test_the_cli_refuses_a_cost_that_is_not_finite_or_too_large(tmp_path: Path) -> None:
    home = tmp_path / "home"
    thread_id = succeeds(run_cli(home, "new")).strip()
    for cost in ("1e309", "inf", "nan", "2e9"):
        refused = run_cli(home, "add", thread_id, "x", "--role", "assistant", "--cost", cost)
        assert refused.returncode == 2, (cost, refused.stderr)
        assert "cost" in refused.stderr
    refused = run_cli(
        home, "add", thread_id, "x", "--role", "assistant", "--input-tokens", "2147483648"
    )
    assert refused.returncode == 2
    listed = json.loads(succeeds(run_cli(home, "list", "--json")))
    assert [t["v"] for t in listed["threads"]] == [1]


async def _legacy_store(path: Path) -> str:
    """A store holding what older versions accepted: a cost of 1e309 (stored as
    null, so the head's totals read back as null) and two of 1e308."""
    async with await ThreadStore.open(path) as store:
        thread = await store.create_thread(title="legacy", capture_environment=False)
        recorder = store.recorder
        deltas = [
            MessageDelta(
                type="assistant:message",
                message=Message.model_construct(
                    id=f"M-{n}",
                    role="assistant",
                    content=f"m{n}",
                    timestamp=1000 + n,
                    tool_calls=(),
                    tool_results=(),
                    usage=Usage.model_construct(
                        model=None,
                        input_tokens=1,
                        output_tokens=1,
                        cache_read_tokens=0,
                        cache_write_tokens=0,
                        cost_usd=cost,
                    ),
                    metadata={},
                ),
            )
            for n, cost in enumerate((math.inf, 1e308, 1e308))
        ]
        await recorder.append(thread.id, 1, deltas)
    # What the head's JSON held then: the overflowed total, serialised as null.
    with sqlite3.connect(path) as conn:
        (head,) = conn.execute("SELECT head FROM threads WHERE id = ?", (thread.id,)).fetchone()
        legacy = json.loads(head)
        legacy["totals"]["cost_usd"] = None
        conn.execute(
            "UPDATE threads SET head = ? WHERE id = ?", (json.dumps(legacy).encode(), thread.id)
        )
    conn.close()
    return thread.id


async def test_a_store_holding_an_overflowed_cost_lists_and_doctor_repairs_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    thread_id = await _legacy_store(home / "threads.db")
    listed = json.loads(succeeds(run_cli(home, "list", "--json")))
    assert [t["id"] for t in listed["threads"]] == [thread_id]
    assert succeeds(run_cli(home, "show", thread_id))
    found = run_cli(home, "doctor", "--json")
    assert found.returncode == 1, found.stderr
    assert {f["check"] for f in json.loads(found.stdout)["findings"]} == {"totals"}
    repaired = json.loads(succeeds(run_cli(home, "doctor", "--repair", "--json")))
    assert [f["repaired"] for f in repaired["findings"]] == [True]
    assert json.loads(succeeds(run_cli(home, "doctor", "--json")))["clean"] is True
    succeeds(run_cli(home, "add", thread_id, "after", "--role", "user"))
    async with await ThreadStore.open(home / "threads.db") as store:
        head = (await store.list_threads()).threads[0]
    assert head.v == 5
    assert head.totals.cost_usd == sys.float_info.max
    assert (head.totals.priced_messages, head.totals.unpriced_messages) == (2, 1)
    assert (head.totals.input_tokens, head.totals.output_tokens) == (3, 3)


def test_json_values_nest_at_most_64_deep() -> None:
    """Deeper JSON was accepted, then its head could not be read back (issue 16's
    hypothesis test found it): the JSON parser stops at its recursion limit."""
    value: object = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        value = [value]
    assert Message(role="user", metadata={"a": value}).metadata["a"] == value
    with pytest.raises(ValidationError):
        Message(role="user", metadata={"a": [value]})
    with pytest.raises(ValidationError):
        ThreadCreate(env={"a": [[value]]})
