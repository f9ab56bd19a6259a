"""Export threads as JSON, JSON Lines or Markdown, alone or with their tree.

- ``json``: one document, ``{"format": "threadline-export", "version": 1,
  "threads": [Thread, ...]}`` (each thread as the library's ``Thread`` JSON).
  ``threadline import json`` reads it back into another store and gives the
  same threads (ids, titles, env, metadata, messages, links); ``v`` counts the
  new store's own versions.
- ``jsonl``: a line ``{"type": "thread", ...}`` per thread (the thread without
  its messages) followed by a line ``{"type": "message", "thread_id", ...}``
  per message: for ``jq`` and streaming; also importable.
- ``md``: for a person: the turns in order, tool calls and results folded
  (``<details>``), usage and cost per response and in total.

With ``tree`` the thread's sub-agent and summary threads follow it, to any
depth (breadth first); a linked thread that no longer exists is listed in
:attr:`ExportedTree.missing` and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import JsonValue

from threadline.costs import CostLine
from threadline.deltas import head_of
from threadline.errors import ThreadNotFound
from threadline.model import Message, Thread, ToolCall, UsageTotals
from threadline.pricing import price_usage
from threadline.store import ThreadStore

Format = Literal["json", "jsonl", "md"]
FORMAT_NAME = "threadline-export"
FORMAT_VERSION = 1


@dataclass
class ExportedTree:
    """The threads to export, root first, and linked ids that were not found."""

    threads: list[Thread]
    missing: list[str] = field(default_factory=list)
    costs: dict[str, CostLine] = field(default_factory=dict)  # each thread's stored cost


async def collect(store: ThreadStore, thread_id: str, *, tree: bool = False) -> ExportedTree:
    """``thread_id`` (:class:`ThreadNotFound` if absent) and, with ``tree``, every
    sub-agent and summary thread below it."""
    found = await _collect(store, thread_id, tree)
    found.costs = await store.thread_costs([thread.id for thread in found.threads])
    return found


async def _collect(store: ThreadStore, thread_id: str, tree: bool) -> ExportedTree:
    root = await store.get_thread(thread_id)
    found = ExportedTree([root])
    if not tree:
        return found
    seen = {root.id}
    queue = [root]
    while queue:
        current = queue.pop(0)
        for linked in (*current.child_thread_ids, *current.summary_thread_ids):
            if linked in seen:
                continue
            seen.add(linked)
            try:
                thread = await store.get_thread(linked)
            except ThreadNotFound:
                found.missing.append(linked)
                continue
            found.threads.append(thread)
            queue.append(thread)
    return found


def render(
    threads: Sequence[Thread], fmt: Format, costs: Mapping[str, CostLine] | None = None
) -> bytes:
    """The threads in ``fmt``, with their stored ``costs`` (id → cost) where given."""
    costs = costs or {}
    if fmt == "json":
        return to_json(threads, costs)
    if fmt == "jsonl":
        return to_jsonl(threads)
    return to_markdown(threads, costs).encode()


def to_json(threads: Sequence[Thread], costs: Mapping[str, CostLine] | None = None) -> bytes:
    document: dict[str, JsonValue] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "threads": [thread.model_dump(mode="json") for thread in threads],
    }
    if costs:  # what each thread cost, as stored (an import prices again: not read back)
        document["costs"] = {key: line.model_dump(mode="json") for key, line in costs.items()}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def to_jsonl(threads: Sequence[Thread]) -> bytes:
    lines: list[bytes] = []
    for thread in threads:
        fields = thread.model_dump(mode="json", exclude={"messages"})
        lines.append(orjson.dumps({"type": "thread", **fields}))
        for message in thread.messages:
            body = message.model_dump(mode="json")
            lines.append(orjson.dumps({"type": "message", "thread_id": thread.id, **body}))
    return b"\n".join(lines) + b"\n"


# -- Markdown -----------------------------------------------------------------------


def to_markdown(threads: Sequence[Thread], costs: Mapping[str, CostLine] | None = None) -> str:
    costs = costs or {}
    parts = [
        _thread_markdown(thread, index == 0, costs.get(thread.id))
        for index, thread in enumerate(threads)
    ]
    return "\n\n---\n\n".join(parts) + "\n"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dollars(amount: float) -> str:
    return f"${amount:.4f}"


def _cost(totals: UsageTotals) -> str:
    text = _dollars(totals.cost_usd)
    if totals.unpriced_messages:
        text += f" (+{totals.unpriced_messages} unpriced)"
    return text


def _thread_markdown(thread: Thread, is_root: bool, cost: CostLine | None) -> str:
    if thread.parent_thread_id is not None and not is_root:
        kind = "Sub-agent: "
    elif thread.origin_thread_id is not None and not is_root:
        kind = "Summary: "
    else:
        kind = ""
    title = thread.title or "(untitled)"
    if title.startswith(("Task: ", "Summary: ", "Sub-agent: ")):
        kind = ""  # the title already says what the thread is
    head = head_of(thread)
    totals = head.totals
    lines = [f"# {kind}{_escape(title)}", ""]
    facts = [
        f"id `{thread.id}`",
        f"created {_when(thread.created)}",
        f"{len(thread.messages)} messages",
        f"{totals.input_tokens:,} in / {totals.output_tokens:,} out tokens",
        f"cost {_cost(totals) if cost is None else cost.cost_text()}",
    ]
    lines.append(" · ".join(facts))
    context = [f"{key} `{thread.env[key]}`" for key in ("cwd", "git_branch") if key in thread.env]
    if thread.parent_thread_id is not None:
        context.append(f"parent `{thread.parent_thread_id}`")
    if thread.origin_thread_id is not None:
        context.append(f"summary of `{thread.origin_thread_id}`")
    for label, ids in (
        ("sub-agents", thread.child_thread_ids),
        ("summaries", thread.summary_thread_ids),
    ):
        if ids:
            context.append(f"{label} " + ", ".join(f"`{i}`" for i in ids))
    if context:
        lines += ["", " · ".join(context)]
    names = {call.id: call.name for m in thread.messages for call in m.tool_calls}
    for number, message in enumerate(thread.messages, start=1):
        lines += ["", *_message_markdown(number, message, names)]
    return "\n".join(lines)


def _message_markdown(number: int, message: Message, names: dict[str, str]) -> list[str]:
    header = f"## {number}. {message.role.capitalize()} · {_when(message.timestamp)}"
    usage = message.usage
    if usage is not None:
        bits = [usage.model] if usage.model else []
        bits.append(f"{usage.input_tokens:,} in · {usage.output_tokens:,} out")
        if usage.cache_read_tokens:
            bits.append(f"{usage.cache_read_tokens:,} cache read")
        if usage.cache_write_tokens:
            bits.append(f"{usage.cache_write_tokens:,} cache write")
        priced = price_usage(usage, message.timestamp)
        if priced.cost_usd is None:
            bits.append("unpriced")
        else:
            bits.append(("≈" if priced.source == "computed" else "") + _dollars(priced.cost_usd))
        header += " · " + " · ".join(bits)
    lines = [header]
    if message.content:
        lines += ["", message.content]
    for call in message.tool_calls:
        lines += ["", *_folded(f"Tool call: {_call_line(call)}", _json(call.input), "json")]
    for result in message.tool_results:
        name = names.get(result.tool_call_id, result.tool_call_id)
        label = f"Result of {name}" + (" (error)" if result.is_error else "")
        output = result.output
        text = output if isinstance(output, str) else _json(output)
        lines += ["", *_folded(label, text, "" if isinstance(output, str) else "json")]
    return lines


def _call_line(call: ToolCall, width: int = 80) -> str:
    args = ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in call.input.items())
    line = " ".join(f"{call.name}({args})".split())
    return _escape(line if len(line) <= width else line[: width - 1] + "…")


def _json(value: JsonValue) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _folded(summary: str, body: str, language: str) -> list[str]:
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    return [
        f"<details><summary>{summary}</summary>",
        "",
        f"{fence}{language}",
        body,
        fence,
        "",
        "</details>",
    ]


def _escape(text: str) -> str:
    """Text safe inside a heading or a ``<summary>`` (no HTML, no line breaks)."""
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())
