"""Which tool call spawned a Claude Code sub-agent.

A sub-agent's thread is linked to the ``Task``/``Agent`` tool call that
started it: from the agent's ``.meta.json`` (``toolUseId``), from the tool
result's ``toolUseResult.agentId``, from ``agent_progress`` records
(``data.agentId`` with ``parentToolUseID``), or else by its prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue

from threadline.model import Message

_SPAWNING_TOOLS = frozenset({"Task", "Agent"})


@dataclass
class Spawners:
    """What tells which tool call spawned an agent."""

    by_agent: dict[str, str] = field(default_factory=dict)
    task_calls: list[tuple[str, str, JsonValue]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def note_progress(self, record: dict[str, JsonValue]) -> None:
        data = record.get("data")
        tool_use = record.get("parentToolUseID")
        if isinstance(data, dict) and isinstance(tool_use, str):
            agent = data.get("agentId")
            if isinstance(agent, str):
                self.by_agent.setdefault(agent, tool_use)

    def note_session(self, messages: Sequence[Message]) -> None:
        for message in messages:
            for call in message.tool_calls:
                if call.name in _SPAWNING_TOOLS:
                    self.task_calls.append((call.id, call.name, call.input.get("prompt")))
            result = message.metadata.get("toolUseResult")
            if isinstance(result, dict) and isinstance(result.get("agentId"), str):
                for tool_result in message.tool_results:
                    self.by_agent.setdefault(str(result["agentId"]), tool_result.tool_call_id)

    def find(self, agent_id: str | None, prompt: str | None, meta: str | None) -> str | None:
        found = meta or (self.by_agent.get(agent_id) if agent_id else None)
        if found is None and prompt:
            found = next(
                (
                    call_id
                    for call_id, _, asked in self.task_calls
                    if asked == prompt and call_id not in self.used
                ),
                None,
            )
        if found is not None:
            self.used.add(found)
        return found

    def describe(self, call_id: str | None, messages: Sequence[Message]) -> str | None:
        for message in messages:
            for call in message.tool_calls:
                if call.id == call_id:
                    description = call.input.get("description")
                    if isinstance(description, str) and description:
                        return f"Task: {description}"
        return None
