"""Group commit (threadline.recorders.commit_groups): who goes out with whom."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from threadline.recorders.commit_groups import CommitGroups


class Runner:
    """Records each group it is given; holds each one until ``release``."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()

    async def run(self, items: list[str]) -> Sequence[str | Exception]:
        self.groups.append(items)
        await self.gate.wait()
        if "boom" in items:
            raise RuntimeError("the database went away")
        return [ValueError(i) if i.startswith("bad") else i.upper() for i in items]


def by_thread(item: str) -> str:
    return item.split("/")[0]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_item_goes_out_at_once_while_a_slot_is_free() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=2)
    runner.gate.set()
    assert await groups.submit("a/1") == "A/1"
    assert runner.groups == [["a/1"]]


async def test_items_that_waited_go_together_once_per_key() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=1)
    calls = [asyncio.create_task(groups.submit(i)) for i in ("a/1", "b/1", "c/1", "b/2", "d/1")]
    await settle()
    runner.gate.set()
    assert await asyncio.gather(*calls) == ["A/1", "B/1", "C/1", "B/2", "D/1"]
    assert runner.groups == [["a/1"], ["b/1", "c/1", "d/1"], ["b/2"]]


async def test_a_key_in_a_running_group_waits_for_it_even_with_a_free_slot() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=2, patience=0)
    first = asyncio.create_task(groups.submit("a/1"))
    await settle()
    second = asyncio.create_task(groups.submit("a/2"))
    await settle()
    assert runner.groups == [["a/1"]]
    runner.gate.set()
    assert list(await asyncio.gather(first, second)) == ["A/1", "A/2"]
    assert runner.groups == [["a/1"], ["a/2"]]


async def test_a_second_group_starts_beside_a_running_one_only_after_patience() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=2, patience=0.05)
    first = asyncio.create_task(groups.submit("a/1"))
    await settle()
    others = [asyncio.create_task(groups.submit(i)) for i in ("b/1", "c/1")]
    await asyncio.sleep(0.01)
    assert runner.groups == [["a/1"]]  # b and c wait: a is not stuck yet
    await asyncio.sleep(0.1)
    assert runner.groups == [["a/1"], ["b/1", "c/1"]]  # a is: they go beside it
    runner.gate.set()
    assert await asyncio.gather(first, *others) == ["A/1", "B/1", "C/1"]


async def test_an_item_error_goes_to_its_caller_only() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=1)
    calls = [asyncio.create_task(groups.submit(i)) for i in ("a/1", "b/1", "bad/1", "c/1")]
    await settle()
    runner.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[:2] == ["A/1", "B/1"]
    assert results[3] == "C/1"
    assert isinstance(results[2], ValueError)
    assert str(results[2]) == "bad/1"


async def test_a_failed_group_fails_each_of_its_callers_and_not_the_next_group() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=1)
    calls = [asyncio.create_task(groups.submit(i)) for i in ("a/1", "boom", "b/1", "b/2")]
    await settle()
    runner.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == "A/1"
    assert results[3] == "B/2"
    assert all(isinstance(r, RuntimeError) for r in results[1:3])
    assert runner.groups == [["a/1"], ["boom", "b/1"], ["b/2"]]


async def test_an_item_whose_caller_gave_up_before_it_went_out_is_not_run() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=1)
    first = asyncio.create_task(groups.submit("a/1"))
    gone = asyncio.create_task(groups.submit("b/1"))
    kept = asyncio.create_task(groups.submit("c/1"))
    await settle()
    gone.cancel()
    runner.gate.set()
    assert await first == "A/1"
    assert await kept == "C/1"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert runner.groups == [["a/1"], ["c/1"]]


async def test_groups_hold_at_most_size_items() -> None:
    runner = Runner()
    groups = CommitGroups(runner.run, by_thread, slots=1, size=2)
    calls = [asyncio.create_task(groups.submit(f"{k}/1")) for k in "abcde"]
    await settle()
    runner.gate.set()
    await asyncio.gather(*calls)
    assert runner.groups == [["a/1"], ["b/1", "c/1"], ["d/1", "e/1"]]
