"""The contract of the :class:`~threadline.recorders.roles.ChangeFeed` role
(``changes_since``), which the sync server's ``/v1/changes`` serves."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.suite import msg
from threadline.deltas import MessageDelta, ThreadCreate, TitleDelta
from threadline.errors import VersionConflict
from threadline.recorders.roles import Change, ChangeFeed


def seen(changes: list[Change]) -> list[tuple[str, int, bool]]:
    return [(c.thread_id, c.v, c.deleted) for c in changes]


class ChangeFeedContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> ChangeFeed:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[ChangeFeed]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    async def create(self, recorder: ChangeFeed, thread_id: str) -> None:
        await recorder.append(thread_id, 0, [ThreadCreate(id=thread_id, created=1)])

    async def test_an_empty_store_has_no_changes(self, recorder: ChangeFeed) -> None:
        assert await recorder.changes_since(0, limit=10) == []

    async def test_each_thread_appears_once_at_its_newest_change(
        self, recorder: ChangeFeed
    ) -> None:
        await self.create(recorder, "T-1")
        await self.create(recorder, "T-2")
        await recorder.append("T-1", 1, [MessageDelta.of(msg(1)), TitleDelta(value="x")])
        changes = await recorder.changes_since(0, limit=10)
        assert seen(changes) == [("T-2", 1, False), ("T-1", 3, False)]
        assert changes[0].cursor < changes[1].cursor
        assert all(c.at > 0 for c in changes)

    async def test_reading_after_a_cursor_and_by_pages(self, recorder: ChangeFeed) -> None:
        for i in range(5):
            await self.create(recorder, f"T-{i}")
        first = await recorder.changes_since(0, limit=2)
        assert [c.thread_id for c in first] == ["T-0", "T-1"]
        rest = await recorder.changes_since(first[-1].cursor, limit=10)
        assert [c.thread_id for c in rest] == ["T-2", "T-3", "T-4"]
        assert await recorder.changes_since(rest[-1].cursor, limit=10) == []

    async def test_a_change_after_a_reader_passed_lands_above_its_cursor(
        self, recorder: ChangeFeed
    ) -> None:
        await self.create(recorder, "T-1")
        await self.create(recorder, "T-2")
        cursor = (await recorder.changes_since(0, limit=10))[-1].cursor
        await recorder.append("T-1", 1, [TitleDelta(value="again")])
        later = await recorder.changes_since(cursor, limit=10)
        assert seen(later) == [("T-1", 2, False)]
        assert later[0].cursor > cursor

    async def test_delete_leaves_a_tombstone(self, recorder: ChangeFeed) -> None:
        await self.create(recorder, "T-1")
        await recorder.append("T-1", 1, [MessageDelta.of(msg(1))])
        await self.create(recorder, "T-2")
        assert await recorder.delete("T-1") is True
        assert await recorder.delete_many(["T-2", "T-none"]) == [True, False]
        assert seen(await recorder.changes_since(0, limit=10)) == [
            ("T-1", 2, True),
            ("T-2", 1, True),
        ]
        await self.create(recorder, "T-1")  # a new thread of the same id
        assert seen(await recorder.changes_since(0, limit=10))[-1] == ("T-1", 1, False)

    async def test_refused_appends_are_not_changes(self, recorder: ChangeFeed) -> None:
        await self.create(recorder, "T-1")
        before = await recorder.changes_since(0, limit=10)
        with pytest.raises(VersionConflict):
            await recorder.append("T-1", 5, [TitleDelta(value="stale")])
        with pytest.raises(VersionConflict):
            await recorder.append_many(
                [("T-2", 0, [ThreadCreate(id="T-2")]), ("T-1", 7, [TitleDelta(value="x")])]
            )
        assert await recorder.changes_since(0, limit=10) == before

    async def test_batched_appends_are_changes_of_each_thread(self, recorder: ChangeFeed) -> None:
        await self.create(recorder, "T-1")
        results = await recorder.append_each(
            [
                ("T-2", 0, [ThreadCreate(id="T-2")]),
                ("T-1", 9, [TitleDelta(value="stale")]),
                ("T-1", 1, [TitleDelta(value="ok")]),
            ]
        )
        assert isinstance(results[1], VersionConflict)
        assert seen(await recorder.changes_since(0, limit=10)) == [
            ("T-2", 1, False),
            ("T-1", 2, False),
        ]

    async def test_cursors_only_grow(self, recorder: ChangeFeed) -> None:
        cursors: list[int] = []
        cursor = 0
        for i in range(6):
            await self.create(recorder, f"T-{i}")
            await recorder.append(f"T-{i}", 1, [TitleDelta(value="t")])
            if i % 2:
                await recorder.delete(f"T-{i - 1}")
            found = await recorder.changes_since(cursor, limit=100)
            cursors += [c.cursor for c in found]
            cursor = found[-1].cursor
        assert cursors == sorted(set(cursors))
