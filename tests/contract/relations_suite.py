"""The recorder contract for relationships, batches and usage roll-ups.

Every backend subclasses :class:`RelationsContract` next to its
:class:`~tests.contract.suite.RecorderContract` subclass.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
)
from threadline.errors import InvalidDelta, ThreadExists, ThreadNotFound, VersionConflict
from threadline.model import Message, ThreadHead, Usage
from threadline.recorders.base import ThreadLink, ThreadRecorder, UsageGroup

DAY = 86_400_000


def spent(
    n: int,
    *,
    model: str | None = "claude-sonnet-4-5",
    day: int = 20_000,
    tokens: tuple[int, int, int, int] = (100, 10, 0, 0),
    cost: float | None = 0.5,
) -> Message:
    """An assistant message with usage, timestamped ``n`` ms into UTC day ``day``."""
    return Message(
        id=f"M-{n}",
        role="assistant",
        content=f"answer {n}",
        timestamp=day * DAY + n,
        usage=Usage(
            model=model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_read_tokens=tokens[2],
            cache_write_tokens=tokens[3],
            cost_usd=cost,
        ),
    )


def key(group: UsageGroup) -> tuple[str, str | None, int, float | None]:
    return (group.thread_id, group.model, group.day, group.cost_usd)


class RelationsContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> ThreadRecorder:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[ThreadRecorder]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    async def spawn(
        self, recorder: ThreadRecorder, parent: str, child: str, *, summary: bool = False
    ) -> list[ThreadHead]:
        """``child`` under ``parent`` the way the store links them: both ends, one call."""
        head = await recorder.head(parent)
        assert head is not None
        create = (
            ThreadCreate(id=child, origin_thread_id=parent)
            if summary
            else ThreadCreate(id=child, parent_thread_id=parent)
        )
        link: Delta = (
            SummaryLinkDelta(thread_id=child) if summary else ChildLinkDelta(thread_id=child)
        )
        return await recorder.append_many([(child, 0, [create]), (parent, head.v, [link])])

    # -- atomic and independent multi-thread appends ---------------------------------

    async def test_append_many_commits_every_thread_together(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        heads = await self.spawn(recorder, "P", "C")
        assert [(h.id, h.v) for h in heads] == [("C", 1), ("P", 2)]
        parent = await recorder.head("P")
        assert parent is not None
        assert parent.child_thread_ids == ("C",)

    async def test_append_many_applies_in_order_to_the_same_thread(
        self, recorder: ThreadRecorder
    ) -> None:
        heads = await recorder.append_many(
            [("A", 0, [ThreadCreate(id="A")]), ("A", 1, [TitleDelta(value="x")])]
        )
        assert [h.v for h in heads] == [1, 2]
        assert heads[1].title == "x"

    async def test_append_many_writes_nothing_when_one_append_fails(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await recorder.append("P", 1, [TitleDelta(value="moved on")])
        with pytest.raises(VersionConflict) as raised:
            await recorder.append_many(
                [("C", 0, [ThreadCreate(id="C")]), ("P", 1, [ChildLinkDelta(thread_id="C")])]
            )
        assert (raised.value.thread_id, raised.value.expected, raised.value.actual) == ("P", 1, 2)
        assert await recorder.head("C") is None
        assert await recorder.deltas("C") == []
        parent = await recorder.head("P")
        assert parent is not None
        assert (parent.v, parent.child_thread_ids) == (2, ())
        assert (await recorder.subtree("P")).links == ()
        with pytest.raises(ThreadNotFound):
            await recorder.append_many(
                [("D", 0, [ThreadCreate(id="D")]), ("nope", 1, [ChildLinkDelta(thread_id="D")])]
            )
        assert await recorder.head("D") is None

    async def test_append_many_restores_a_thread_it_had_changed(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A"), MessageDelta.of(spent(1))])
        with pytest.raises(InvalidDelta):
            await recorder.append_many(
                [
                    ("A", 2, [MessageDelta.of(spent(2)), TruncateDelta(from_index=0)]),
                    ("A", 4, [TruncateDelta(from_index=5)]),
                ]
            )
        thread = await recorder.load("A")
        assert thread is not None
        assert (thread.v, [m.id for m in thread.messages]) == (2, ["M-1"])
        assert [r.v for r in await recorder.deltas("A")] == [1, 2]
        assert [g.messages for g in await recorder.usage_rollup(["A"])] == [1]

    async def test_append_each_lets_every_append_succeed_or_fail_alone(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A")])
        results = await recorder.append_each(
            [
                ("B", 0, [ThreadCreate(id="B")]),
                ("A", 0, [ThreadCreate(id="A")]),
                ("A", 7, [TitleDelta(value="stale")]),
                ("A", 1, []),
                ("A", 1, [TitleDelta(value="fresh")]),
                ("C", 0, [ThreadCreate(id="C"), TruncateDelta(from_index=3)]),
            ]
        )
        assert [type(r).__name__ for r in results] == [
            "ThreadHead",
            "ThreadExists",
            "VersionConflict",
            "InvalidDelta",
            "ThreadHead",
            "InvalidDelta",
        ]
        assert isinstance(results[1], ThreadExists)
        fresh = results[4]
        assert isinstance(fresh, ThreadHead)
        assert (fresh.id, fresh.v, fresh.title) == ("A", 2, "fresh")
        assert await recorder.head("B") is not None
        assert await recorder.head("C") is None

    async def test_delete_many_reports_each_id(self, recorder: ThreadRecorder) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P"), MessageDelta.of(spent(1))])
        await self.spawn(recorder, "P", "C")
        assert await recorder.delete_many(["P", "nope", "C", "P"]) == [True, False, True, False]
        assert await recorder.heads_many(["P", "C"]) == {}
        assert await recorder.usage_rollup() == []
        assert (await recorder.subtree("P")).links == ()

    # -- reading many ----------------------------------------------------------------

    async def test_load_many_equals_loading_each(self, recorder: ThreadRecorder) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A", title="a")])
        await recorder.append(
            "B", 0, [ThreadCreate(id="B")] + [MessageDelta.of(spent(i)) for i in range(4)]
        )
        await recorder.append("B", 5, [TruncateDelta(from_index=1), MessageDelta.of(spent(9))])
        found = await recorder.load_many(["B", "missing", "A", "B"])
        assert list(found) == ["B", "A"]
        assert found["A"] == await recorder.load("A")
        assert found["B"] == await recorder.load("B")
        assert [m.id for m in found["B"].messages] == ["M-0", "M-9"]
        assert await recorder.load_many([]) == {}

    async def test_heads_many_returns_the_existing_heads(self, recorder: ThreadRecorder) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A")])
        await recorder.append("B", 0, [ThreadCreate(id="B"), MessageDelta.of(spent(1))])
        heads = await recorder.heads_many(["B", "x", "A"])
        assert heads == {"A": await recorder.head("A"), "B": await recorder.head("B")}

    # -- trees and ancestry ----------------------------------------------------------

    async def test_subtree_reaches_every_depth_and_reports_deleted_threads(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await self.spawn(recorder, "R", "C1")
        await self.spawn(recorder, "R", "C2")
        await self.spawn(recorder, "C1", "G1")
        await self.spawn(recorder, "G1", "GG")
        await self.spawn(recorder, "R", "S", summary=True)
        await recorder.append("X", 0, [ThreadCreate(id="X")])  # unrelated
        await recorder.delete("C2")
        graph = await recorder.subtree("R")
        assert set(graph.links) == {
            ThreadLink("R", "C1", "child"),
            ThreadLink("R", "C2", "child"),
            ThreadLink("C1", "G1", "child"),
            ThreadLink("G1", "GG", "child"),
            ThreadLink("R", "S", "summary"),
        }
        assert len(graph.links) == 5
        assert set(graph.heads) == {"R", "C1", "G1", "GG", "S"}
        assert graph.heads["GG"] == await recorder.head("GG")
        below = await recorder.subtree("C1")
        assert set(below.heads) == {"C1", "G1", "GG"}
        assert await recorder.subtree("nope") == type(graph)((), {})

    async def test_links_recorded_by_one_end_only_are_followed(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await recorder.append("C", 0, [ThreadCreate(id="C", parent_thread_id="P")])
        await recorder.append("P", 1, [SummaryLinkDelta(thread_id="S-gone")])
        graph = await recorder.subtree("P")
        assert set(graph.links) == {
            ThreadLink("P", "C", "child"),
            ThreadLink("P", "S-gone", "summary"),
        }
        assert set(graph.heads) == {"P", "C"}

    async def test_a_deleted_parent_takes_its_links_but_not_its_childrens(
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await self.spawn(recorder, "R", "P")
        await self.spawn(recorder, "P", "C")
        await recorder.delete("P")
        up = await recorder.ancestry("C")
        assert set(up.links) == {ThreadLink("P", "C", "child"), ThreadLink("R", "P", "child")}
        assert set(up.heads) == {"C", "R"}
        down = await recorder.subtree("R")  # C still names P: it stays in R's tree
        assert set(down.links) == set(up.links)
        assert set(down.heads) == {"R", "C"}

    async def test_ancestry_walks_up_to_the_root(self, recorder: ThreadRecorder) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await self.spawn(recorder, "R", "C")
        await self.spawn(recorder, "C", "S", summary=True)
        graph = await recorder.ancestry("S")
        assert set(graph.links) == {ThreadLink("R", "C", "child"), ThreadLink("C", "S", "summary")}
        assert set(graph.heads) == {"R", "C", "S"}
        root = await recorder.ancestry("R")
        assert (root.links, set(root.heads)) == ((), {"R"})

    async def test_walks_end_on_cycles(self, recorder: ThreadRecorder) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A")])
        await self.spawn(recorder, "A", "B")
        await recorder.append("B", 1, [ChildLinkDelta(thread_id="A")])  # hand-made cycle
        down = await recorder.subtree("A")
        assert set(down.links) == {ThreadLink("A", "B", "child"), ThreadLink("B", "A", "child")}
        assert set(down.heads) == {"A", "B"}
        up = await recorder.ancestry("B")
        assert set(up.links) == set(down.links)

    async def test_a_reused_id_does_not_inherit_old_links(self, recorder: ThreadRecorder) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await self.spawn(recorder, "P", "C")
        await recorder.delete("P")
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        assert (await recorder.subtree("P")).links == (ThreadLink("P", "C", "child"),)
        await recorder.delete("C")
        assert (await recorder.subtree("P")).links == ()

    # -- usage roll-ups ----------------------------------------------------------------

    async def test_usage_rollup_groups_by_thread_model_and_day(
        self, recorder: ThreadRecorder
    ) -> None:
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
        self, recorder: ThreadRecorder
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
        self, recorder: ThreadRecorder
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
        self, recorder: ThreadRecorder
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R"), MessageDelta.of(spent(1))])
        await self.spawn(recorder, "R", "C")
        await self.spawn(recorder, "C", "G")
        await self.spawn(recorder, "R", "S", summary=True)
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
