"""The contract of the :class:`~threadline.recorders.roles.UsageIndex` role:
usage of every message ever appended, rolled up by thread, model and day,
kept in the same transaction as each append and delete.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.suite import spawn, spent
from threadline.deltas import MessageDelta, ThreadCreate, TruncateDelta
from threadline.errors import InvalidDelta
from threadline.model import Message, Usage
from threadline.planner import reprice_row
from threadline.pricing import DAY_MS, compute_cost, price_usage
from threadline.recorders.roles import UsageGroup, UsageIndex, UsagePricing


def key(group: UsageGroup) -> tuple[str, str | None, int, float | None]:
    return (group.thread_id, group.model, group.day, group.cost_usd)


class UsageIndexContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> UsageIndex:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[UsageIndex]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    # -- usage roll-ups ----------------------------------------------------------------

    async def test_usage_rollup_groups_by_thread_model_and_day(self, recorder: UsageIndex) -> None:
        await recorder.append(
            "A",
            0,
            [
                ThreadCreate(id="A"),
                MessageDelta.of(spent(1, tokens=(100, 10, 5, 1), cost=0.25)),
                MessageDelta.of(spent(2, tokens=(200, 20, 0, 0), cost=0.5)),
                MessageDelta.of(spent(3, day=20_001, cost=1.0)),
                MessageDelta.of(spent(4, model="gpt-5", cost=2.0)),
                MessageDelta.of(Message(role="user", content="no usage")),
            ],
        )
        await recorder.append("B", 0, [ThreadCreate(id="B"), MessageDelta.of(spent(5))])
        groups = sorted(await recorder.usage_rollup(), key=key)
        assert groups == [
            UsageGroup("A", "claude-sonnet-4-5", 20_000, 2, 300, 30, 5, 1, 0.75, 0, 2),
            UsageGroup("A", "claude-sonnet-4-5", 20_001, 1, 100, 10, 0, 0, 1.0, 0, 1),
            UsageGroup("A", "gpt-5", 20_000, 1, 100, 10, 0, 0, 2.0, 0, 1),
            UsageGroup("B", "claude-sonnet-4-5", 20_000, 1, 100, 10, 0, 0, 0.5, 0, 1),
        ]
        assert await recorder.usage_rollup(["B", "unknown"]) == [groups[3]]

    async def test_costs_are_priced_when_written_and_stored(self, recorder: UsageIndex) -> None:
        one_hour = spent(11, cost=None, tokens=(100, 10, 0, 2_000))
        assert one_hour.usage is not None
        one_hour = one_hour.model_copy(
            update={"usage": one_hour.usage.model_copy(update={"cache_write_1h_tokens": 2_000})}
        )
        await recorder.append(
            "A",
            0,
            [ThreadCreate(id="A")]
            + [MessageDelta.of(spent(i, cost=None)) for i in range(3)]
            + [MessageDelta.of(spent(9, cost=None, tokens=(100, 10, 0, 2_000)))]
            + [MessageDelta.of(one_hour)]
            + [MessageDelta.of(spent(10, model=None, cost=None))]
            + [MessageDelta.of(spent(12, model="no-such-model-anywhere", cost=None))]
            + [MessageDelta.of(spent(13, cost=0.5))],
        )
        groups = {g.model: g for g in await recorder.usage_rollup()}
        each = price_usage(spent(0, cost=None).usage or Usage(), 20_000 * DAY_MS).cost_usd
        five = compute_cost("claude-sonnet-4-5", 100, 10, 0, 2_000, 20_000)
        hour = compute_cost("claude-sonnet-4-5", 100, 10, 0, 2_000, 20_000, 2_000)
        assert each is not None
        assert five is not None
        assert hour is not None
        assert hour > five  # a 1-hour cache write costs more than a 5-minute one
        claude = groups["claude-sonnet-4-5"]
        assert (claude.messages, claude.reported_messages, claude.computed_messages) == (6, 1, 5)
        assert claude.cache_write_1h_tokens == 2_000
        assert claude.computed_cost_usd == pytest.approx(3 * each + five + hour)
        assert claude.cost_usd == pytest.approx(3 * each + five + hour + 0.5)
        for model in (None, "no-such-model-anywhere"):
            assert (groups[model].messages, groups[model].unpriced_messages) == (1, 1)
            assert groups[model].cost_usd is None

    async def test_a_message_logged_again_counts_once(self, recorder: UsageIndex) -> None:
        first, second = spent(1, cost=0.25), spent(2, cost=None)
        await recorder.append(
            "A", 0, [ThreadCreate(id="A"), MessageDelta.of(first), MessageDelta.of(second)]
        )
        before = await recorder.usage_rollup(["A"])
        # A merge that re-appends the same messages (within one append and across two).
        await recorder.append(
            "A",
            3,
            [TruncateDelta(from_index=0), MessageDelta.of(first), MessageDelta.of(first)],
        )
        await recorder.append("A", 6, [MessageDelta.of(second)])
        assert await recorder.usage_rollup(["A"]) == before

    async def test_usage_rollup_keeps_truncated_messages_and_drops_deleted_threads(
        self, recorder: UsageIndex
    ) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A"), MessageDelta.of(spent(1))])
        await recorder.append("A", 2, [TruncateDelta(from_index=0), MessageDelta.of(spent(2))])
        await recorder.append("B", 0, [ThreadCreate(id="B"), MessageDelta.of(spent(3))])
        [group] = await recorder.usage_rollup(["A"])
        assert (group.messages, group.cost_usd) == (2, 1.0)
        head = await recorder.head("A")
        assert head is not None
        assert (head.totals.input_tokens, head.totals.cost_usd) == (group.input_tokens, 1.0)
        await recorder.delete("A")
        assert [g.thread_id for g in await recorder.usage_rollup()] == ["B"]

    async def test_usage_rollup_of_subtrees_counts_each_thread_once(
        self, recorder: UsageIndex
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R"), MessageDelta.of(spent(1))])
        await spawn(recorder, "R", "C")
        await spawn(recorder, "C", "G")
        await spawn(recorder, "R", "S", summary=True)
        for thread_id, n in (("C", 2), ("G", 3), ("S", 4)):
            head = await recorder.head(thread_id)
            assert head is not None
            await recorder.append(thread_id, head.v, [MessageDelta.of(spent(n))])
        alone = await recorder.usage_rollup(["R"])
        assert [g.thread_id for g in alone] == ["R"]
        tree = await recorder.usage_rollup(["R", "C"], subtrees=True)
        assert sorted(g.thread_id for g in tree) == ["C", "G", "R", "S"]
        below = await recorder.usage_rollup(["C"], subtrees=True)
        assert sorted(g.thread_id for g in below) == ["C", "G"]

    async def test_a_failed_append_many_counts_no_usage(self, recorder: UsageIndex) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A"), MessageDelta.of(spent(1))])
        with pytest.raises(InvalidDelta):
            await recorder.append_many(
                [
                    ("A", 2, [MessageDelta.of(spent(2)), TruncateDelta(from_index=0)]),
                    ("A", 4, [TruncateDelta(from_index=5)]),
                ]
            )
        assert [g.messages for g in await recorder.usage_rollup(["A"])] == [1]

    async def test_delete_many_drops_the_usage_of_each_thread(self, recorder: UsageIndex) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P"), MessageDelta.of(spent(1))])
        await spawn(recorder, "P", "C")
        await recorder.append("C", 1, [MessageDelta.of(spent(2))])
        assert len(await recorder.usage_rollup()) == 2
        assert await recorder.delete_many(["P", "C"]) == [True, True]
        assert await recorder.usage_rollup() == []


class UsagePricingContract(abc.ABC):
    """The :class:`~threadline.recorders.roles.UsagePricing` role: stored costs priced again."""

    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> UsagePricing:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def pricing(self, tmp_path: Path) -> AsyncIterator[UsagePricing]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    async def test_reprice_sets_each_rows_figure_and_keeps_reported_costs(
        self, pricing: UsagePricing
    ) -> None:
        assert isinstance(pricing, UsageIndex)
        await pricing.append(
            "A",
            0,
            [
                ThreadCreate(id="A"),
                MessageDelta.of(spent(1, cost=None)),
                MessageDelta.of(spent(2, cost=0.5)),
                MessageDelta.of(spent(3, model=None, cost=None)),
            ],
        )
        stored = sorted(await pricing.usage_rollup(["A"]), key=lambda g: g.model or "")
        # A price list that doubles every computed figure, then the installed one again.
        doubled = await pricing.reprice_usage(
            lambda row: (
                row._replace(cost_usd=2 * (reprice_row(row).cost_usd or 0.0))
                if row.cost_source == "computed"
                else row
            )
        )
        assert doubled == 1
        groups = sorted(await pricing.usage_rollup(["A"]), key=lambda g: g.model or "")
        assert groups[0] == stored[0]  # the message without a model stays unpriced
        before, group = stored[1], groups[1]
        assert group.computed_cost_usd == pytest.approx(2 * before.computed_cost_usd)
        assert group.cost_usd == pytest.approx(0.5 + 2 * before.computed_cost_usd)
        assert await pricing.reprice_usage(reprice_row) == 1
        assert sorted(await pricing.usage_rollup(["A"]), key=lambda g: g.model or "") == stored
        # Rows never priced (none here: every row was priced when written).
        assert await pricing.reprice_usage(reprice_row, never_priced=True) == 0
