"""The contract of the :class:`~threadline.recorders.roles.LinkIndex` role:
sub-agent and summary links, walked down (``subtree``) and up (``ancestry``),
kept in step with every append and delete.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.suite import spawn
from threadline.deltas import ChildLinkDelta, SummaryLinkDelta, ThreadCreate, TitleDelta
from threadline.errors import VersionConflict
from threadline.model import ThreadHead
from threadline.recorders.roles import LinkGraph, LinkIndex, ThreadLink, ThreadLog


async def head_of(recorder: ThreadLog, thread_id: str) -> ThreadHead:
    head = await recorder.head(thread_id)
    assert head is not None
    return head


class LinkIndexContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> LinkIndex:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[LinkIndex]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    # -- trees and ancestry ----------------------------------------------------------

    async def test_subtree_reaches_every_depth_and_reports_deleted_threads(
        self, recorder: LinkIndex
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await spawn(recorder, "R", "C1")
        await spawn(recorder, "R", "C2")
        await spawn(recorder, "C1", "G1")
        await spawn(recorder, "G1", "GG")
        await spawn(recorder, "R", "S", summary=True)
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

    async def test_links_recorded_by_one_end_only_are_followed(self, recorder: LinkIndex) -> None:
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
        self, recorder: LinkIndex
    ) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await spawn(recorder, "R", "P")
        await spawn(recorder, "P", "C")
        await recorder.delete("P")
        up = await recorder.ancestry("C")
        assert set(up.links) == {ThreadLink("P", "C", "child"), ThreadLink("R", "P", "child")}
        assert set(up.heads) == {"C", "R"}
        down = await recorder.subtree("R")  # C still names P: it stays in R's tree
        assert set(down.links) == set(up.links)
        assert set(down.heads) == {"R", "C"}

    async def test_ancestry_walks_up_to_the_root(self, recorder: LinkIndex) -> None:
        await recorder.append("R", 0, [ThreadCreate(id="R")])
        await spawn(recorder, "R", "C")
        await spawn(recorder, "C", "S", summary=True)
        graph = await recorder.ancestry("S")
        assert set(graph.links) == {ThreadLink("R", "C", "child"), ThreadLink("C", "S", "summary")}
        assert set(graph.heads) == {"R", "C", "S"}
        root = await recorder.ancestry("R")
        assert (root.links, set(root.heads)) == ((), {"R"})

    async def test_walks_end_on_cycles(self, recorder: LinkIndex) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A")])
        await spawn(recorder, "A", "B")
        await recorder.append("B", 1, [ChildLinkDelta(thread_id="A")])  # hand-made cycle
        down = await recorder.subtree("A")
        assert set(down.links) == {ThreadLink("A", "B", "child"), ThreadLink("B", "A", "child")}
        assert set(down.heads) == {"A", "B"}
        up = await recorder.ancestry("B")
        assert set(up.links) == set(down.links)

    async def test_a_reused_id_does_not_inherit_old_links(self, recorder: LinkIndex) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await spawn(recorder, "P", "C")
        await recorder.delete("P")
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        assert (await recorder.subtree("P")).links == (ThreadLink("P", "C", "child"),)
        await recorder.delete("C")
        assert (await recorder.subtree("P")).links == ()

    async def test_a_failed_append_many_links_nothing(self, recorder: LinkIndex) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await recorder.append("P", 1, [TitleDelta(value="moved on")])
        with pytest.raises(VersionConflict):
            await recorder.append_many(
                [("C", 0, [ThreadCreate(id="C")]), ("P", 1, [ChildLinkDelta(thread_id="C")])]
            )
        assert await recorder.subtree("P") == LinkGraph((), {"P": await head_of(recorder, "P")})

    async def test_delete_many_drops_the_links_of_both_ends(self, recorder: LinkIndex) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        await spawn(recorder, "P", "C")
        assert await recorder.delete_many(["P", "C"]) == [True, True]
        assert (await recorder.subtree("P")).links == ()
        assert (await recorder.ancestry("C")).links == ()
