"""The threadline savers under a real LangGraph agent: the conversation is a
threadline thread (show, cost, search through the CLI), time travel forks it,
state survives reopening, and the sync saver works inside a running loop."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tests.integrations.langgraph_agent import MODEL, build_agent
from threadline import ThreadStore
from threadline.integrations.langgraph import (
    AsyncThreadlineSaver,
    ThreadlineSaver,
)


def cli(db: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "--db", str(db), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_agent_conversation_is_a_readable_priced_thread(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    config: Any = {"configurable": {"thread_id": "weather-1"}}
    with ThreadlineSaver.from_path(db) as saver:
        agent = build_agent(saver)
        agent.invoke({"messages": [HumanMessage("Weather in Lisbon?", id="h1")]}, config)
        thread_id = saver.threadline_thread_id(config)
        state = agent.get_state(config).values["messages"]
    assert [type(m) for m in state] == [HumanMessage, AIMessage, ToolMessage, AIMessage]

    shown = json.loads(cli(db, "show", thread_id, "--json"))
    messages = shown["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Weather in Lisbon?"
    assert messages[1]["tool_calls"] == [
        {"id": "call-0", "name": "weather", "input": {"city": "Lisbon"}}
    ]
    assert messages[2]["tool_results"] == [{"tool_call_id": "call-0", "output": "sunny, 24 °C"}]
    assert messages[3]["content"] == "It is sunny, 24 °C in Lisbon."
    assert messages[3]["usage"] == {
        "model": MODEL,
        "input_tokens": 200,
        "output_tokens": 80,
        "cache_read_tokens": 1000,
    }

    cost = json.loads(cli(db, "cost", thread_id, "--json"))["total"]
    assert cost["messages"] == 2
    assert cost["input_tokens"] == 400
    assert cost["output_tokens"] == 160
    assert cost["cache_read_tokens"] == 2000
    assert cost["cost_usd"] > 0

    hits = json.loads(cli(db, "search", "sunny", "--json"))
    assert {hit["thread_id"] for hit in hits["hits"]} == {thread_id}

    listed = cli(db, "list")
    assert "LangGraph weather-1" in listed


async def test_thread_metadata_names_the_langgraph_thread(tmp_path: Path) -> None:
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        saver = AsyncThreadlineSaver(store)
        agent = build_agent(saver)
        config: Any = {"configurable": {"thread_id": "meta-1"}}
        await agent.ainvoke({"messages": [HumanMessage("Hi", id="h1")]}, config)
        thread = await store.get_thread(saver.threadline_thread_id(config))
    assert thread.metadata == {"langgraph": {"thread_id": "meta-1", "checkpoint_ns": ""}}
    assert thread.title == "LangGraph meta-1"
    assert len(thread.messages) == 4


def test_state_survives_reopening_and_time_travel_forks_the_thread(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    config: Any = {"configurable": {"thread_id": "fork-1"}}
    with ThreadlineSaver.from_path(db) as saver:
        agent = build_agent(saver)
        agent.invoke({"messages": [HumanMessage("Weather?", id="h1")]}, config)
        history = list(agent.get_state_history(config))
    with ThreadlineSaver.from_path(db) as saver:
        agent = build_agent(saver)
        assert len(list(agent.get_state_history(config))) == len(history)
        # fork from the checkpoint after the first model turn: replace its answer
        after_first_turn = next(h for h in history if len(h.values.get("messages", [])) == 2)
        first_ai = after_first_turn.values["messages"][1]
        forked = agent.update_state(
            after_first_turn.config,
            {"messages": [AIMessage("Changed my mind.", id=first_ai.id)]},
            as_node="tools",
        )
        values = agent.get_state(forked).values["messages"]
        assert [m.content for m in values] == ["Weather?", "Changed my mind."]
        old = agent.get_state(history[0].config).values["messages"]
        assert len(old) == 4
        thread_id = saver.threadline_thread_id(config)

    async def read() -> tuple[list[str], list[str]]:
        async with await ThreadStore.open(db) as store:
            thread = await store.get_thread(thread_id)
            log = await store.history(thread_id)
            truncate = next(r.v for r in log if r.delta.type == "thread:truncate")
            before = await store.thread_at(thread_id, truncate - 1)
            return [m.content for m in thread.messages], [m.content for m in before.messages]

    now, before_fork = asyncio.run(read())
    assert now == ["Weather?", "Changed my mind."]
    assert before_fork == [
        "Weather?",
        "Let me check the forecast.",
        "",
        "It is sunny, 24 °C in Lisbon.",
    ]


async def test_sync_saver_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "in-loop"}}
    with ThreadlineSaver.from_path(tmp_path / "threads.db") as saver:
        agent = build_agent(saver)
        agent.invoke({"messages": [HumanMessage("Weather?", id="h1")]}, config)
        assert len(agent.get_state(config).values["messages"]) == 4
        result = await agent.ainvoke({"messages": [HumanMessage("Again?", id="h2")]}, config)
    assert len(result["messages"]) == 8


def test_subgraph_namespace_is_a_child_thread(tmp_path: Path) -> None:
    from langgraph.graph import START, StateGraph

    from tests.integrations.langgraph_agent import State

    config: Any = {"configurable": {"thread_id": "nested"}}
    with ThreadlineSaver.from_path(tmp_path / "threads.db") as saver:
        inner = build_agent(None)
        outer_builder = StateGraph(State)
        outer_builder.add_node("agent", inner)
        outer_builder.add_edge(START, "agent")
        outer = outer_builder.compile(checkpointer=saver)
        outer.invoke({"messages": [HumanMessage("Weather?", id="h1")]}, config, subgraphs=True)
        root_id = saver.threadline_thread_id(config)
        namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(config)}

        async def children() -> tuple[tuple[str, ...], list[str | None]]:
            root = await saver.store.get_thread(root_id)
            parents = [
                (await saver.store.get_thread(child)).parent_thread_id
                for child in root.child_thread_ids
            ]
            return root.child_thread_ids, parents

        child_ids, parents = saver.run(children())
    assert "" in namespaces
    assert len(namespaces) == len(child_ids) + 1
    assert parents == [root_id] * len(child_ids)
