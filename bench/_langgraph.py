"""The LangGraph side of benchmark 5: a ``StateGraph`` whose state is
``messages: Annotated[list, add_messages]``, checkpointed by ``SqliteSaver``.

This module needs the ``bench`` extras (``pip install -e '.[bench]'``). It does
not postpone annotations: LangGraph reads the state's annotations at run time.
"""

import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from _common import GrowthRun, human_bytes, load_langgraph, store_bytes

load_langgraph()  # before any `from langgraph...`: bench/langgraph.py shadows it

from langchain_core.messages import (  # noqa: E402
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.graph.message import add_messages  # noqa: E402

from threadline import Message  # noqa: E402


class State(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]


def to_langchain(message: Message) -> BaseMessage:
    """The same message as LangChain's type (one to one: at most one tool call or result)."""
    if message.tool_results:
        (result,) = message.tool_results
        return ToolMessage(
            id=message.id,
            content=str(result.output),
            tool_call_id=result.tool_call_id,
            status="error" if result.is_error else "success",
        )
    if message.role == "assistant":
        usage = message.usage
        return AIMessage(
            id=message.id,
            content=message.content,
            tool_calls=[{"id": c.id, "name": c.name, "args": c.input} for c in message.tool_calls],
            usage_metadata=None
            if usage is None
            else {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "input_token_details": {
                    "cache_read": usage.cache_read_tokens,
                    "cache_creation": usage.cache_write_tokens,
                },
            },
            response_metadata={}
            if usage is None
            else {"model_name": usage.model, "cost_usd": usage.cost_usd},
        )
    if message.role == "system":
        return SystemMessage(id=message.id, content=message.content)
    return HumanMessage(id=message.id, content=message.content)


def _agent(state: State) -> dict[str, Any]:
    return {}  # the message arrives as the step's input; the node adds nothing


def grow_langgraph(path: Path, messages: list[Message], mode: str, budget: float) -> GrowthRun:
    """Append ``messages`` one per step to one LangGraph thread; stop after ``budget`` s.

    ``mode="update"``: one ``graph.update_state`` per message (one checkpoint,
    the least LangGraph can write per message); ``"invoke"``: one
    ``graph.invoke`` through a no-op node (input, loop and node checkpoints).
    The connection is ours, configured like threadline's: WAL, ``synchronous=FULL``.
    The database files are deleted before returning (they reach gigabytes).
    """
    builder = StateGraph(State)
    builder.add_node("agent", _agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    graph = builder.compile(checkpointer=SqliteSaver(conn))
    config: Any = {"configurable": {"thread_id": "bench-5"}}
    converted = [to_langchain(m) for m in messages]
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for index, message in enumerate(converted):
        began = clock()
        if mode == "invoke":
            graph.invoke({"messages": [message]}, config)
        else:
            graph.update_state(config, {"messages": [message]}, as_node="agent")
        latencies.append(clock() - began)
        spent = clock() - start
        if (index + 1) % 250 == 0:
            print(
                f"      langgraph: {index + 1:,} messages, {spent:.0f} s, "
                f"{human_bytes(store_bytes(path))}",
                flush=True,
            )
        if spent > budget:
            print(f"      langgraph: stopped at {index + 1:,} messages (budget {budget:.0f} s)")
            break
    seconds = clock() - start
    stored = graph.get_state(config).values["messages"]
    assert len(stored) == len(latencies), (len(stored), len(latencies))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = store_bytes(path)
    conn.close()
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    return GrowthRun(len(latencies), seconds, size, latencies)
