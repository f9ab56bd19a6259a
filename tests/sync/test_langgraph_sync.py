"""A LangGraph conversation stored by ThreadlineSaver is a thread like any other
(issue 15): synced from machine A through a real server to machine B, it is
the same thread on all three, the server's viewer shows its messages, tool
calls and cost, and the graph continues on B from A's state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tests.integrations.langgraph_agent import build_agent
from tests.sync.conftest import Server, service
from threadline import ThreadStore
from threadline.integrations.langgraph import AsyncThreadlineSaver
from threadline.recorders.sqlite import SqliteRecorder

CONFIG: Any = {"configurable": {"thread_id": "weather-sync"}}


async def test_a_langgraph_thread_syncs_shows_in_the_viewer_and_continues_on_b(
    sync_server: Server, tmp_path: Path
) -> None:
    token = await sync_server.token()
    a_local, b_local = SqliteRecorder(tmp_path / "a.db"), SqliteRecorder(tmp_path / "b.db")
    a, b = ThreadStore(a_local), ThreadStore(b_local)
    a_sync = service(a_local, sync_server, token, 1)
    b_sync = service(b_local, sync_server, token, 2)
    try:
        agent = build_agent(AsyncThreadlineSaver(a))
        await agent.ainvoke({"messages": [HumanMessage("Weather in Lisbon?", id="h1")]}, CONFIG)
        thread_id = AsyncThreadlineSaver(a).threadline_thread_id(CONFIG)
        on_a = await a.get_thread(thread_id)
        a_cost = (await a.thread_costs([thread_id]))[thread_id].cost_usd
        assert a_cost is not None
        assert a_cost > 0

        assert (await a_sync.sync_once()).failed == {}
        assert (await b_sync.sync_once()).failed == {}

        on_b = await b.get_thread(thread_id)
        assert on_b.messages == on_a.messages
        assert on_b.metadata == on_a.metadata
        assert (await b.thread_costs([thread_id]))[thread_id].cost_usd == a_cost

        # The server's viewer reads it like any thread.
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=sync_server.url, headers=headers) as http:
            page = (await http.get(f"/threads/{thread_id}")).text
            assert "Weather in Lisbon?" in page
            assert "weather" in page  # the tool call
            assert "sunny, 24 °C" in page  # its result
            [bar] = re.findall(r'data-stat="cost"[^>]*>\$([\d,.]+)', page)
            assert float(bar) == pytest.approx(a_cost, abs=5e-5)
            listing = (await http.get("/")).text
            assert "LangGraph weather-sync" in listing

        # Machine B continues the graph from A's state ...
        agent_b = build_agent(AsyncThreadlineSaver(b))
        state = (await agent_b.aget_state(CONFIG)).values["messages"]
        assert [type(m) for m in state] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
        await agent_b.ainvoke({"messages": [HumanMessage("And tomorrow?", id="h2")]}, CONFIG)
        assert len((await agent_b.aget_state(CONFIG)).values["messages"]) == 8
        assert len((await b.get_thread(thread_id)).messages) == 8

        # ... and A sees B's turn after the next sync.
        assert (await b_sync.sync_once()).failed == {}
        assert (await a_sync.sync_once()).failed == {}
        back = build_agent(AsyncThreadlineSaver(a))
        messages = (await back.aget_state(CONFIG)).values["messages"]
        assert len(messages) == 8
        assert messages[-1].content == "It is sunny, 24 °C in Lisbon."
    finally:
        await a_sync.remote.close()
        await b_sync.remote.close()
        await a.close()
        await b.close()
