"""Cost roll-ups: a thread, a sub-agent tree, by model and by day (issue 3)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import genai_prices
import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline import Message, ThreadNotFound, ThreadStore, Usage
from threadline.costs import CostLine, compute_cost, price_source
from threadline.deltas import MessageDelta, TruncateDelta
from threadline.recorders import MemoryRecorder, SqliteRecorder, ThreadRecorder

DAY = 86_400_000
FIRST_DAY = 20_089  # 2025-01-01
KNOWN = ("claude-sonnet-4-5", "gpt-5")


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    path = ":memory:" if request.param == "memory" else tmp_path / "threads.db"
    store = await ThreadStore.open(path)
    yield store
    await store.close()


def reference_price(usage: Usage, day: int) -> float | None:
    """genai-prices asked directly, the way its docs show, for one message."""
    assert usage.model is not None
    total_input = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=total_input,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            ),
            usage.model,
            genai_request_timestamp=dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day),
        )
    except LookupError:
        return None
    return float(price.total_price)


def answer(
    model: str | None,
    *,
    cost: float | None,
    tokens: tuple[int, int, int, int] = (1_000, 100, 0, 0),
    day: int = FIRST_DAY,
) -> Message:
    return Message(
        role="assistant",
        content="done",
        timestamp=day * DAY + 1234,
        usage=Usage(
            model=model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_read_tokens=tokens[2],
            cache_write_tokens=tokens[3],
            cost_usd=cost,
        ),
    )


async def thread_with(store: ThreadStore, *messages: Message) -> str:
    thread = await store.create_thread(messages=messages, capture_environment=False)
    return thread.id


# -- which costs were computed ------------------------------------------------------------


async def test_missing_costs_are_computed_and_reported_apart(store: ThreadStore) -> None:
    computable = answer("claude-sonnet-4-5", cost=None, tokens=(2_000, 300, 10_000, 500))
    thread_id = await thread_with(
        store,
        answer("gpt-5", cost=0.5),
        computable,
        answer("no-such-model-xyz", cost=None),
        answer(None, cost=None),
        Message(role="user", content="no usage"),
    )
    report = await store.cost_report(thread_id)
    assert computable.usage is not None
    expected = reference_price(computable.usage, FIRST_DAY)
    assert expected is not None
    assert expected > 0
    total = report.total
    assert (total.messages, total.computed_messages, total.unpriced_messages) == (4, 1, 2)
    assert total.reported_cost_usd == 0.5
    assert total.computed_cost_usd == pytest.approx(expected, rel=1e-12)
    assert total.cost_usd == pytest.approx(0.5 + expected, rel=1e-12)
    assert report.unknown_models == ("no-such-model-xyz",)
    assert report.price_source == price_source()
    assert report.price_source.startswith("genai-prices ")
    assert (report.thread_id, report.tree, report.by, report.groups) == (thread_id, False, None, ())


async def test_each_message_is_priced_on_its_own_size(store: ThreadStore) -> None:
    """Prices can be tiered by a request's size: two requests of 150k input
    tokens do not cost what one of 300k does."""
    big = (150_000, 1_000, 0, 0)
    thread_id = await thread_with(
        store,
        answer("claude-sonnet-4-5", cost=None, tokens=big),
        answer("claude-sonnet-4-5", cost=None, tokens=big),
    )
    one = compute_cost("claude-sonnet-4-5", *big, FIRST_DAY)
    both = compute_cost("claude-sonnet-4-5", 300_000, 2_000, 0, 0, FIRST_DAY)
    assert one is not None
    assert both is not None
    assert both != pytest.approx(2 * one)
    report = await store.cost_report(thread_id)
    assert report.total.computed_cost_usd == pytest.approx(2 * one, rel=1e-12)


async def test_cost_of_a_thread_alone_matches_its_head_totals(store: ThreadStore) -> None:
    thread_id = await thread_with(
        store, answer("gpt-5", cost=0.25, tokens=(10, 20, 30, 40)), answer("gpt-5", cost=0.5)
    )
    head = await store.recorder.head(thread_id)
    assert head is not None
    total = (await store.cost_report(thread_id)).total
    assert (total.input_tokens, total.output_tokens) == (
        head.totals.input_tokens,
        head.totals.output_tokens,
    )
    assert (total.cache_read_tokens, total.cache_write_tokens) == (30, 40)
    assert total.reported_cost_usd == head.totals.cost_usd == 0.75


async def test_grouped_by_model_and_by_day(store: ThreadStore) -> None:
    first = await thread_with(
        store, answer("gpt-5", cost=1.0), answer("claude-sonnet-4-5", cost=2.0, day=FIRST_DAY + 1)
    )
    await store.spawn_subagent_thread(first, "sub")
    await thread_with(store, answer("gpt-5", cost=4.0, day=FIRST_DAY + 1), answer(None, cost=8.0))
    by_model = await store.cost_report(by="model")
    assert [(g.key, g.cost_usd) for g in by_model.groups] == [
        ("(no model)", 8.0),
        ("claude-sonnet-4-5", 2.0),
        ("gpt-5", 5.0),
    ]
    assert (by_model.total.cost_usd, by_model.threads) == (15.0, 2)
    by_day = await store.cost_report(by="day")
    assert [(g.key, g.cost_usd) for g in by_day.groups] == [
        ("2025-01-01", 9.0),
        ("2025-01-02", 6.0),
    ]
    assert [g.key for g in (await store.cost_report(first, by="day")).groups] == [
        "2025-01-01",
        "2025-01-02",
    ]
    with pytest.raises(ThreadNotFound):
        await store.cost_report("T-nope")


# -- roll-ups equal an independent sum over generated threads -----------------------------

usages = st.builds(
    Usage,
    model=st.sampled_from([*KNOWN, "no-such-model-xyz", None]),
    input_tokens=st.integers(0, 300_000),
    output_tokens=st.integers(0, 20_000),
    cache_read_tokens=st.integers(0, 100_000),
    cache_write_tokens=st.integers(0, 10_000),
    cost_usd=st.none() | st.floats(0, 5, allow_nan=False),
)


@dataclass
class Plan:
    """A tree of threads: ``parents[i]`` is the index of thread ``i+1``'s parent;
    each thread gets messages (some with usage), some of them truncated later."""

    parents: list[int]
    messages: list[list[tuple[Usage | None, int]]]
    truncate: list[bool] = field(default_factory=list)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    size = draw(st.integers(1, 6))
    parents = [draw(st.integers(0, i)) for i in range(size - 1)]
    messages = [
        draw(
            st.lists(
                st.tuples(st.none() | usages, st.integers(FIRST_DAY, FIRST_DAY + 400)), max_size=4
            )
        )
        for _ in range(size)
    ]
    truncate = [draw(st.booleans()) for _ in range(size)]
    return Plan(parents, messages, truncate)


@dataclass
class Expected:
    line: CostLine
    by_model: dict[str, CostLine]
    by_day: dict[str, CostLine]


def independent_sum(usages_by_day: list[tuple[Usage, int]]) -> Expected:
    """Sum message by message, pricing with genai-prices directly."""

    def add(line: CostLine, usage: Usage, day: int) -> CostLine:
        reported = usage.cost_usd
        computed = (
            None if reported is not None or usage.model is None else reference_price(usage, day)
        )
        return CostLine(
            key=line.key,
            messages=line.messages + 1,
            input_tokens=line.input_tokens + usage.input_tokens,
            output_tokens=line.output_tokens + usage.output_tokens,
            cache_read_tokens=line.cache_read_tokens + usage.cache_read_tokens,
            cache_write_tokens=line.cache_write_tokens + usage.cache_write_tokens,
            reported_cost_usd=line.reported_cost_usd + (reported or 0.0),
            computed_cost_usd=line.computed_cost_usd + (computed or 0.0),
            computed_messages=line.computed_messages + (computed is not None),
            unpriced_messages=line.unpriced_messages + (reported is None and computed is None),
        )

    total = CostLine(key="total")
    by_model: dict[str, CostLine] = {}
    by_day: dict[str, CostLine] = {}
    for usage, day in usages_by_day:
        total = add(total, usage, day)
        model = usage.model or "(no model)"
        by_model[model] = add(by_model.get(model, CostLine(key=model)), usage, day)
        date = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        by_day[date] = add(by_day.get(date, CostLine(key=date)), usage, day)
    return Expected(total, by_model, by_day)


def assert_same(actual: CostLine, expected: CostLine) -> None:
    exact = actual.model_dump(exclude={"reported_cost_usd", "computed_cost_usd", "cost_usd"})
    assert exact == expected.model_dump(
        exclude={"reported_cost_usd", "computed_cost_usd", "cost_usd"}
    )
    assert actual.reported_cost_usd == pytest.approx(expected.reported_cost_usd, rel=1e-9)
    assert actual.computed_cost_usd == pytest.approx(expected.computed_cost_usd, rel=1e-9)


async def check_plan(recorder: ThreadRecorder, plan: Plan) -> None:
    async with ThreadStore(recorder) as store:
        ids = [(await store.create_thread(capture_environment=False)).id]
        for parent in plan.parents:
            ids.append((await store.spawn_subagent_thread(ids[parent], "task")).id)
        for thread_id, planned, truncate in zip(ids, plan.messages, plan.truncate, strict=True):
            for usage, day in planned:
                message = Message(role="assistant", usage=usage, timestamp=day * DAY + 7)
                await store.append_message(thread_id, message)
            if truncate:
                head = await store.recorder.head(thread_id)
                assert head is not None
                await store.append_deltas(thread_id, head.v, [TruncateDelta(from_index=0)])
        unrelated = await store.create_thread(
            messages=[answer("gpt-5", cost=100.0)], capture_environment=False
        )

        spent: dict[str, list[tuple[Usage, int]]] = defaultdict(list)
        for thread_id in [*ids, unrelated.id]:
            for record in await store.history(thread_id):  # truncated messages too
                delta = record.delta
                if isinstance(delta, MessageDelta) and delta.message.usage is not None:
                    day = delta.message.timestamp // DAY
                    spent[thread_id].append((delta.message.usage, day))

        tree = await store.cost_report(ids[0], tree=True)
        assert_same(tree.total, independent_sum([u for i in ids for u in spent[i]]).line)
        alone = await store.cost_report(ids[0])
        assert_same(alone.total, independent_sum(spent[ids[0]]).line)
        everything = [u for i in [*ids, unrelated.id] for u in spent[i]]
        expected = independent_sum(everything)
        by_model = await store.cost_report(by="model")
        assert_same(by_model.total, expected.line)
        assert [g.key for g in by_model.groups] == sorted(expected.by_model)
        for group in by_model.groups:
            assert_same(group, expected.by_model[group.key])
        by_day = await store.cost_report(by="day")
        assert [g.key for g in by_day.groups] == sorted(expected.by_day)
        for group in by_day.groups:
            assert_same(group, expected.by_day[group.key])


@given(plans())
def test_rollups_equal_an_independent_sum_in_memory(plan: Plan) -> None:
    asyncio.run(check_plan(MemoryRecorder(), plan))


@given(plans())
def test_rollups_equal_an_independent_sum_on_sqlite(plan: Plan) -> None:
    asyncio.run(check_plan(SqliteRecorder(":memory:"), plan))
