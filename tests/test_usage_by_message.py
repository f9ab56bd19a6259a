"""Usage keyed by message id (issue 14): a message logged again (a merge that
re-appends it, an amendment) never counts its usage twice; a store from before
stored costs is migrated (migration 10) and priced on the first read."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from threadline import Message, ThreadStore, Usage
from threadline.deltas import Delta, MessageDelta, ThreadCreate, TruncateDelta
from threadline.recorders import MemoryRecorder, SqliteRecorder, ThreadRecorder
from threadline.recorders.roles import UsageGroup

DAY = 86_400_000
MODELS = ("claude-sonnet-4-5", "gpt-5", None, "in-house-model")


def response(n: int, model: str | None, tokens: int, cost: float | None) -> Message:
    return Message(
        id=f"M-{n}",
        role="assistant",
        content=f"answer {n}",
        timestamp=20_089 * DAY + n,
        usage=Usage(
            model=model, input_tokens=tokens, output_tokens=tokens // 10 + 1, cost_usd=cost
        ),
    )


responses = st.lists(
    st.builds(
        lambda n, model, tokens, cost: response(n, model, tokens, cost),
        st.integers(0, 10_000),
        st.sampled_from(MODELS),
        st.integers(0, 300_000),
        st.none() | st.floats(0, 5, allow_nan=False),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda m: m.id,
)


def totals(groups: list[UsageGroup]) -> tuple[int, int, float, int, int]:
    return (
        sum(g.messages for g in groups),
        sum(g.input_tokens for g in groups),
        round(sum(g.cost_usd or 0.0 for g in groups), 9),
        sum(g.computed_messages for g in groups),
        sum(g.unpriced_messages for g in groups),
    )


async def _re_appended(
    recorder: ThreadRecorder, messages: list[Message], cut: int, again: list[int]
) -> tuple[tuple[int, int, float, int, int], tuple[int, int, float, int, int]]:
    try:
        await recorder.append(
            "A", 0, [ThreadCreate(id="A"), *(MessageDelta.of(m) for m in messages)]
        )
        before = totals(await recorder.usage_rollup())
        # A merge reorder: truncate, then the same messages again, some twice.
        replay: list[Delta] = [TruncateDelta(from_index=min(cut, len(messages)))]
        replay += [MessageDelta.of(messages[i % len(messages)]) for i in again]
        await recorder.append("A", 1 + len(messages), replay)
        return before, totals(await recorder.usage_rollup())
    finally:
        await recorder.close()


@settings(max_examples=25, deadline=None)
@given(
    messages=responses,
    cut=st.integers(0, 8),
    again=st.lists(st.integers(0, 20), max_size=12),
    backend=st.sampled_from(["memory", "sqlite"]),
)
def test_re_appending_the_same_messages_never_changes_usage_totals(
    messages: list[Message], cut: int, again: list[int], backend: str
) -> None:
    recorder = MemoryRecorder() if backend == "memory" else SqliteRecorder(":memory:")
    before, after = asyncio.run(_re_appended(recorder, messages, cut, again))
    assert after == before


async def test_a_store_from_before_stored_costs_is_migrated_and_priced(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    async with await ThreadStore.open(path) as store:
        thread = await store.create_thread(
            messages=[
                response(1, "claude-sonnet-4-5", 1_000, None),
                response(2, "gpt-5", 2_000, 0.25),
                response(3, None, 10, None),
            ],
            capture_environment=False,
        )
        expected = await store.cost_report(thread.id)
    # The rows as migration 10 finds them: no stored costs, and a message
    # counted twice (a re-append before usage was keyed by message id).
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP INDEX message_usage_by_message;
        ALTER TABLE message_usage DROP COLUMN message_id;
        ALTER TABLE message_usage DROP COLUMN cache_write_1h_tokens;
        ALTER TABLE message_usage DROP COLUMN cost_source;
        ALTER TABLE message_usage DROP COLUMN price_version;
        UPDATE message_usage SET cost_usd = NULL WHERE cost_usd <> 0.25;
        INSERT INTO message_usage
            SELECT delta_seq + 1000, tid, day, model, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, cost_usd
            FROM message_usage WHERE model = 'gpt-5';
        INSERT INTO deltas (seq, tid, v, at, body)
            SELECT seq + 1000, tid, v + 1000, at, body FROM deltas
            WHERE seq IN (SELECT delta_seq - 1000 FROM message_usage WHERE delta_seq > 1000);
        DELETE FROM schema_migrations WHERE version = 10;
        """
    )
    conn.close()
    async with await ThreadStore.open(path) as store:
        assert await store.cost_report(thread.id) == expected
        costs = await store.thread_costs([thread.id])
        assert costs[thread.id] == expected.total.model_copy(update={"key": thread.id})
    conn = sqlite3.connect(path)
    stored = conn.execute(
        "SELECT message_id, cost_source, price_version IS NOT NULL FROM message_usage "
        "ORDER BY message_id"
    ).fetchall()
    conn.close()
    assert stored == [("M-1", "computed", 1), ("M-2", "reported", 0), ("M-3", None, 0)]
