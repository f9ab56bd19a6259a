"""ThreadlineSession, the OpenAI Agents SDK session on threadline: items round
trip exactly, read as a thread, pop and clear are truncates, a closed session
refuses, and 8 processes starting one session at once all succeed."""

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("agents")

from agents.items import TResponseInputItem

from threadline import ThreadStore
from threadline.integrations.openai_agents import (
    ThreadlineSession,
    session_thread_id,
)

ITEMS: list[Any] = [
    {"role": "user", "content": "What is the weather in Lisbon?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "weather",
        "arguments": '{"city": "Lisbon"}',
        "id": "fc_1",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "status": "completed",
        "content": [{"type": "output_text", "text": "It is sunny.", "annotations": []}],
    },
]


async def test_items_round_trip_and_read_as_a_thread(tmp_path: Path) -> None:
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        session = ThreadlineSession("user-42", store=store)
        await session.add_items(cast(list[TResponseInputItem], ITEMS))
        assert await session.get_items() == ITEMS
        assert await session.get_items(limit=2) == ITEMS[2:]
        assert await session.get_items(limit=0) == []
        thread = await store.get_thread(session_thread_id("user-42"))
    assert [m.role for m in thread.messages] == ["user", "assistant", "user", "assistant"]
    assert thread.messages[0].content == "What is the weather in Lisbon?"
    assert thread.messages[1].tool_calls[0].model_dump() == {
        "id": "call_1",
        "name": "weather",
        "input": {"city": "Lisbon"},
    }
    assert thread.messages[2].tool_results[0].output == "sunny"
    assert thread.messages[3].content == "It is sunny."
    assert thread.metadata == {"openai_agents": {"session_id": "user-42"}}


async def test_pop_and_clear_are_truncates_that_keep_history(tmp_path: Path) -> None:
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        session = ThreadlineSession("s", store=store)
        await session.add_items(cast(list[TResponseInputItem], ITEMS))
        assert await session.pop_item() == ITEMS[-1]
        assert await session.get_items() == ITEMS[:-1]
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
        log = await store.history(session_thread_id("s"))
        before_clear = await store.thread_at(session_thread_id("s"), log[-1].v - 1)
    assert [r.delta.type for r in log[-2:]] == ["thread:truncate", "thread:truncate"]
    assert len(before_clear.messages) == 3


async def test_closed_session_raises(tmp_path: Path) -> None:
    session = ThreadlineSession("closing", tmp_path / "threads.db")
    await session.add_items([{"role": "user", "content": "hi"}])
    session.close()
    with pytest.raises(RuntimeError, match="ThreadlineSession is closed"):
        await session.get_items()
    with pytest.raises(RuntimeError, match="ThreadlineSession is closed"):
        await session.add_items([])
    reopened = ThreadlineSession("closing", tmp_path / "threads.db")
    assert await reopened.get_items() == [{"role": "user", "content": "hi"}]
    reopened.close()


def _start_session(path: str, worker: int, barrier: Any) -> int:
    async def run() -> int:
        session = ThreadlineSession("shared", path)
        barrier.wait()
        try:
            for turn in range(5):
                await session.add_items(
                    [{"role": "user", "content": f"worker {worker} turn {turn}"}]
                )
            return len(await session.get_items())
        finally:
            session.close()

    return asyncio.run(run())


def test_eight_processes_starting_one_session_all_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "threads.db")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(8)
        with context.Pool(8) as pool:
            counts = pool.starmap(_start_session, [(path, w, barrier) for w in range(8)])
    assert len(counts) == 8  # no process raised ("database is locked" or otherwise)

    async def read() -> list[Any]:
        session = ThreadlineSession("shared", path)
        try:
            return await session.get_items()
        finally:
            session.close()

    items = asyncio.run(read())
    assert len(items) == 40
    assert sorted(item["content"] for item in items) == sorted(
        f"worker {w} turn {t}" for w in range(8) for t in range(5)
    )
