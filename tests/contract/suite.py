"""The contract of the :class:`~threadline.recorders.roles.ThreadLog` role, which
every backend has: appends, reads, batches, deletes and leases.

Each role has a suite like this one (``*_suite.py``); a backend's test module
subclasses the suite of every role the backend has, with a ``make_recorder``
that makes the backend (the type checker refuses a backend that lacks the
role). The tests define, with exact outcomes, what every backend must do.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageDelta,
    MetadataDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    fold,
)
from threadline.errors import (
    InvalidDelta,
    StoreClosed,
    ThreadExists,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.model import Message, ThreadHead, ToolCall, ToolResult, Usage
from threadline.recorders.roles import ThreadLog


def msg(n: int, role: str = "user", **extra: object) -> Message:
    return Message.model_validate(
        {
            "id": f"M-{n:06d}",
            "role": role,
            "content": f"message {n}",
            "timestamp": 1000 + n,
            **extra,
        }
    )


def rich_message() -> Message:
    return Message(
        id="M-rich",
        role="assistant",
        content='Ünïcode ✓ — and "quotes"\n\tand a NUL-free tab',
        timestamp=1_700_000_000_123,
        tool_calls=(ToolCall(id="call-1", name="read_file", input={"path": "a.py", "n": [1, 2]}),),
        tool_results=(ToolResult(tool_call_id="call-0", output={"ok": True}, is_error=True),),
        usage=Usage(
            model="claude-sonnet-4-5",
            input_tokens=10,
            output_tokens=20,
            cache_read_tokens=30,
            cache_write_tokens=40,
            cost_usd=0.0123,
        ),
        metadata={"request_id": "req-1"},
    )


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


async def spawn(
    recorder: ThreadLog, parent: str, child: str, *, summary: bool = False
) -> list[ThreadHead]:
    """``child`` under ``parent`` the way the store links them: both ends, one call."""
    head = await recorder.head(parent)
    assert head is not None
    create = (
        ThreadCreate(id=child, origin_thread_id=parent)
        if summary
        else ThreadCreate(id=child, parent_thread_id=parent)
    )
    link: Delta = SummaryLinkDelta(thread_id=child) if summary else ChildLinkDelta(thread_id=child)
    return await recorder.append_many([(child, 0, [create]), (parent, head.v, [link])])


class ThreadLogContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> ThreadLog:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[ThreadLog]:
        recorder = await self.make_recorder(tmp_path)
        yield recorder
        await recorder.close()

    async def create(
        self, recorder: ThreadLog, thread_id: str = "T-1", messages: int = 0
    ) -> list[Delta]:
        log: list[Delta] = [ThreadCreate(id=thread_id, title="first", created=500)]
        log += [MessageDelta.of(msg(i)) for i in range(messages)]
        await recorder.append(thread_id, 0, log)
        return log

    # -- creating ------------------------------------------------------------

    async def test_create_makes_version_one(self, recorder: ThreadLog) -> None:
        head = await recorder.append("T-1", 0, [ThreadCreate(id="T-1", title="t", created=7)])
        assert (head.id, head.v, head.title, head.created, head.message_count) == (
            "T-1",
            1,
            "t",
            7,
            0,
        )
        assert head.last_activity == 7
        assert await recorder.head("T-1") == head

    async def test_create_twice_raises_thread_exists(self, recorder: ThreadLog) -> None:
        await self.create(recorder)
        with pytest.raises(ThreadExists):
            await recorder.append("T-1", 0, [ThreadCreate(id="T-1")])

    async def test_create_must_start_with_its_own_create_delta(self, recorder: ThreadLog) -> None:
        with pytest.raises(InvalidDelta):
            await recorder.append("T-1", 0, [TitleDelta(value="x")])
        with pytest.raises(InvalidDelta):
            await recorder.append("T-1", 0, [ThreadCreate(id="T-2")])
        assert await recorder.head("T-1") is None
        assert await recorder.head("T-2") is None

    async def test_empty_append_is_refused(self, recorder: ThreadLog) -> None:
        await self.create(recorder)
        with pytest.raises(InvalidDelta):
            await recorder.append("T-1", 1, [])

    # -- appending -----------------------------------------------------------

    async def test_append_adds_one_version_per_delta(self, recorder: ThreadLog) -> None:
        await self.create(recorder)
        head = await recorder.append(
            "T-1", 1, [MessageDelta.of(msg(1)), TitleDelta(value="x"), MessageDelta.of(msg(2))]
        )
        assert (head.v, head.title, head.message_count, head.last_activity) == (4, "x", 2, 1002)

    async def test_stale_append_raises_version_conflict_and_writes_nothing(
        self, recorder: ThreadLog
    ) -> None:
        await self.create(recorder, messages=2)
        with pytest.raises(VersionConflict) as raised:
            await recorder.append("T-1", 2, [TitleDelta(value="stale")])
        assert (raised.value.thread_id, raised.value.expected, raised.value.actual) == ("T-1", 2, 3)
        head = await recorder.head("T-1")
        assert head is not None
        assert (head.v, head.title) == (3, "first")
        assert len(await recorder.deltas("T-1")) == 3

    async def test_append_ahead_of_the_head_raises_version_conflict(
        self, recorder: ThreadLog
    ) -> None:
        await self.create(recorder)
        with pytest.raises(VersionConflict):
            await recorder.append("T-1", 5, [TitleDelta(value="gap")])
        assert [r.v for r in await recorder.deltas("T-1")] == [1]

    async def test_append_to_unknown_thread_raises_thread_not_found(
        self, recorder: ThreadLog
    ) -> None:
        with pytest.raises(ThreadNotFound):
            await recorder.append("T-missing", 1, [TitleDelta(value="x")])

    async def test_append_is_all_or_nothing(self, recorder: ThreadLog) -> None:
        await self.create(recorder, messages=1)
        with pytest.raises(InvalidDelta):
            await recorder.append("T-1", 2, [MessageDelta.of(msg(5)), TruncateDelta(from_index=9)])
        thread = await recorder.load("T-1")
        assert thread is not None
        assert (thread.v, len(thread.messages)) == (2, 1)
        assert len(await recorder.deltas("T-1")) == 2

    async def test_concurrent_appends_each_get_their_own_answer(self, recorder: ThreadLog) -> None:
        # Backends may commit concurrent appends together (group commit): each
        # still succeeds or fails alone, and two on one version never both win.
        for i in range(6):
            await self.create(recorder, f"T-{i}")
        results = await asyncio.gather(
            *(recorder.append(f"T-{i}", 1, [MessageDelta.of(msg(i))]) for i in range(6)),
            recorder.append("T-0", 1, [TitleDelta(value="same base as T-0's message")]),
            recorder.append("T-1", 7, [TitleDelta(value="ahead")]),
            recorder.append("T-missing", 1, [TitleDelta(value="x")]),
            recorder.append("T-new", 0, [ThreadCreate(id="T-new")]),
            recorder.append("T-2", 0, [ThreadCreate(id="T-2")]),
            return_exceptions=True,
        )
        assert [getattr(r, "v", None) for r in results[1:6]] == [2, 2, 2, 2, 2]
        on_t0 = [results[0], results[6]]
        assert sorted(type(r).__name__ for r in on_t0) == ["ThreadHead", "VersionConflict"]
        assert isinstance(results[7], VersionConflict)
        assert isinstance(results[8], ThreadNotFound)
        assert getattr(results[9], "v", None) == 1
        assert isinstance(results[10], ThreadExists)
        heads = await recorder.heads_many([f"T-{i}" for i in range(6)] + ["T-new"])
        assert {t: h.v for t, h in heads.items()} == {
            **{f"T-{i}": 2 for i in range(6)},
            "T-new": 1,
        }
        assert len(await recorder.deltas("T-0")) == 2

    # -- reading -------------------------------------------------------------

    async def test_load_is_the_fold_of_the_log(self, recorder: ThreadLog) -> None:
        log = await self.create(recorder, messages=3)
        more: list[Delta] = [
            MessageDelta.of(rich_message()),
            MetadataDelta(patch={"k": {"a": 1}}),
            ChildLinkDelta(thread_id="T-child"),
        ]
        await recorder.append("T-1", 4, more)
        loaded = await recorder.load("T-1")
        assert loaded == fold(log + more)
        assert await recorder.load("T-none") is None

    async def test_rich_messages_round_trip_exactly(self, recorder: ThreadLog) -> None:
        await self.create(recorder)
        await recorder.append("T-1", 1, [MessageDelta.of(rich_message())])
        found = await recorder.page("T-1", limit=10)
        assert found is not None
        assert found[1] == [rich_message()]

    async def test_deltas_between_versions(self, recorder: ThreadLog) -> None:
        log = await self.create(recorder, messages=5)
        records = await recorder.deltas("T-1", after=2, upto=4)
        assert [(r.thread_id, r.v) for r in records] == [("T-1", 3), ("T-1", 4)]
        assert [r.delta for r in records] == log[2:4]
        assert [r.v for r in await recorder.deltas("T-1", after=4)] == [5, 6]
        assert await recorder.deltas("T-none") == []

    async def test_newest_page_is_chronological(self, recorder: ThreadLog) -> None:
        await self.create(recorder, messages=10)
        found = await recorder.page("T-1", limit=3)
        assert found is not None
        head, messages = found
        assert head.message_count == 10
        assert [m.id for m in messages] == ["M-000007", "M-000008", "M-000009"]

    async def test_page_with_offset_and_before(self, recorder: ThreadLog) -> None:
        await self.create(recorder, messages=10)
        by_offset = await recorder.page("T-1", limit=3, offset=3)
        by_before = await recorder.page("T-1", limit=3, before=7)
        assert by_offset is not None
        assert by_before is not None
        assert [m.id for m in by_offset[1]] == ["M-000004", "M-000005", "M-000006"]
        assert by_offset[1] == by_before[1]
        first = await recorder.page("T-1", limit=5, before=2)
        assert first is not None
        assert [m.id for m in first[1]] == ["M-000000", "M-000001"]
        beyond = await recorder.page("T-1", limit=5, offset=20)
        assert beyond is not None
        assert beyond[1] == []
        assert await recorder.page("T-none", limit=5) is None

    async def test_truncate_hides_messages_but_the_log_keeps_them(
        self, recorder: ThreadLog
    ) -> None:
        await self.create(recorder, messages=4)
        await recorder.append(
            "T-1", 5, [TruncateDelta(from_index=2), MessageDelta.of(msg(9, "assistant"))]
        )
        found = await recorder.page("T-1", limit=10)
        assert found is not None
        head, messages = found
        assert [m.id for m in messages] == ["M-000000", "M-000001", "M-000009"]
        assert (head.v, head.message_count) == (7, 3)
        logged = [r.delta for r in await recorder.deltas("T-1")]
        assert sum(isinstance(d, MessageDelta) for d in logged) == 5

    async def test_totals_keep_the_usage_of_truncated_messages(self, recorder: ThreadLog) -> None:
        await self.create(recorder)
        await recorder.append("T-1", 1, [MessageDelta.of(rich_message())])
        head = await recorder.append("T-1", 2, [TruncateDelta(from_index=0)])
        assert head.totals.input_tokens == 10
        assert head.totals.cost_usd == pytest.approx(0.0123)

    async def test_list_heads_newest_activity_first_with_cursor(self, recorder: ThreadLog) -> None:
        for i in range(5):
            await recorder.append(f"T-{i}", 0, [ThreadCreate(id=f"T-{i}", created=100 + i)])
        await recorder.append("T-0", 1, [MessageDelta.of(msg(900))])  # activity 1900
        first = await recorder.list_heads(limit=2)
        assert [h.id for h in first] == ["T-0", "T-4"]
        rest = await recorder.list_heads(limit=10, after=(first[-1].last_activity, first[-1].id))
        assert [h.id for h in rest] == ["T-3", "T-2", "T-1"]

    # -- deleting ------------------------------------------------------------

    async def test_delete_removes_thread_and_log(self, recorder: ThreadLog) -> None:
        await self.create(recorder, messages=2)
        assert await recorder.delete("T-1") is True
        assert await recorder.head("T-1") is None
        assert await recorder.deltas("T-1") == []
        assert await recorder.page("T-1", limit=5) is None
        assert await recorder.delete("T-1") is False
        await self.create(recorder)  # the id can be used again
        assert [r.v for r in await recorder.deltas("T-1")] == [1]

    # -- atomic and independent multi-thread appends ---------------------------------

    async def test_append_many_commits_every_thread_together(self, recorder: ThreadLog) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P")])
        heads = await spawn(recorder, "P", "C")
        assert [(h.id, h.v) for h in heads] == [("C", 1), ("P", 2)]
        parent = await recorder.head("P")
        assert parent is not None
        assert parent.child_thread_ids == ("C",)

    async def test_append_many_applies_in_order_to_the_same_thread(
        self, recorder: ThreadLog
    ) -> None:
        heads = await recorder.append_many(
            [("A", 0, [ThreadCreate(id="A")]), ("A", 1, [TitleDelta(value="x")])]
        )
        assert [h.v for h in heads] == [1, 2]
        assert heads[1].title == "x"

    async def test_append_many_writes_nothing_when_one_append_fails(
        self, recorder: ThreadLog
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
        with pytest.raises(ThreadNotFound):
            await recorder.append_many(
                [("D", 0, [ThreadCreate(id="D")]), ("nope", 1, [ChildLinkDelta(thread_id="D")])]
            )
        assert await recorder.head("D") is None

    async def test_append_many_restores_a_thread_it_had_changed(self, recorder: ThreadLog) -> None:
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

    async def test_append_each_lets_every_append_succeed_or_fail_alone(
        self, recorder: ThreadLog
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

    async def test_delete_many_reports_each_id(self, recorder: ThreadLog) -> None:
        await recorder.append("P", 0, [ThreadCreate(id="P"), MessageDelta.of(spent(1))])
        await spawn(recorder, "P", "C")
        assert await recorder.delete_many(["P", "nope", "C", "P"]) == [True, False, True, False]
        assert await recorder.heads_many(["P", "C"]) == {}
        assert await recorder.deltas("P") == []

    # -- reading many ----------------------------------------------------------------

    async def test_load_many_equals_loading_each(self, recorder: ThreadLog) -> None:
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

    async def test_heads_many_returns_the_existing_heads(self, recorder: ThreadLog) -> None:
        await recorder.append("A", 0, [ThreadCreate(id="A")])
        await recorder.append("B", 0, [ThreadCreate(id="B"), MessageDelta.of(spent(1))])
        heads = await recorder.heads_many(["B", "x", "A"])
        assert heads == {"A": await recorder.head("A"), "B": await recorder.head("B")}

    # -- leases and lifecycle ------------------------------------------------

    async def test_writer_lease_is_exclusive_until_released(self, recorder: ThreadLog) -> None:
        lease = recorder.acquire_lease("T-1")
        with pytest.raises(WriterBusy, match="Thread T-1 is already being modified"):
            recorder.acquire_lease("T-1")
        other = recorder.acquire_lease("T-2")
        lease.release()
        lease.release()
        recorder.acquire_lease("T-1").release()
        other.release()

    async def test_closed_recorder_refuses_work(self, recorder: ThreadLog) -> None:
        await recorder.close()
        with pytest.raises(StoreClosed):
            await recorder.head("T-1")
        await recorder.close()
