"""The append planner (threadline.planner): its preconditions, its rows, and the
proof that every backend executes its plans into the same derived rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pg import new_workspace
from tests.strategies import json_objects, logs, messages, text, usages
from threadline import planner
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    EnvDelta,
    MessageAmendDelta,
    MessageDelta,
    MetadataDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    fold,
    fold_head,
)
from threadline.errors import (
    InvalidDelta,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
)
from threadline.model import Message, ThreadHead, Usage
from threadline.planner import DerivedRows, LinkRow
from threadline.recorders.memory import MemoryRecorder
from threadline.recorders.postgres import PostgresRecorder
from threadline.recorders.sqlite import SqliteRecorder

# -- the planner on its own ---------------------------------------------------------


def _created(thread_id: str = "t", **fields: Any) -> tuple[ThreadCreate, ThreadHead]:
    create = ThreadCreate(id=thread_id, created=1000, **fields)
    return create, planner.plan(thread_id, None, 0, [create], at=5).head


def _message(content: str = "hello world", **fields: Any) -> MessageDelta:
    return MessageDelta.of(Message(role="user", content=content, timestamp=2000, **fields))


def test_empty_append_is_invalid() -> None:
    _, head = _created()
    with pytest.raises(InvalidDelta, match="Nothing to append"):
        planner.plan("t", head, 1, [], at=5)


def test_stale_version_conflicts() -> None:
    _, head = _created()
    with pytest.raises(VersionConflict) as caught:
        planner.plan("t", head, 2, [_message()], at=5)
    assert (caught.value.expected, caught.value.actual) == (2, 1)


def test_create_of_existing_or_archived_thread() -> None:
    create, head = _created()
    with pytest.raises(ThreadExists):
        planner.plan("t", head, 0, [create], at=5)
    with pytest.raises(ThreadExists):
        planner.plan("t", None, 0, [create], at=5, archived=True)


def test_append_to_missing_thread() -> None:
    with pytest.raises(ThreadNotFound):
        planner.plan("t", None, 3, [_message()], at=5)


def test_first_delta_must_be_the_threads_own_create() -> None:
    with pytest.raises(InvalidDelta, match="must start with its thread:create"):
        planner.plan("t", None, 0, [_message()], at=5)
    with pytest.raises(InvalidDelta, match="must start with its thread:create"):
        planner.plan("t", None, 0, [ThreadCreate(id="other")], at=5)


def test_second_create_is_invalid() -> None:
    create, head = _created()
    with pytest.raises(InvalidDelta, match="already exists"):
        planner.plan("t", head, 1, [create], at=5)


def test_truncate_out_of_bounds() -> None:
    _, head = _created()
    with pytest.raises(InvalidDelta, match="cannot truncate from index 2"):
        planner.plan("t", head, 1, [_message(), TruncateDelta(from_index=2)], at=5)


def test_duplicate_links_are_invalid() -> None:
    _, head = _created()
    link = ChildLinkDelta(thread_id="c")
    with pytest.raises(InvalidDelta, match="already links child c"):
        planner.plan("t", head, 1, [link, link], at=5)
    linked = planner.plan("t", head, 1, [SummaryLinkDelta(thread_id="s")], at=5).head
    with pytest.raises(InvalidDelta, match="already links summary s"):
        planner.plan("t", linked, 2, [SummaryLinkDelta(thread_id="s")], at=5)


def test_bodies_given_must_match_the_deltas() -> None:
    _, head = _created()
    with pytest.raises(ValueError, match="one body per delta"):
        planner.plan("t", head, 1, [_message()], at=5, bodies=[])


def test_rows_of_one_append() -> None:
    _, head = _created(parent_thread_id="p")
    usage = Usage(model="m", input_tokens=3, output_tokens=4, cost_usd=0.5)
    deltas: list[Delta] = [
        _message("first one", usage=usage),
        _message("dropped"),
        TruncateDelta(from_index=1),
        _message("Third Élan"),
        TitleDelta(value="A title"),
        ChildLinkDelta(thread_id="c"),
    ]
    plan = planner.plan("t", head, 1, deltas, at=77)
    assert plan.head == fold_head(deltas, head)
    assert (plan.head.v, plan.head.message_count, plan.head.title) == (7, 2, "A title")
    assert plan.versions == range(2, 8)
    assert plan.bodies == tuple(d.model_dump_json().encode() for d in deltas)
    assert plan.cut == 1
    assert [(m.pos, m.v) for m in plan.messages] == [(0, 2), (1, 5)]
    assert [m.tokens() for m in plan.messages] == ["first one", "third elan"]
    first = deltas[0]
    assert isinstance(first, MessageDelta)
    assert plan.usage == (
        planner.UsageRow(2, 0, "m", 3, 4, 0, 0, 0.5, first.message.id, 0, "reported", None),
    )
    assert plan.links == (planner.LinkRow("t", "c", "child"),)
    assert plan.retitled
    assert plan.title_tokens() == "a title"
    assert plan.feed == planner.FeedEntry("t", 7, False, 77)


def test_a_create_records_its_parent_and_origin() -> None:
    create = ThreadCreate(id="t", parent_thread_id="p", origin_thread_id="o")
    plan = planner.replay("t", [create])
    assert plan.links == (
        planner.LinkRow("p", "t", "child"),
        planner.LinkRow("o", "t", "summary"),
    )
    assert (plan.created, plan.cut, plan.retitled) == (True, None, True)


@given(logs())
def test_replay_folds_like_the_log(log: list[Delta]) -> None:
    plan = planner.replay(log[0].id, log)  # type: ignore[union-attr]
    assert plan.head == fold_head(log)
    assert tuple(m.message for m in plan.messages) == fold(log).messages
    assert [m.pos for m in plan.messages] == list(range(len(plan.messages)))


@given(logs(), st.data())
def test_split_appends_plan_the_whole_log(log: list[Delta], data: st.DataObject) -> None:
    """Appending a log in pieces gives the head and rows of appending it whole."""
    thread_id = log[0].id  # type: ignore[union-attr]
    whole = planner.replay(thread_id, log)
    split = data.draw(st.integers(1, len(log)))
    first = planner.plan(thread_id, None, 0, log[:split], at=1)
    if split == len(log):
        assert first.head == whole.head
        return
    second = planner.plan(thread_id, first.head, first.head.v, log[split:], at=2)
    assert second.head == whole.head
    # Usage is keyed by message id: the second plan's rows replace the first's.
    usage = {u.message_id: u for u in first.usage}
    usage.update({u.message_id: u for u in second.usage})
    assert sorted(usage.values(), key=lambda u: u.v) == list(whole.usage)
    assert first.links + second.links == whole.links
    positions = {m.pos: m.v for m in first.messages if second.cut is None or m.pos < second.cut}
    positions.update({m.pos: m.v for m in second.messages})
    positions.update({m.pos: m.v for m in second.amended})
    assert sorted(positions.items()) == [(m.pos, m.v) for m in whole.messages]


# -- every backend executes the same plans into the same rows --------------------------

_IDS = ["a", "b", "c"]


@st.composite
def _step_deltas(draw: st.DrawFn) -> list[Delta]:
    kinds = st.sampled_from(
        [
            "message",
            "message",
            "message",
            "amend",
            "title",
            "truncate",
            "meta",
            "env",
            "child",
            "summary",
        ]
    )
    found: list[Delta] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(kinds)
        if kind == "message":
            found.append(MessageDelta.of(draw(messages)))
        elif kind == "amend":
            # Any message and previous usage: every backend takes the planner's word.
            amended = MessageAmendDelta(
                index=draw(st.integers(0, 4)),
                message=draw(messages),
                previous_usage=draw(st.none() | usages),
            )
            found.append(amended)
        elif kind == "title":
            found.append(TitleDelta(value=draw(st.none() | text)))
        elif kind == "truncate":
            found.append(TruncateDelta(from_index=draw(st.integers(0, 4))))
        elif kind == "meta":
            found.append(MetadataDelta(patch=draw(json_objects), replace=draw(st.booleans())))
        elif kind == "env":
            found.append(EnvDelta(value=draw(json_objects)))
        elif kind == "child":
            found.append(ChildLinkDelta(thread_id=draw(st.sampled_from(_IDS))))
        else:
            found.append(SummaryLinkDelta(thread_id=draw(st.sampled_from(_IDS))))
    return found


_creates = st.builds(
    lambda thread_id, parent, origin, title, created: (
        "create",
        thread_id,
        ThreadCreate(
            id=thread_id,
            parent_thread_id=parent,
            origin_thread_id=origin,
            title=title,
            created=created,
        ),
    ),
    st.sampled_from(_IDS),
    st.none() | st.sampled_from(_IDS),
    st.none() | st.sampled_from(_IDS),
    st.none() | text,
    st.integers(0, 2**40),
)
_steps = st.one_of(
    _creates,
    st.tuples(st.just("append"), st.sampled_from(_IDS), _step_deltas(), st.booleans()),
    st.tuples(st.just("append_many"), st.lists(st.sampled_from(_IDS), max_size=2), _step_deltas()),
    st.tuples(st.just("delete"), st.sampled_from(_IDS)),
    st.tuples(st.just("rebuild"), st.sampled_from(_IDS)),
)
_scripts = st.lists(st.one_of(_creates, _steps, _steps), min_size=1, max_size=14)

Recorder = MemoryRecorder | SqliteRecorder | PostgresRecorder


async def _run(recorder: Recorder, script: list[tuple[Any, ...]]) -> list[object]:
    """Run ``script``; each step's outcome (a head, or the type of its error)."""
    outcomes: list[object] = []
    for step in script:
        try:
            outcomes.append(await _step(recorder, step))
        except ThreadlineError as exc:
            outcomes.append(type(exc))
    return outcomes


async def _step(recorder: Recorder, step: tuple[Any, ...]) -> object:
    kind, *args = step
    if kind == "create":
        thread_id, create = args
        return await recorder.append(thread_id, 0, [create])
    if kind == "append":
        thread_id, deltas, stale = args
        head = await recorder.head(thread_id)
        expected = 0 if head is None else head.v - int(stale)
        return await recorder.append(thread_id, expected, deltas)
    if kind == "append_many":
        thread_ids, deltas = args
        appends = []
        for thread_id in thread_ids:
            head = await recorder.head(thread_id)
            appends.append((thread_id, 0 if head is None else head.v, deltas))
        return await recorder.append_many(appends)
    if kind == "delete":
        return await recorder.delete(args[0])
    return await recorder.rebuild_snapshot(args[0])


def _same_rows(dsn: str, script: list[tuple[Any, ...]]) -> DerivedRows:
    """The derived rows every backend ends with; asserts they are all the same."""

    async def run() -> DerivedRows:
        memory = MemoryRecorder()
        sqlite = SqliteRecorder(":memory:")
        postgres = await PostgresRecorder.connect(dsn, workspace=new_workspace(), max_size=2)
        try:
            expected = await _run(memory, script)
            assert await _run(sqlite, script) == expected
            assert await _run(postgres, script) == expected
            rows = await memory.derived_rows()
            assert await sqlite.derived_rows() == rows
            assert await postgres.derived_rows() == rows
            return rows
        finally:
            await sqlite.close()
            await postgres.close()

    return asyncio.run(run())


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(script=_scripts)
def test_backends_store_identical_derived_rows(
    postgres_dsn: str, script: list[tuple[Any, ...]]
) -> None:
    """Memory, SQLite and PostgreSQL give each step the same outcome and end with
    the same heads, positions, usage rows, links, search documents and feed."""
    _same_rows(postgres_dsn, script)


def test_backends_agree_on_a_busy_thread(postgres_dsn: str) -> None:
    """A fixed script that touches every derived table (the property test's
    examples are random; this one always does)."""
    usage = Usage(model="m", input_tokens=1, output_tokens=2, cost_usd=0.25)
    script: list[tuple[Any, ...]] = [
        ("create", "a", ThreadCreate(id="a", title="Alpha")),
        ("create", "b", ThreadCreate(id="b", parent_thread_id="a", origin_thread_id="c")),
        ("append", "a", [_message("one", usage=usage), _message("two"), _message("three")], False),
        ("append", "a", [TruncateDelta(from_index=1), _message("four", usage=usage)], False),
        ("append", "a", [ChildLinkDelta(thread_id="b"), TitleDelta(value="Beta")], False),
        ("append", "a", [TruncateDelta(from_index=9)], False),
        ("append", "a", [_message("stale")], True),
        ("append_many", ["a", "b"], [_message("both"), MetadataDelta(patch={"k": 1})]),
        ("rebuild", "a"),
        ("delete", "b"),
    ]
    rows = _same_rows(postgres_dsn, script)
    assert set(rows.threads) == {"a"}
    a = rows.threads["a"]
    assert (a.head.v, a.head.title, a.head.message_count) == (10, "Beta", 3)
    assert a.head.totals.cost_usd == 0.5
    assert a.positions == ((0, 2), (1, 6), (2, 9))
    assert [row.v for row in a.usage] == [2, 6]
    assert a.links == frozenset({LinkRow("a", "b", "child")})
    assert a.documents == ((2, "one"), (6, "four"), (9, "both"))
    assert a.title_tokens == "beta"
    assert rows.feed == (("a", 10, False), ("b", 3, True))


def test_backends_agree_on_amended_messages(postgres_dsn: str) -> None:
    """An amendment replaces a message's position row, search document and
    usage row (on every backend), across appends and within one."""
    early = Usage(model="m", input_tokens=10, output_tokens=1)
    final = Usage(model="m", input_tokens=10, output_tokens=50)
    first = Message(id="r1", role="assistant", content="partial", usage=early, timestamp=5)
    whole = first.model_copy(update={"content": "partial answer complete", "usage": final})
    script: list[tuple[Any, ...]] = [
        ("create", "a", ThreadCreate(id="a", created=1)),
        ("append", "a", [MessageDelta.of(first), _message("next")], False),
        ("append", "a", [MessageAmendDelta(index=0, message=whole, previous_usage=early)], False),
        ("append", "a", [_message("late", id="x", usage=early)], False),
        (
            "append",
            "a",
            [
                MessageAmendDelta(
                    index=2, message=whole.model_copy(update={"id": "x"}), previous_usage=early
                ),
                MessageAmendDelta(
                    index=2,
                    message=whole.model_copy(update={"id": "x", "content": "again"}),
                    previous_usage=final,
                ),
            ],
            False,
        ),
    ]
    rows = _same_rows(postgres_dsn, script)
    a = rows.threads["a"]
    assert a.positions == ((0, 4), (1, 3), (2, 7))
    assert [(row.v, row.output_tokens) for row in a.usage] == [(4, 50), (7, 50)]
    assert a.documents == ((3, "next"), (4, "partial answer complete"), (7, "again"))
    assert a.head.totals.output_tokens == 100
    assert a.head.message_count == 3
