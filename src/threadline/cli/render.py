"""How the CLI shows threads, pages, listings, logs and costs to a person.

Everything user-supplied goes into :class:`rich.text.Text` objects, never into
markup strings, so brackets in a message cannot restyle the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import assert_never

import orjson
from pydantic import JsonValue
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from threadline.costs import CostLine
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    EnvDelta,
    MergeDelta,
    MessageAmendDelta,
    MessageDelta,
    MetadataDelta,
    RecordDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
)
from threadline.model import (
    Message,
    ThreadHead,
    ThreadListPage,
    ThreadPage,
    ToolCall,
    Usage,
    UsageTotals,
)
from threadline.pricing import price_usage
from threadline.recorders.base import RecordedDelta

LINE = 100  # longest one-line summary of a tool call, a result or a log entry
_INDENT = 4
_NUMERIC = frozenset({"v", "Msgs", "Cost"})
_ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta"}


def clip(text: str, width: int = LINE) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(ms: int, *, date: bool = True, seconds: bool = True) -> str:
    """A millisecond timestamp in local time."""
    moment = datetime.fromtimestamp(ms / 1000).astimezone()
    time = "%H:%M:%S" if seconds else "%H:%M"
    return moment.strftime(f"%Y-%m-%d {time}" if date else time)


def dollars(amount: float) -> str:
    return f"${amount:.4f}"


def _json_text(value: JsonValue) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def tool_call_line(call: ToolCall, width: int = LINE) -> str:
    """``name(arg=value, ...)`` on one line."""
    args = ", ".join(f"{key}={orjson.dumps(value).decode()}" for key, value in call.input.items())
    return clip(f"{call.name}({args})", width)


def usage_text(usage: Usage, timestamp: int | None = None) -> str:
    """Model, tokens and cost of one response: as reported, else (given the
    message's ``timestamp``) computed as when it was stored (``≈$``)."""
    parts = [usage.model] if usage.model else []
    parts.append(f"{usage.input_tokens:,} in")
    parts.append(f"{usage.output_tokens:,} out")
    if usage.cache_read_tokens:
        parts.append(f"{usage.cache_read_tokens:,} cache read")
    if usage.cache_write_tokens:
        one_hour = usage.cache_write_1h_tokens
        parts.append(
            f"{usage.cache_write_tokens:,} cache write"
            + (f" ({one_hour:,} for 1h)" if one_hour else "")
        )
    priced = price_usage(usage, timestamp) if timestamp is not None else None
    if usage.cost_usd is not None:
        parts.append(dollars(usage.cost_usd))
    elif priced is not None and priced.cost_usd is not None:
        parts.append("≈" + dollars(priced.cost_usd))
    else:
        parts.append("unpriced")
    return " · ".join(parts)


def tool_names(messages: Iterable[Message]) -> dict[str, str]:
    """Tool call id → tool name, to label results."""
    return {call.id: call.name for message in messages for call in message.tool_calls}


def message_view(message: Message, index: int, names: dict[str, str], width: int) -> Group:
    """A message: a header line, then, indented, its content and one line per tool
    call and result (cut to ``width``)."""
    header = Text()
    header.append(f"#{index} ", style="dim")
    header.append(message.role, style=_ROLE_STYLES[message.role])
    header.append(f"  {when(message.timestamp, date=False)}", style="dim")
    if message.usage is not None:
        header.append(f"  {usage_text(message.usage, message.timestamp)}", style="yellow")
    lines = [Text(message.content)] if message.content else []
    for call in message.tool_calls:
        line = Text("→ ", style="bold blue")
        line.append(tool_call_line(call, width))
        lines.append(line)
    for result in message.tool_results:
        name = names.get(result.tool_call_id, result.tool_call_id)
        line = Text("← ", style="bold red" if result.is_error else "bold blue")
        line.append(f"{name}: ")
        if result.is_error:
            line.append("error: ", style="bold red")
        line.append(clip(_json_text(result.output), max(20, width - len(line))))
        lines.append(line)
    if not lines:
        return Group(header)
    return Group(header, Padding(Text("\n").join(lines), (0, 0, 0, _INDENT), expand=False))


def print_messages(console: Console, messages: Sequence[Message], first_index: int) -> None:
    names = tool_names(messages)
    width = max(40, console.width - _INDENT)
    for offset, message in enumerate(messages):
        console.print(message_view(message, first_index + offset, names, width))


def head_line(head: ThreadHead, cost: CostLine | None = None) -> Text:
    """Title, id, version, message count and what the thread has cost so far
    (``cost``, its stored figure; else the head's reported total)."""
    text = Text()
    text.append(head.title or "(untitled)", style="bold")
    text.append(f"  {head.id}", style="dim")
    text.append(f"  v{head.v} · {head.message_count} messages · ")
    text.append(cost_text(head.totals) if cost is None else cost.cost_text(), style="yellow")
    text.append(" spent")
    return text


def cost_text(totals: UsageTotals) -> str:
    text = dollars(totals.cost_usd)
    if totals.unpriced_messages:
        text += f" (+{totals.unpriced_messages} unpriced)"
    return text


def print_page(
    console: Console, page: ThreadPage, sync: str | None = None, cost: CostLine | None = None
) -> None:
    """A page of messages, then which of how many are shown and how to get the older page."""
    console.print(head_line(page.head, cost))
    if sync is not None:
        console.print(f"Sync: {sync}", style="dim", soft_wrap=True)
    print_messages(console, page.messages, page.first_index)
    total = page.total_messages
    if not page.messages:
        console.print(f"No messages on this page; the thread has {total}.", style="dim")
        return
    last = page.first_index + len(page.messages) - 1
    shown = f"Showing messages #{page.first_index} to #{last} of {total}"
    if page.offset == 0:
        shown += " (the newest)"
    if page.has_more:
        shown += f". Older: threadline show {page.id} --before {page.first_index}"
    console.print(shown, style="dim", soft_wrap=True)


def print_one_line_table(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]], *, flexible: int
) -> None:
    """A borderless table with one line per row: every column as wide as its widest
    cell, except ``flexible``, which gets the rest of the line (at least 12
    characters; a narrow terminal wraps the line rather than cut an id)."""
    cells = [[clip(cell, 10_000) for cell in row] for row in (headers, *rows)]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    gaps = 2 * (len(headers) - 1)
    widths[flexible] = min(
        widths[flexible], max(12, console.width - gaps - sum(widths) + widths[flexible])
    )
    for number, row in enumerate(cells):
        line = Text(style="bold" if number == 0 else "")
        for index, cell in enumerate(row):
            text = clip(cell, widths[index])
            padded = (
                text.rjust(widths[index])
                if headers[index] in _NUMERIC
                else text.ljust(widths[index])
            )
            line.append(padded if index == len(row) - 1 else padded + "  ")
        line.rstrip()
        console.print(line, soft_wrap=True)


def print_thread_list(
    console: Console,
    page: ThreadListPage,
    sync: Mapping[str, str] | None = None,
    costs: Mapping[str, CostLine] | None = None,
) -> None:
    """The threads, one a line, with their stored ``costs`` (id → cost); with
    ``sync`` (id → sync status), a Sync column."""
    costs = costs or {}
    rows = [
        (
            head.id,
            ("[archived] " if head.archived else "") + (head.title or "(untitled)"),
            str(head.v),
            str(head.message_count),
            when(head.last_activity, seconds=False),
            costs[head.id].cost_text() if head.id in costs else cost_text(head.totals),
            *(() if sync is None else (sync.get(head.id, "-"),)),
        )
        for head in page.threads
    ]
    headers: tuple[str, ...] = ("ID", "Title", "v", "Msgs", "Last activity", "Cost")
    if sync is not None:
        headers += ("Sync",)
    if rows:
        print_one_line_table(console, headers, rows, flexible=1)
    else:
        console.print("No threads yet. Create one with: threadline new", style="dim")
    if page.next_cursor is not None:
        console.print(
            f"More: threadline list --cursor {page.next_cursor}", style="dim", soft_wrap=True
        )


def describe_delta(delta: Delta) -> str:
    """One line saying what a delta did."""
    match delta:
        case ThreadCreate(title=title):
            return f"created {title!r}" if title else "created"
        case MessageDelta(message=message):
            parts: list[str] = [message.role]
            if message.content:
                parts.append(repr(clip(message.content, 50)))
            if message.tool_calls:
                parts.append(", ".join(call.name for call in message.tool_calls))
            if message.tool_results:
                errors = sum(result.is_error for result in message.tool_results)
                parts.append(
                    f"{len(message.tool_results)} tool result(s)"
                    + (f", {errors} error(s)" if errors else "")
                )
            if message.usage is not None and message.usage.cost_usd is not None:
                parts.append(dollars(message.usage.cost_usd))
            return clip(" · ".join(parts))
        case MessageAmendDelta(index=index, message=message):
            return f"message #{index} ({message.role}) completed"
        case TitleDelta(value=value):
            return f"title → {value!r}" if value is not None else "title removed"
        case TruncateDelta(from_index=index):
            return f"dropped the messages from #{index} on"
        case MetadataDelta(patch=patch, replace=replace):
            return ("metadata replaced: " if replace else "metadata patched: ") + clip(
                ", ".join(patch) or "(empty)", 60
            )
        case EnvDelta(value=value):
            return "environment set: " + clip(", ".join(value) or "(empty)", 60)
        case ChildLinkDelta(thread_id=child):
            return f"sub-agent thread {child}"
        case SummaryLinkDelta(thread_id=summary):
            return f"summary thread {summary}"
        case MergeDelta(base=base, local=local, remote=remote):
            return f"sync merge of local v{local} and server v{remote} (common ancestor v{base})"
        case RecordDelta(kind=kind):
            return f"{kind} record"
        case _:
            assert_never(delta)


def print_log(console: Console, records: Sequence[RecordedDelta]) -> None:
    rows = [(str(r.v), when(r.at), r.delta.type, describe_delta(r.delta)) for r in records]
    if rows:
        print_one_line_table(console, ("v", "Committed", "Delta", "What"), rows, flexible=3)
    else:
        console.print("No versions in that range.", style="dim")


def print_costs(
    console: Console,
    all_time: UsageTotals,
    visible: UsageTotals,
    *,
    visible_messages: int,
    dropped_messages: int,
) -> None:
    """All-time totals (truncated responses included: spent is spent) next to the
    cost of the messages still visible."""
    table = Table(title="Cost", title_justify="left", header_style="bold", box=None)
    table.add_column("", no_wrap=True)
    for name in ("input", "output", "cache read", "cache write", "USD"):
        table.add_column(name, justify="right")
    rows = (
        (f"All time (incl. {dropped_messages} truncated)", all_time),
        (f"Visible ({visible_messages} messages)", visible),
    )
    for label, totals in rows:
        table.add_row(
            label,
            f"{totals.input_tokens:,}",
            f"{totals.output_tokens:,}",
            f"{totals.cache_read_tokens:,}",
            f"{totals.cache_write_tokens:,}",
            cost_text(totals),
        )
    console.print(table)
    console.print(
        "Truncated messages stay in the all-time total: tokens spent are not refunded.",
        style="dim",
    )
