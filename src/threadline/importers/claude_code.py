"""Claude Code sessions (``~/.claude/projects``) → threads.

One thread per session (its id is the ``sessionId``); a message per
``user`` line and per assistant API response. Claude Code writes one line per
content block of a response, each repeating ``message.usage`` (early lines
with partial ``output_tokens``), so the lines of one response — same
``message.id`` and ``requestId`` — become one message with the usage of the
*last* line. Message ids are the line ``uuid`` (a response's first line's),
so a re-import, a grown session or a resume that replays earlier lines adds
nothing twice: within one run a ``uuid`` belongs to the earliest session that
has it, and a thread gets only ids its log lacks.

Sub-agents: ``isSidechain`` lines in the session file (one thread per
``agentId``, or per sidechain root in older files) and
``<session>/subagents/agent-*.jsonl`` (or ``agent-*.jsonl`` beside the
session, the older layout) become child threads ``<session>:agent-<id>`` /
``<session>:sidechain-<uuid>``, linked to the ``Task`` tool call that spawned
them (from ``agent-*.meta.json``, the result's ``toolUseResult.agentId``,
``agent_progress`` lines, or the prompt). Compactions (a ``compact_boundary``
with its ``isCompactSummary`` message, and the ``agent-acompact-*`` summariser
run) become summary threads ``<session>:compact-<uuid>``.

Nothing is lost: ``cwd``, git branch and version go to ``env``; the other
session-wide fields to the thread's ``metadata["claude_code"]``; every field
of a line that the model has no place for (``parentUuid``,
``toolUseResult``, thinking blocks, raw usage, ...) to the message's
``metadata``. Record types without a mapping (``progress``,
``queue-operation``, ``file-history-snapshot``, most ``system`` lines, ...)
are skipped and counted by type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import JsonValue

from threadline.importers.claude_code_compaction import (
    compaction_in_progress,
    compaction_threads,
)
from threadline.importers.claude_code_spawners import Spawners
from threadline.importers.core import (
    ImportReport,
    ParsedThread,
    build_message,
    clip_title,
    iso_ms,
    read_jsonl,
    save_threads,
)
from threadline.importers.progress import ImportProgress
from threadline.model import Message
from threadline.store import ThreadStore

AGENT = "claude-code"
_MESSAGE_TYPES = frozenset({"user", "assistant"})
_TITLE_TYPES = {"custom-title": "customTitle", "ai-title": "aiTitle", "summary": "summary"}
# Line fields that the message itself carries.
_MAPPED = frozenset({"type", "uuid", "timestamp", "message"})
# Fields that are the same on every line of a thread: kept once, on the thread.
_THREAD_WIDE = ("sessionId", "cwd", "version", "gitBranch", "userType", "slug", "entrypoint")
_TAG = re.compile(r"</?[a-zA-Z][\w-]*>")


def default_paths() -> list[Path]:
    return [Path.home() / ".claude" / "projects"]


@dataclass
class _Line:
    path: Path
    number: int
    record: dict[str, JsonValue]

    @property
    def uuid(self) -> str | None:
        value = self.record.get("uuid")
        return value if isinstance(value, str) else None

    @property
    def parent(self) -> str | None:
        value = self.record.get("parentUuid")
        return value if isinstance(value, str) else None


@dataclass
class _Session:
    """The files of one session: its transcript(s) and its agents' files."""

    id: str
    first: int | None = None
    last: int | None = None
    trunks: list[Path] = field(default_factory=list)
    agents: list[Path] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [*self.trunks, *self.agents]


async def import_claude_code(
    store: ThreadStore,
    paths: Sequence[Path] | None = None,
    *,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import Claude Code sessions from ``paths`` (files or folders, searched
    recursively; default ``~/.claude/projects``) into ``store``."""
    report = ImportReport()
    sessions = discover(paths if paths else default_paths(), report)
    if progress is not None:
        progress.start(sum(len(s.files) for s in sessions))
    claimed: dict[str, str] = {}
    for session in sessions:
        threads = parse_session(session, report, claimed, progress)
        report.sessions += bool(threads)
        await save_threads(store, threads, report)
    return report


# -- finding the files -------------------------------------------------------------


def discover(paths: Iterable[Path], report: ImportReport) -> list[_Session]:
    """Group the JSONL files under ``paths`` by session, oldest session first."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    sessions: dict[str, _Session] = {}
    for file in dict.fromkeys(files):
        is_agent = file.name.startswith("agent-")
        if not is_agent and "subagents" in file.parts:
            report.skip("file:" + file.name)  # e.g. a workflow journal
            continue
        session_id, first = _peek(file)
        if is_agent and "subagents" in file.parts:
            # <session>/subagents/[workflows/<run>/]agent-*.jsonl
            depth = file.parts[::-1].index("subagents")
            session_id = file.parents[depth].name
        if session_id is None:
            session_id = file.stem
        session = sessions.setdefault(session_id, _Session(session_id))
        if is_agent:
            session.agents.append(file)
            continue
        session.trunks.append(file)
        if first is not None and (session.first is None or first < session.first):
            session.first = first
            session.last = _last_timestamp(file)
    # Oldest first, so that a uuid belongs to the earliest session having it; a
    # resumed session replays the prefix with its timestamps, and ends later.
    return sorted(
        sessions.values(),
        key=lambda s: (s.first is None, s.first or 0, s.last or 0, s.id),
    )


def _last_timestamp(path: Path, tail: int = 65_536) -> int | None:
    """The timestamp of the last timestamped line among the last ``tail`` bytes."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - tail))
        lines = handle.read().splitlines()
    for raw in reversed(lines):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        found = iso_ms(record.get("timestamp")) if isinstance(record, dict) else None
        if found is not None:
            return found
    return None


def _peek(path: Path, lines: int = 50) -> tuple[str | None, int | None]:
    """The session id and first timestamp named in the first lines of a file."""
    session_id: str | None = None
    first: int | None = None
    with path.open("rb") as handle:
        for _, raw in zip(range(lines), handle, strict=False):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            if session_id is None and isinstance(record.get("sessionId"), str):
                session_id = record["sessionId"]
            if first is None:
                first = iso_ms(record.get("timestamp"))
            if session_id is not None and first is not None:
                break
    return session_id, first


# -- parsing one session ---------------------------------------------------------------


def parse_session(
    session: _Session,
    report: ImportReport,
    claimed: dict[str, str],
    progress: ImportProgress | None = None,
) -> list[ParsedThread]:
    """The session's thread, then its sub-agent and summary threads.

    ``claimed`` maps every line uuid seen in this run to the thread that took
    it: a later session replaying it (a resume) skips it.
    """
    trunk: list[_Line] = []
    sidechains: dict[str, list[_Line]] = {}
    titles: dict[str, str] = {}
    spawners = Spawners()
    reported: dict[str, dict[str, _Line]] = {}  # agent id → its lines seen in progress records
    for path in session.trunks:
        for line in _lines(path, report):
            kind = line.record.get("type")
            if kind in _MESSAGE_TYPES or _is_compaction(line.record):
                if line.record.get("isSidechain") is True:
                    sidechains.setdefault(_sidechain_key(line), []).append(line)
                else:
                    trunk.append(line)
            elif isinstance(kind, str) and kind in _TITLE_TYPES:
                value = line.record.get(_TITLE_TYPES[kind])
                if isinstance(value, str) and value.strip():
                    titles[kind] = value
            else:
                spawners.note_progress(line.record)
                if not _note_agent_progress(line, reported):
                    report.skip(_record_kind(line.record))
        if progress is not None:
            progress.advance(path)
    main = _thread(session.id, "session", trunk, report, claimed)
    if main is None:
        main = ParsedThread(session.id, "session", session.first or 0, str(session.trunks))
    title = next((titles[k] for k in _TITLE_TYPES if k in titles), None)
    main.title = title or _first_prompt(main.messages)
    spawners.note_session(main.messages)
    children = _sidechain_threads(main, sidechains, spawners, report, claimed)
    agents = _agent_threads(main, session.agents, spawners, report, claimed, progress)
    agents += _progress_threads(main, reported, session, sidechains, spawners, report, claimed)
    summaries = compaction_threads(main, agents)
    if session.trunks:
        # A summariser run that no boundary claims, with nothing in the session
        # after it, is a compaction in progress: its boundary comes next and
        # takes the run. Stored now, the run would stay a summary thread of its
        # own beside the boundary's (live capture sees the run's file first).
        held = [a for a in agents if compaction_in_progress(a, main)]
        agents = [a for a in agents if a not in held]
        if held:
            report.skip("compaction in progress", len(held))
    if not session.trunks:  # only agent files: their session is imported elsewhere
        return [*children, *agents, *summaries]
    if not main.messages and not children and not agents:
        return []
    return [main, *children, *agents, *summaries]


def _note_agent_progress(line: _Line, reported: dict[str, dict[str, _Line]]) -> bool:
    """Keep the sub-agent line an ``agent_progress`` record carries (``data.message``,
    with the session's fields and the agent's id); whether it carried one."""
    data = line.record.get("data")
    if not isinstance(data, dict) or data.get("type") != "agent_progress":
        return False
    agent, inner = data.get("agentId"), data.get("message")
    if not isinstance(agent, str) or not isinstance(inner, dict):
        return False
    if inner.get("type") not in _MESSAGE_TYPES or not isinstance(inner.get("uuid"), str):
        return False
    wide = {key: line.record[key] for key in _THREAD_WIDE if key in line.record}
    record: dict[str, JsonValue] = {**wide, "isSidechain": True, "agentId": agent, **inner}
    reported.setdefault(agent, {}).setdefault(
        str(inner["uuid"]), _Line(line.path, line.number, record)
    )
    return True


def _progress_threads(
    main: ParsedThread,
    reported: dict[str, dict[str, _Line]],
    session: _Session,
    sidechains: dict[str, list[_Line]],
    spawners: Spawners,
    report: ImportReport,
    claimed: dict[str, str],
) -> list[ParsedThread]:
    """Sub-agents known only from the ``agent_progress`` records of the session
    (no agent file, no sidechain lines): a child thread each, with the lines
    the records carry, under the id an agent file would give it."""
    known = {path.stem.removeprefix("agent-") for path in session.agents}
    known |= {key.removeprefix("agent-") for key in sidechains if key.startswith("agent-")}
    threads: list[ParsedThread] = []
    for agent, lines in reported.items():
        if agent in known:
            continue
        ordered = sorted(lines.values(), key=lambda line: line.number)
        thread_id = f"{main.id}:agent-{agent}"
        child = _child(main, thread_id, ordered, agent, None, spawners, report, claimed)
        if child is not None:
            child.metadata["from_progress_records"] = True
            threads.append(child)
    return threads


def _lines(path: Path, report: ImportReport) -> Iterable[_Line]:
    report.files += 1
    for number, record in read_jsonl(path, report):
        yield _Line(path, number, record)


def _is_compaction(record: dict[str, JsonValue]) -> bool:
    return record.get("type") == "system" and record.get("subtype") == "compact_boundary"


def _record_kind(record: dict[str, JsonValue]) -> str:
    kind = record.get("type")
    if not isinstance(kind, str):
        return "(no type)"
    subtype = record.get("subtype")
    return f"{kind}:{subtype}" if kind == "system" and isinstance(subtype, str) else kind


def _sidechain_key(line: _Line) -> str:
    agent = line.record.get("agentId")
    return f"agent-{agent}" if isinstance(agent, str) else ""


def _thread(
    thread_id: str,
    kind: str,
    lines: list[_Line],
    report: ImportReport,
    claimed: dict[str, str],
) -> ParsedThread | None:
    """A thread of ``lines`` (one session or one agent), minus replayed lines."""
    fresh: list[_Line] = []
    for line in lines:
        uuid = line.uuid
        if uuid is not None:
            owner = claimed.setdefault(uuid, thread_id)
            if owner != thread_id:
                report.replayed += 1
                continue
        fresh.append(line)
    if not fresh:
        return None
    first = fresh[0].record
    wide = {key: first[key] for key in _THREAD_WIDE if key in first}
    for key in ("isSidechain", "agentId"):
        if key in first:
            wide[key] = first[key]
    env: dict[str, JsonValue] = {"agent": AGENT}
    for key, name in (("cwd", "cwd"), ("gitBranch", "git_branch"), ("version", "agent_version")):
        value = first.get(key)
        if isinstance(value, str) and value:
            env[name] = value
    created = iso_ms(first.get("timestamp")) or 0
    parsed = ParsedThread(
        id=thread_id,
        kind="subagent" if kind == "subagent" else "session",
        created=created,
        source=str(fresh[0].path),
        env=env,
        metadata={"imported_from": str(fresh[0].path), "claude_code": wide},
    )
    parsed.messages = _messages(fresh, wide, created, report)
    return parsed


# -- lines to messages -----------------------------------------------------------------


def _messages(
    lines: list[_Line], wide: dict[str, JsonValue], created: int, report: ImportReport
) -> list[Message]:
    """Messages in file order; the lines of one API response make one message."""
    order: list[_Line | list[_Line]] = []
    responses: dict[tuple[str, str | None], list[_Line]] = {}
    seen: set[str] = set()
    for line in lines:
        uuid = line.uuid
        if uuid is not None:
            if uuid in seen:  # the same line written twice
                report.replayed += 1
                continue
            seen.add(uuid)
        message = line.record.get("message")
        if line.record.get("type") == "assistant" and isinstance(message, dict):
            response_id = message.get("id")
            request_id = line.record.get("requestId")
            if isinstance(response_id, str) and response_id:
                key = (response_id, request_id if isinstance(request_id, str) else None)
                group = responses.get(key)
                if group is not None:
                    group.append(line)
                    continue
                group = responses[key] = [line]
                order.append(group)
                continue
        order.append(line)
    messages: list[Message] = []
    last_time = created
    for item in order:
        built = (
            _response(item, wide, last_time, report)
            if isinstance(item, list)
            else _single(item, wide, last_time, report)
        )
        if built is not None:
            messages.append(built)
            last_time = built.timestamp
    return messages


def _extras(record: dict[str, JsonValue], wide: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The fields of a line that neither the message nor the thread keeps."""
    return {
        key: value
        for key, value in record.items()
        if key not in _MAPPED and not (key in wide and wide[key] == value)
    }


def _text_and_rest(
    content: JsonValue,
) -> tuple[list[str], list[dict[str, JsonValue]], list[dict[str, JsonValue]]]:
    """Text blocks, tool_use/tool_result blocks, and every other block."""
    if isinstance(content, str):
        return [content], [], []
    texts: list[str] = []
    tools: list[dict[str, JsonValue]] = []
    other: list[dict[str, JsonValue]] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            other.append({"value": block})
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            text = block["text"]
            assert isinstance(text, str)
            if text.strip():
                texts.append(text)
        elif block.get("type") in ("tool_use", "tool_result"):
            tools.append(block)
        else:
            other.append(block)
    return texts, tools, other


def _tool_output(content: JsonValue) -> JsonValue:
    """A tool result's content: text as one string, anything richer as it is."""
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in content
    ):
        return "\n".join(str(b["text"]) for b in content if isinstance(b, dict))
    return content if content is not None else ""


def _single(
    line: _Line, wide: dict[str, JsonValue], fallback: int, report: ImportReport
) -> Message | None:
    """A user line (prompt or tool results), a lone assistant line, or a compaction."""
    record = line.record
    metadata = _extras(record, wide)
    timestamp = iso_ms(record.get("timestamp")) or fallback
    if _is_compaction(record):
        content = record.get("content")
        return build_message(
            report,
            line.path,
            line.number,
            {
                "id": line.uuid,
                "role": "system",
                "content": content if isinstance(content, str) else "Conversation compacted",
                "timestamp": timestamp,
                "metadata": metadata,
            },
        )
    if record.get("type") == "assistant":
        return _response([line], wide, fallback, report)
    message = record.get("message")
    if not isinstance(message, dict):
        report.bad_line(line.path, line.number, "a user line without a message object")
        return None
    texts, tools, other = _text_and_rest(message.get("content"))
    results = [
        {
            "tool_call_id": block.get("tool_use_id"),
            "output": _tool_output(block.get("content")),
            "is_error": block.get("is_error") is True,
        }
        for block in tools
        if block.get("type") == "tool_result"
    ]
    extra_message = {k: v for k, v in message.items() if k not in ("role", "content")}
    if extra_message:
        metadata["message"] = extra_message
    if other:
        metadata["blocks"] = list(other)
    return build_message(
        report,
        line.path,
        line.number,
        {
            "id": line.uuid,
            "role": "user",
            "content": "\n\n".join(texts),
            "timestamp": timestamp,
            "tool_results": results,
            "metadata": metadata,
        },
    )


def _response(
    lines: list[_Line], wide: dict[str, JsonValue], fallback: int, report: ImportReport
) -> Message | None:
    """The lines of one assistant API response as one message; usage from the last."""
    shaped = [line for line in lines if isinstance(line.record.get("message"), dict)]
    for line in lines:
        if line not in shaped:
            report.bad_line(line.path, line.number, "an assistant line without a message object")
    if not shaped:
        return None  # reported; nothing to store (issue 13)
    lines = shaped
    first, last = lines[0], lines[-1]
    texts: list[str] = []
    calls: dict[str, dict[str, JsonValue]] = {}
    thinking: list[JsonValue] = []
    other: list[JsonValue] = []
    for line in lines:
        message = line.record.get("message")
        assert isinstance(message, dict)
        line_texts, tools, rest = _text_and_rest(message.get("content"))
        texts.extend(line_texts)
        for block in tools:
            if block.get("type") == "tool_use":
                tool_input = block.get("input")
                call_id = str(block.get("id"))
                calls.pop(call_id, None)  # a repeated block: keep the last, in its place
                calls[call_id] = {
                    "id": call_id,
                    "name": block.get("name"),
                    "input": tool_input if isinstance(tool_input, dict) else {"value": tool_input},
                }
        for block in rest:
            (thinking if block.get("type") in ("thinking", "redacted_thinking") else other).append(
                block
            )
    final = last.record.get("message")
    final = final if isinstance(final, dict) else {}
    metadata = _extras(first.record, wide)
    extra_message = {k: v for k, v in final.items() if k not in ("role", "content", "usage")}
    if extra_message:
        metadata["message"] = extra_message
    raw_usage = final.get("usage")
    if isinstance(raw_usage, dict):
        metadata["usage"] = raw_usage
    if thinking:
        metadata["thinking"] = thinking
    if other:
        metadata["blocks"] = other
    if len(lines) > 1:
        metadata["line_uuids"] = [line.uuid for line in lines]
    model = final.get("model")
    return build_message(
        report,
        first.path,
        first.number,
        {
            "id": first.uuid or f"{final.get('id')}:{last.record.get('requestId')}",
            "role": "assistant",
            "content": "\n\n".join(texts),
            "timestamp": iso_ms(first.record.get("timestamp")) or fallback,
            "tool_calls": list(calls.values()),
            "usage": _usage(raw_usage, model, last.record.get("costUSD")),
            "metadata": metadata,
        },
    )


def cache_write_1h_tokens(raw: dict[str, JsonValue]) -> int:
    """The cache writes of ``usage.cache_creation.ephemeral_1h_input_tokens``
    (at most all of ``cache_creation_input_tokens``)."""
    split = raw.get("cache_creation")
    value = split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None
    total = raw.get("cache_creation_input_tokens")
    if not isinstance(value, int) or value <= 0 or not isinstance(total, int):
        return 0
    return min(value, total)


def _usage(raw: JsonValue, model: JsonValue, cost: JsonValue) -> dict[str, JsonValue] | None:
    if not isinstance(raw, dict):
        return None

    def count(name: str) -> int:
        value = raw.get(name)
        return value if isinstance(value, int) and value > 0 else 0

    usage: dict[str, JsonValue] = {
        "model": model if isinstance(model, str) else None,
        "input_tokens": count("input_tokens"),
        "output_tokens": count("output_tokens"),
        "cache_read_tokens": count("cache_read_input_tokens"),
        "cache_write_tokens": count("cache_creation_input_tokens"),
    }
    # Writes to the 1-hour cache cost more than those to the 5-minute one.
    one_hour = cache_write_1h_tokens(raw)
    if one_hour:
        usage["cache_write_1h_tokens"] = one_hour
    if isinstance(cost, int | float) and cost >= 0:
        usage["cost_usd"] = float(cost)
    return usage


def _first_prompt(messages: Sequence[Message]) -> str | None:
    """A title from the first prompt a person typed; else from the first command
    (``<command-name>`` and such tags dropped)."""
    prompts = [m for m in messages if m.role == "user" and m.content and not m.tool_results]
    for message in prompts:
        text = message.content.lstrip()
        if not message.metadata.get("isMeta") and not text.startswith(("<", "[Request ")):
            return clip_title(text)
    for message in prompts:
        title = clip_title(_TAG.sub(" ", message.content))
        if title:
            return title
    return None


# -- sub-agents --------------------------------------------------------------------------


def _sidechain_threads(
    main: ParsedThread,
    sidechains: dict[str, list[_Line]],
    spawners: Spawners,
    report: ImportReport,
    claimed: dict[str, str],
) -> list[ParsedThread]:
    """Threads of the sidechain lines inside the session file: one per
    ``agentId``; in older files (no agentId), one per sidechain root."""
    groups: dict[str, list[_Line]] = {}
    for key, lines in sidechains.items():
        if key:
            groups[key] = lines
            continue
        parents = {line.uuid: line.parent for line in lines if line.uuid is not None}
        roots: dict[str, str] = {}
        for line in lines:  # in file order, so a line's parent usually has its root
            uuid = line.uuid or ""
            parent = parents.get(uuid)
            root = roots.get(parent, parent) if parent in parents else uuid
            roots[uuid] = root or uuid
            groups.setdefault(f"sidechain-{roots[uuid]}", []).append(line)
    threads: list[ParsedThread] = []
    for key, lines in groups.items():
        agent = key.removeprefix("agent-") if key.startswith("agent-") else None
        child = _child(main, f"{main.id}:{key}", lines, agent, None, spawners, report, claimed)
        if child is not None:
            threads.append(child)
    return threads


def _agent_threads(
    main: ParsedThread,
    files: list[Path],
    spawners: Spawners,
    report: ImportReport,
    claimed: dict[str, str],
    progress: ImportProgress | None,
) -> list[ParsedThread]:
    """Threads of ``agent-*.jsonl`` files: sub-agents, or summary threads for the
    compaction summariser (``agent-acompact-*``)."""
    threads: list[ParsedThread] = []
    for path in files:
        lines: list[_Line] = []
        for line in _lines(path, report):
            if line.record.get("type") in _MESSAGE_TYPES:
                lines.append(line)
            else:
                report.skip(_record_kind(line.record))
        if progress is not None:
            progress.advance(path)
        agent = path.stem.removeprefix("agent-")
        meta = _meta(path)
        child = _child(
            main, f"{main.id}:{path.stem}", lines, agent, meta, spawners, report, claimed
        )
        if child is None:
            continue
        if agent.startswith("acompact"):
            child.kind = "summary"
            child.parent_id = None
            child.origin_id = main.id
            child.title = f"Summary: {main.title or 'Conversation'}"
        threads.append(child)
    return threads


def _meta(path: Path) -> dict[str, JsonValue]:
    """``agent-<id>.meta.json`` beside an agent file: agentType, description, toolUseId."""
    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        value = orjson.loads(meta_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _child(
    main: ParsedThread,
    thread_id: str,
    lines: list[_Line],
    agent: str | None,
    meta: dict[str, JsonValue] | None,
    spawners: Spawners,
    report: ImportReport,
    claimed: dict[str, str],
) -> ParsedThread | None:
    child = _thread(thread_id, "subagent", lines, report, claimed)
    if child is None:
        return None
    child.parent_id = main.id
    prompt = next((m.content for m in child.messages if m.role == "user" and m.content), None)
    meta_call = meta.get("toolUseId") if meta else None
    child.spawned_by = spawners.find(
        agent, prompt, meta_call if isinstance(meta_call, str) else None
    )
    description = meta.get("description") if meta else None
    child.title = (
        f"Task: {description}"
        if isinstance(description, str) and description
        else spawners.describe(child.spawned_by, main.messages) or clip_title(prompt or "")
    )
    if child.spawned_by is not None:
        child.metadata["spawned_by_tool_call"] = child.spawned_by
    if meta:
        child.metadata["agent_meta"] = meta
    return child
