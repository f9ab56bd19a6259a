"""The threadline savers under a real LangGraph agent: the conversation is a
threadline thread (show, cost, search through the CLI), time travel forks it,
state survives reopening, and the sync saver works inside a running loop."""

import asyncio
import copy
import json
import operator
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph

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


# -- found by LangGraph's own test suite (tests/integrations/test_langgraph_suite.py) --


def put_messages(saver: ThreadlineSaver, config: Any, messages: list[Any], version: int) -> Any:
    """Put a checkpoint whose only channel is ``messages``, on top of ``config``'s."""
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": messages}
    checkpoint["channel_versions"] = {"messages": version}
    metadata: Any = {"source": "loop", "step": version, "parents": {}}
    return saver.put(config, checkpoint, metadata, {"messages": version})


def test_a_checkpoint_edited_by_its_reader_reads_back_as_stored(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "reader-edits"}}
    with ThreadlineSaver.from_path(tmp_path / "threads.db") as saver:
        build_agent(saver).invoke({"messages": [HumanMessage("Weather?", id="h1")]}, config)
        read = saver.get_tuple(config)
        assert read is not None
        stored = copy.deepcopy((read.checkpoint, read.metadata))
        # what LangGraph's apply_writes and a caller of get_state do to what they read
        read.checkpoint["channel_versions"]["messages"] = 99
        read.checkpoint["versions_seen"].clear()
        read.checkpoint["channel_values"]["messages"][0].content = "edited"
        read.metadata["step"] = 99
        again = saver.get_tuple(config)
    assert again is not None
    assert (again.checkpoint, again.metadata) == stored


def test_a_message_edited_in_place_and_put_again_is_stored_edited(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    config: Any = {"configurable": {"thread_id": "writer-edits", "checkpoint_ns": ""}}
    question, reply = HumanMessage("Weather?", id="h1"), AIMessage("Sunny.", id="a1")
    with ThreadlineSaver.from_path(db) as saver:
        first = put_messages(saver, config, [question, reply], 1)
        reply.content = "Rainy."  # the object the saver was given, edited in place
        put_messages(saver, first, [question, reply], 2)
    with ThreadlineSaver.from_path(db) as saver:
        latest = saver.get_tuple(config)
    assert latest is not None
    assert [m.content for m in latest.checkpoint["channel_values"]["messages"]] == [
        "Weather?",
        "Rainy.",
    ]


class Forecast(TypedDict):
    sky: str
    steps: Annotated[list[str], operator.add]


def forecast_graph(saver: Any) -> Any:
    """``one`` then ``two``, paused before ``two``; ``two`` leaves ``sky`` as it is."""
    builder = StateGraph(Forecast)
    builder.add_node("one", lambda state: {"steps": ["one"]})
    builder.add_node("two", lambda state: {"steps": ["two"]})
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", END)
    return builder.compile(checkpointer=saver, interrupt_before=["two"])


def test_two_forks_of_one_checkpoint_keep_their_own_values(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "forks"}}
    with ThreadlineSaver.from_path(tmp_path / "threads.db") as saver:
        graph = forecast_graph(saver)
        graph.invoke({"sky": "unknown", "steps": []}, config)
        paused = graph.get_state(config).config
        sunny = graph.update_state(paused, {"sky": "sunny"})
        graph.update_state(paused, {"sky": "rainy"})  # the same channel version, another value
        graph.invoke(None, sunny)
        latest = graph.get_state(config)
    assert latest.values == {"sky": "sunny", "steps": ["one", "two"]}


def test_a_thread_copied_from_sqlite_saver_resumes_on_threadline(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    config: Any = {"configurable": {"thread_id": "moved", "checkpoint_ns": ""}}
    with SqliteSaver.from_conn_string(":memory:") as sqlite:
        forecast_graph(sqlite).invoke({"sky": "sunny", "steps": []}, config)
        oldest_first = list(sqlite.list(config))[::-1]
    with ThreadlineSaver.from_path(tmp_path / "threads.db") as saver:
        for saved in oldest_first:  # LangGraph's string versions, "<n>.<random>"
            writes: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in saved.pending_writes or []:
                writes.setdefault(task_id, []).append((channel, value))
            for task_id, task_writes in writes.items():
                saver.put_writes(saved.config, task_writes, task_id)
            versions = saved.checkpoint["channel_versions"]
            saver.put(saved.parent_config or config, saved.checkpoint, saved.metadata, versions)
        resumed = forecast_graph(saver).invoke(None, config)
    assert resumed == {"sky": "sunny", "steps": ["one", "two"]}


async def test_concurrent_namespaces_and_readers_lose_no_checkpoint(tmp_path: Path) -> None:
    """A subgraph's first checkpoint links its namespace's thread under the root
    one while the root is written and read: every checkpoint is kept."""
    namespaces = ["", "child:1", "child:2", "child:3"]
    async with AsyncThreadlineSaver.from_path(tmp_path / "threads.db") as saver:

        async def write(thread_id: str, ns: str) -> None:
            config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
            for step in range(3):
                metadata: Any = {"source": "loop", "step": step, "parents": {}}
                config = await saver.aput(config, empty_checkpoint(), metadata, {})

        async def read(thread_id: str) -> None:
            for _ in range(6):
                await saver.aget_tuple({"configurable": {"thread_id": thread_id}})

        for round in range(20):
            thread_id = f"round-{round}"
            writers = [write(thread_id, ns) for ns in namespaces]
            await asyncio.gather(*writers, read(thread_id), read(thread_id))
            listed = saver.alist({"configurable": {"thread_id": thread_id}})
            found = [t.config["configurable"]["checkpoint_ns"] async for t in listed]
            assert sorted(found) == sorted(namespaces * 3)


@pytest.mark.parametrize(
    "metadata",
    [
        {"model_name": "m", "cost": 1.5, "nested": [{"a": None}]},
        {"odd": (1, 2)},  # not JSON as it is: deep-copied instead
        {"big": 2**70, "inf": float("inf")},
    ],
)
def test_a_read_message_shares_nothing_mutable_with_the_index(metadata: dict[str, Any]) -> None:
    from threadline.integrations.langchain_messages import Template

    kept = AIMessage(
        "hi",
        response_metadata=metadata,
        tool_calls=[{"id": "c1", "name": "f", "args": {"q": [1]}}],
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    )
    template = Template.of(kept)
    read = template.copy()
    assert read == kept
    assert template.equals(read)
    read.tool_calls[0]["args"]["q"].append(2)
    read.response_metadata["new"] = True
    assert kept.tool_calls[0]["args"] == {"q": [1]}
    assert "new" not in kept.response_metadata
    assert not template.equals(read)
