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
from threadline.model import Message
from threadline.recorders.roles import UsageGroup, UsageIndex


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
            UsageGroup("A", "claude-sonnet-4-5", 20_000, 2, 300, 30, 5, 1, 0.75),
            UsageGroup("A", "claude-sonnet-4-5", 20_001, 1, 100, 10, 0, 0, 1.0),
            UsageGroup("A", "gpt-5", 20_000, 1, 100, 10, 0, 0, 2.0),
            UsageGroup("B", "claude-sonnet-4-5", 20_000, 1, 100, 10, 0, 0, 0.5),
        ]
        assert await recorder.usage_rollup(["B", "unknown"]) == [groups[3]]

    async def test_unpriced_usage_groups_only_messages_of_the_same_size(
        self, recorder: UsageIndex
    ) -> None:
        await recorder.append(
            "A",
            0,
            [ThreadCreate(id="A")]
            + [MessageDelta.of(spent(i, cost=None)) for i in range(3)]
            + [MessageDelta.of(spent(9, cost=None, tokens=(7, 7, 7, 7)))]
            + [MessageDelta.of(spent(10, model=None, cost=None))],
        )
        groups = sorted(await recorder.usage_rollup(), key=lambda g: (g.model or "", g.messages))
        assert groups == [
            UsageGroup("A", None, 20_000, 1, 100, 10, 0, 0, None),
            UsageGroup("A", "claude-sonnet-4-5", 20_000, 1, 7, 7, 7, 7, None),
            UsageGroup("A", "claude-sonnet-4-5", 20_000, 3, 300, 30, 0, 0, None),
        ]

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
