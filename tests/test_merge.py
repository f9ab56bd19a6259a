"""Properties of the three-way merge (threadline.merge) and delta compression."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import json_objects
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MergeDelta,
    MessageDelta,
    MetadataDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    fold,
)
from threadline.merge import compress, decompress, merge_deltas, merge_threads
from threadline.model import Message, Thread

# One side's operations: ("append", timestamp) | ("truncate", fraction) |
# ("title", text) | ("meta", patch) | ("link", child).
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 50)),
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("title"), st.text(max_size=5)),
        st.tuples(st.just("meta"), json_objects),
        st.tuples(st.just("link"), st.sampled_from(["C-1", "C-2", "C-3"])),
    ),
    max_size=12,
)


@dataclass
class Side:
    """A replica's changes from the base, and what its truncates saw."""

    thread: Thread
    appended: list[str] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)


def play(base: Thread, name: str, ops: list[tuple[str, object]]) -> Side:
    side = Side(base)
    for number, (op, arg) in enumerate(ops):
        thread = side.thread
        delta: Delta
        if op == "append":
            assert isinstance(arg, int)
            message = Message(id=f"{name}-{number}", role="user", content=name, timestamp=arg)
            side.appended.append(message.id)
            delta = MessageDelta.of(message)
        elif op == "truncate":
            assert isinstance(arg, float)
            index = int(arg * len(thread.messages))
            side.removed |= {m.id for m in thread.messages[index:]}
            delta = TruncateDelta(from_index=index)
        elif op == "title":
            assert isinstance(arg, str)
            delta = TitleDelta(value=arg)
        elif op == "meta":
            assert isinstance(arg, dict)
            delta = MetadataDelta(patch=arg)
        else:
            assert isinstance(arg, str)
            if arg in thread.child_thread_ids:
                continue
            delta = ChildLinkDelta(thread_id=arg)
        side.thread = fold([delta], thread)
    return side


def base_thread(count: int) -> Thread:
    log: list[Delta] = [ThreadCreate(id="T", created=0, title="base", metadata={"k": 1})]
    log += [
        MessageDelta.of(Message(id=f"B-{i}", role="assistant", timestamp=i)) for i in range(count)
    ]
    return fold(log)


def content(thread: Thread) -> Thread:
    return thread.model_copy(update={"v": 0})


@given(st.integers(0, 6), operations)
def test_merging_with_an_unchanged_remote_takes_the_local_thread(
    count: int, ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    local = play(base, "L", ops).thread
    assert content(merge_threads(base, local, base)) == content(local)


@given(st.integers(0, 6), operations)
def test_merging_with_an_unchanged_local_takes_the_remote_thread(
    count: int, ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    remote = play(base, "R", ops).thread
    assert content(merge_threads(base, base, remote)) == content(remote)


@given(st.integers(0, 6), operations, operations)
def test_every_acknowledged_message_survives_once_unless_a_truncate_saw_it(
    count: int, local_ops: list[tuple[str, object]], remote_ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    local = play(base, "L", local_ops)
    remote = play(base, "R", remote_ops)
    merged = merge_threads(base, local.thread, remote.thread)
    acknowledged = [m.id for m in base.messages] + local.appended + remote.appended
    expected = set(acknowledged) - local.removed - remote.removed
    ids = [m.id for m in merged.messages]
    assert sorted(ids) == sorted(expected)  # each exactly once


@given(st.integers(0, 6), operations, operations)
def test_merge_is_deterministic_and_its_deltas_fold_to_it_past_both_versions(
    count: int, local_ops: list[tuple[str, object]], remote_ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    local = play(base, "L", local_ops).thread
    remote = play(base, "R", remote_ops).thread
    merged = merge_threads(base, local, remote)
    assert merge_threads(base, local, remote) == merged
    assert merged.v == max(local.v, remote.v) + 1
    deltas = merge_deltas(base, local, remote)
    assert merge_deltas(base, local, remote) == deltas
    result = fold(deltas, remote)
    assert content(result) == content(merged)
    assert result.v > local.v
    assert result.v > remote.v
    record = deltas[0]
    assert isinstance(record, MergeDelta)
    assert (record.base, record.local, record.remote) == (base.v, local.v, remote.v)
    assert all(d == record for d in deltas[1:] if isinstance(d, MergeDelta))


@given(st.integers(0, 6), operations, operations)
def test_the_local_title_wins_if_it_changed(
    count: int, local_ops: list[tuple[str, object]], remote_ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    local = play(base, "L", local_ops).thread
    remote = play(base, "R", remote_ops).thread
    merged = merge_threads(base, local, remote)
    assert merged.title == (local.title if local.title != base.title else remote.title)
    for child in (*local.child_thread_ids, *remote.child_thread_ids):
        assert merged.child_thread_ids.count(child) == 1


def test_new_messages_of_both_sides_are_ordered_by_timestamp_then_id() -> None:
    base = base_thread(2)
    local = play(base, "L", [("append", 30), ("append", 10)]).thread
    remote = play(base, "R", [("append", 20), ("append", 10), ("truncate", 0.0)]).thread
    merged = merge_threads(base, local, remote)
    # The remote truncate saw B-0, B-1 and its own messages; the local ones survive it.
    assert [m.id for m in merged.messages] == ["L-1", "L-0"]
    remote = play(base, "R", [("append", 20), ("append", 10)]).thread
    merged = merge_threads(base, local, remote)
    assert [m.id for m in merged.messages] == ["B-0", "B-1", "L-1", "R-1", "R-0", "L-0"]


def test_metadata_takes_the_remote_with_the_local_changes_on_top() -> None:
    base = fold([ThreadCreate(id="T", created=0, metadata={"a": 1, "b": {"x": 1, "y": 1}})])
    local = fold([MetadataDelta(patch={"a": None, "b": {"x": 2}})], base)
    remote = fold([MetadataDelta(patch={"b": {"y": 3}, "c": 4})], base)
    merged = merge_threads(base, local, remote)
    assert merged.metadata == {"b": {"x": 2, "y": 3}, "c": 4}


@given(st.integers(0, 6), operations, operations)
def test_decompress_of_compress_gives_the_new_thread(
    count: int, old_ops: list[tuple[str, object]], new_ops: list[tuple[str, object]]
) -> None:
    base = base_thread(count)
    old = play(base, "O", old_ops).thread
    new = play(old, "N", new_ops).thread
    deltas = compress(old, new)
    assert content(decompress(old, deltas)) == content(new)
    assert len(deltas) <= new.v - old.v  # never more than the changes made
