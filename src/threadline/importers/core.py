"""What every importer shares: reading JSONL, the import report, and writing
parsed threads into a store idempotently.

An importer is an edge: it parses an agent's files into :class:`ParsedThread`
values and hands them to :func:`save_threads`, which writes through
:class:`~threadline.store.ThreadStore` only. Ids come from the agent's own
files, so importing again (or importing a session that grew, or a resumed
session that replays earlier lines) appends only messages whose ids the
thread's log does not hold yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import orjson
from pydantic import JsonValue, ValidationError

from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageAmendDelta,
    MessageDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    fold,
)
from threadline.importers.edits import record_agent_edits
from threadline.model import Message
from threadline.pricing import price_usage
from threadline.recorders.base import RecordedDelta
from threadline.store import ThreadStore

ThreadKind = Literal["session", "subagent", "summary"]
MALFORMED_KEPT = 200
"""How many malformed lines a report lists one by one (all are counted)."""


@dataclass(frozen=True, slots=True)
class MalformedLine:
    path: str
    line: int
    error: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error}"


@dataclass
class ParsedThread:
    """A thread as read from an agent's files, before it is written.

    ``parent_id`` makes it a sub-agent thread (``spawned_by`` is the tool
    call that started it, when known); ``kind == "summary"`` with
    ``origin_id`` makes it a summary thread of that thread.
    """

    id: str
    kind: ThreadKind
    created: int
    source: str
    title: str | None = None
    env: dict[str, JsonValue] = field(default_factory=dict)
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    parent_id: str | None = None
    origin_id: str | None = None
    spawned_by: str | None = None
    child_ids: list[str] = field(default_factory=list)
    summary_ids: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import found and wrote. Counts are of what was *new* in this run,
    except ``sessions`` and ``files`` (what was read)."""

    files: int = 0
    sessions: int = 0
    threads_created: int = 0
    threads_updated: int = 0
    subagent_threads: int = 0
    summary_threads: int = 0
    messages: int = 0
    tool_calls: int = 0
    tool_results: int = 0
    already_imported: int = 0
    replayed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stored_cost_usd: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    malformed_lines: list[MalformedLine] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)
    computed_cost_usd: float = 0.0
    computed_cost_messages: int = 0
    unpriced_messages: int = 0
    # Agents' file edits recorded as file changes (importers/edits.py), how many
    # of those have their content before (after) not recorded in the transcript,
    # and the edits not recorded, by reason.
    edits_recorded: int = 0
    edits_unknown_before: int = 0
    edits_unknown_after: int = 0
    edits_left_out: Counter[str] = field(default_factory=Counter)

    def bad_line(self, path: Path | str, line: int, error: str) -> None:
        """Count a line that could not be read; keep the first few for the report."""
        self.malformed += 1
        if len(self.malformed_lines) < MALFORMED_KEPT:
            self.malformed_lines.append(MalformedLine(str(path), line, error))

    def skip(self, kind: str, count: int = 1) -> None:
        """Count a record the importer does not map (by type, e.g. ``progress``)."""
        self.skipped[kind] += count

    def count_message(self, message: Message) -> None:
        self.messages += 1
        self.tool_calls += len(message.tool_calls)
        self.tool_results += len(message.tool_results)
        usage = message.usage
        if usage is None:
            return
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        # The figure the store keeps for this message (threadline.pricing: the
        # one function that prices a response, at the message's own size and day).
        priced = price_usage(usage, message.timestamp)
        if priced.source == "reported":
            self.stored_cost_usd += usage.cost_usd or 0.0
        elif priced.cost_usd is not None:
            self.computed_cost_usd += priced.cost_usd
            self.computed_cost_messages += 1
        else:
            self.unpriced_messages += 1

    @property
    def cost_usd(self) -> float:
        """Cost of the imported responses: as recorded, else computed from tokens."""
        return self.stored_cost_usd + self.computed_cost_usd

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "files": self.files,
            "sessions": self.sessions,
            "threads_created": self.threads_created,
            "threads_updated": self.threads_updated,
            "subagent_threads": self.subagent_threads,
            "summary_threads": self.summary_threads,
            "messages": self.messages,
            "tool_calls": self.tool_calls,
            "tool_results": self.tool_results,
            "already_imported": self.already_imported,
            "replayed": self.replayed,
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cache_read": self.cache_read_tokens,
                "cache_write": self.cache_write_tokens,
                "total": self.tokens,
            },
            "cost_usd": round(self.cost_usd, 6),
            "computed_cost_messages": self.computed_cost_messages,
            "unpriced_messages": self.unpriced_messages,
            "skipped": dict(sorted(self.skipped.items())),
            "file_edits_recorded": self.edits_recorded,
            "file_edits_unknown_before": self.edits_unknown_before,
            "file_edits_unknown_after": self.edits_unknown_after,
            "file_edits_left_out": dict(sorted(self.edits_left_out.items())),
            "malformed": self.malformed,
            "malformed_lines": [
                {"path": m.path, "line": m.line, "error": m.error} for m in self.malformed_lines
            ],
            "unlinked": list(self.unlinked),
        }


# -- reading ---------------------------------------------------------------------


def read_jsonl(path: Path, report: ImportReport) -> Iterator[tuple[int, dict[str, JsonValue]]]:
    """``(line number, object)`` for every line of ``path`` that is a JSON object;
    other non-blank lines are reported as malformed and skipped.

    A UTF-8 byte order mark before the first line is ignored. A last line
    without its newline that is not JSON yet is an agent still writing it: it
    is skipped (counted as ``incomplete last line``), not reported, and read
    whole by a later import."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                if not raw.endswith(b"\n"):
                    report.skip("incomplete last line")
                    continue
                report.bad_line(path, number, f"not JSON ({exc})")
                continue
            if not isinstance(value, dict):
                report.bad_line(path, number, f"a JSON {type(value).__name__}, not an object")
                continue
            yield number, value


def iso_ms(value: object) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 timestamp (``None`` if not one)."""
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def build_message(
    report: ImportReport, path: Path | str, line: int, fields: dict[str, object]
) -> Message | None:
    """A validated message, or ``None`` (and a malformed line) if the agent's
    record does not make one."""
    try:
        return Message.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        report.bad_line(path, line, f"cannot make a message: {where}: {first['msg']}")
        return None


def clip_title(text: str, width: int = 80) -> str | None:
    flat = " ".join(text.split())
    if not flat:
        return None
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- writing ---------------------------------------------------------------------


async def save_threads(
    store: ThreadStore,
    threads: Sequence[ParsedThread],
    report: ImportReport,
    *,
    link: bool = True,
) -> None:
    """Write parsed threads in one transaction, adding only what the store does
    not hold yet: new threads, new messages, a title where there was none, and
    the links (``child_ids``, ``summary_ids``; with ``link`` also every thread
    of the batch whose ``parent_id`` or summary ``origin_id`` names another)."""
    plans: dict[str, tuple[int, list[Delta]]] = {}
    links: dict[str, tuple[list[str], list[str]]] = {}
    for parsed in threads:
        plans[parsed.id] = await _plan(store, parsed, report)
        wanted = links.setdefault(parsed.id, ([], []))
        wanted[0].extend(parsed.child_ids)
        wanted[1].extend(parsed.summary_ids)
    if link:
        for parsed in threads:
            if parsed.parent_id is not None:
                links.setdefault(parsed.parent_id, ([], []))[0].append(parsed.id)
            elif parsed.kind == "summary" and parsed.origin_id is not None:
                links.setdefault(parsed.origin_id, ([], []))[1].append(parsed.id)
    for target, (children, summaries) in links.items():
        await _plan_links(store, target, children, summaries, plans, report)
    appends = [(thread_id, v, deltas) for thread_id, (v, deltas) in plans.items() if deltas]
    if appends:
        await store.append_together(appends)
        for parsed in threads:  # the agents' own file edits (importers/edits.py)
            new = [d.message for d in plans[parsed.id][1] if isinstance(d, MessageDelta)]
            edits = await record_agent_edits(store, parsed.id, parsed.env.get("cwd"), new)
            report.edits_recorded += edits.recorded
            report.edits_unknown_before += edits.unknown_before
            report.edits_unknown_after += edits.unknown_after
            report.edits_left_out.update(edits.left_out)


async def _plan(
    store: ThreadStore, parsed: ParsedThread, report: ImportReport
) -> tuple[int, list[Delta]]:
    """The version to append at and the deltas that bring ``parsed`` in."""
    head = await store.recorder.head(parsed.id)
    if head is None:
        create = ThreadCreate(
            id=parsed.id,
            created=parsed.created,
            title=parsed.title,
            parent_thread_id=parsed.parent_id,
            origin_thread_id=parsed.origin_id,
            env=parsed.env,
            metadata=parsed.metadata,
        )
        report.threads_created += 1
        report.subagent_threads += parsed.kind == "subagent"
        report.summary_threads += parsed.kind == "summary"
        for message in parsed.messages:
            report.count_message(message)
        return 0, [create, *(MessageDelta.of(m) for m in parsed.messages)]
    log = await store.history(parsed.id)
    known = {r.delta.message.id for r in log if isinstance(r.delta, MessageDelta)}
    new = [m for m in parsed.messages if m.id not in known]
    report.already_imported += len(parsed.messages) - len(new)
    deltas: list[Delta] = [*_amendments(log, parsed.messages), *(MessageDelta.of(m) for m in new)]
    if parsed.title and head.title is None:
        deltas.append(TitleDelta(value=parsed.title))
    if deltas:
        report.threads_updated += 1
    for message in new:
        report.count_message(message)
    return head.v, deltas


def _amendments(log: Sequence[RecordedDelta], parsed: Sequence[Message]) -> list[Delta]:
    """An amendment for each stored message that the agent's file now says
    more about (issue 13): the later lines of a response that was imported
    while it was being written, or usage that came after its turn. The file is
    the truth; the store's version of the message is replaced in place."""
    current = fold(r.delta for r in log).messages
    where = {message.id: index for index, message in enumerate(current)}
    amendments: list[Delta] = []
    for message in parsed:
        index = where.get(message.id)
        if index is None or current[index] == message:
            continue
        previous = current[index]
        if message.usage is None and previous.usage is not None:
            message = message.model_copy(update={"usage": previous.usage})  # never taken away
            if message == previous:
                continue
        amendments.append(
            MessageAmendDelta(index=index, message=message, previous_usage=previous.usage)
        )
    return amendments


async def _plan_links(
    store: ThreadStore,
    target: str,
    children: list[str],
    summaries: list[str],
    plans: dict[str, tuple[int, list[Delta]]],
    report: ImportReport,
) -> None:
    """Add the link deltas ``target`` lacks to its plan. The one place importers
    link threads; a target that is neither in the store nor in the batch (its
    session file was not imported) is reported in ``report.unlinked``, and the
    linked thread keeps its ``parent_thread_id`` to be linked when it comes."""
    if not children and not summaries:
        return
    if target in plans:
        version, deltas = plans[target]
        linked: set[str] = set()
        if version:
            head = await store.recorder.head(target)
            assert head is not None
            linked = {*head.child_thread_ids, *head.summary_thread_ids}
    else:
        head = await store.recorder.head(target)
        if head is None:
            report.unlinked.extend(children + summaries)
            return
        version, deltas = head.v, []
        linked = {*head.child_thread_ids, *head.summary_thread_ids}
        plans[target] = (version, deltas)
    for child in dict.fromkeys(children):
        if child not in linked:
            deltas.append(ChildLinkDelta(thread_id=child))
    for summary in dict.fromkeys(summaries):
        if summary not in linked:
            deltas.append(SummaryLinkDelta(thread_id=summary))
