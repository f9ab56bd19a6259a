"""A small LangGraph agent for the tests and docs: a model node (a scripted
chat model that calls a tool, then answers, reporting its usage) and a tool
node, with ``messages: Annotated[list, add_messages]``.

No postponed annotations: LangGraph reads the state's annotations at run time.
"""

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph


class State(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]


MODEL = "claude-sonnet-4-20250514"


def scripted_model(state: State) -> dict[str, Any]:
    """Ask for the weather tool once per question, then answer with what it said."""
    last = state["messages"][-1]
    usage = {
        "input_tokens": 1200,
        "output_tokens": 80,
        "total_tokens": 1280,
        "input_token_details": {"cache_read": 1000},
    }
    turn = sum(1 for m in state["messages"] if isinstance(m, AIMessage))
    if isinstance(last, ToolMessage):
        reply = AIMessage(
            content=f"It is {last.content} in Lisbon.",
            usage_metadata=usage,
            response_metadata={"model_name": MODEL},
        )
    else:
        reply = AIMessage(
            content="Let me check the forecast.",
            tool_calls=[{"id": f"call-{turn}", "name": "weather", "args": {"city": "Lisbon"}}],
            usage_metadata=usage,
            response_metadata={"model_name": MODEL},
        )
    return {"messages": [reply]}


def weather_tool(state: State) -> dict[str, Any]:
    """Answer every tool call of the last message."""
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    return {
        "messages": [
            ToolMessage(content="sunny, 24 °C", tool_call_id=call["id"] or "")
            for call in last.tool_calls
        ]
    }


def _route(state: State) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def build_agent(checkpointer: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent graph, compiled with ``checkpointer``."""
    builder = StateGraph(State)
    builder.add_node("model", scripted_model)
    builder.add_node("tools", weather_tool)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", _route, ["tools", END])
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer)
