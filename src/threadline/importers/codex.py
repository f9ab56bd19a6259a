"""Codex rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``) → threads.

A rollout is ``{timestamp, type, payload}`` lines. One thread per rollout, its
id the ``session_meta`` id; ``session_meta`` gives ``env`` (cwd, git branch,
commit and remote, CLI version) and the rest of it goes to ``metadata``.
``response_item`` lines become messages: a user message, a developer or
system message (role ``system``), and each run of model output items
(reasoning, assistant text, ``function_call``, ``custom_tool_call``, shell
and web-search calls) one assistant message whose tool calls join their
``*_output`` results by ``call_id``. The ``event_msg`` copies of messages
(``user_message``, ``agent_message``) are the UI's view of the same turns and
are skipped, like other events, and counted.

Usage: ``token_count`` events carry *cumulative* totals (and are often
written twice), so each assistant message gets the difference from the
previous total, not a sum. ``input_tokens`` are the uncached ones, the cached
part is ``cache_read_tokens`` (OpenAI counts it inside the input).

Rollouts have no item ids, so a message's id is a hash of its first line
(timestamp and payload): stable across re-imports, and a fork, which
re-emits its parent's lines unchanged, dedupes them against the parent when
both are imported. Sub-agent rollouts (``source.subagent.thread_spawn``)
become child threads of their parent; ``compacted`` records summary threads
``<thread>:compact-<id>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import JsonValue

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

AGENT = "codex"
_OUTPUT_ITEMS = frozenset(
    {
        "reasoning",
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "web_search_call",
        "tool_search_call",
        "image_generation_call",
    }
)
_RESULT_ITEMS = frozenset(
    {"function_call_output", "custom_tool_call_output", "tool_search_output", "local_shell_output"}
)
_TOKEN_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTEXT_PREFIXES = ("<", "# AGENTS.md")


def default_paths() -> list[Path]:
    return [Path.home() / ".codex" / "sessions"]


async def import_codex(
    store: ThreadStore,
    paths: Sequence[Path] | None = None,
    *,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import Codex rollouts from ``paths`` (files or folders, searched
    recursively; default ``~/.codex/sessions``) into ``store``."""
    report = ImportReport()
    files = discover(paths if paths else default_paths())
    if progress is not None:
        progress.start(len(files))
    run = _Run()
    for path in files:
        threads = parse_rollout(path, report, run)
        if progress is not None:
            progress.advance(path)
        report.sessions += bool(threads)
        await save_threads(store, threads, report)
    return report


def discover(paths: Iterable[Path]) -> list[Path]:
    """The rollouts under ``paths``, oldest session first (parents before the
    sub-agents and forks they started)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    return sorted(dict.fromkeys(files), key=lambda f: (_started(f), str(f)))


def _started(path: Path) -> int:
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                return iso_ms(record.get("timestamp")) or 0
    return 0


@dataclass
class _Run:
    """What one import run remembers across rollouts."""

    claimed: dict[str, str] = field(default_factory=dict)
    spawned: dict[str, str] = field(default_factory=dict)  # child thread id → call id


@dataclass
class _Draft:
    """A message being assembled from one or more rollout items."""

    id: str
    role: str
    timestamp: int
    path: Path
    line: int
    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, JsonValue]] = field(default_factory=list)
    results: list[dict[str, JsonValue]] = field(default_factory=list)
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    items: list[JsonValue] = field(default_factory=list)
    tokens: list[int] | None = None
    model: str | None = None

    def add_tokens(self, delta: list[int], model: str | None) -> None:
        self.tokens = delta if self.tokens is None else _plus(self.tokens, delta)
        self.model = self.model or model


def _item_id(record: dict[str, JsonValue]) -> str:
    stamp = str(record.get("timestamp", ""))
    payload = orjson.dumps(record.get("payload"), option=orjson.OPT_SORT_KEYS)
    return "cx-" + hashlib.sha256(stamp.encode() + b"\n" + payload).hexdigest()[:32]


def parse_rollout(path: Path, report: ImportReport, run: _Run) -> list[ParsedThread]:
    """The rollout's thread and its summary threads (empty if it has no messages)."""
    parser = _Rollout(path, report, run)
    report.files += 1
    for number, record in read_jsonl(path, report):
        parser.line(number, record)
    return parser.finish()


class _Rollout:
    def __init__(self, path: Path, report: ImportReport, run: _Run) -> None:
        self.path = path
        self.report = report
        self.run = run
        self.meta: dict[str, JsonValue] | None = None
        self.thread_id = path.stem
        self.title: str | None = None
        self.drafts: list[_Draft] = []
        self.open_output: _Draft | None = None  # the model's current run of output items
        self.last_output: _Draft | None = None
        self.last_output_replayed = False
        self.pending_tokens: list[int] | None = None
        self.totals = [0, 0, 0, 0]
        self.model: str | None = None
        self.context: dict[str, JsonValue] | None = None
        self.context_changed = False
        self.summaries: list[ParsedThread] = []
        self.spawn_calls: set[str] = set()
        self.first_timestamp: int | None = None
        self.seen: set[str] = set()

    # -- dispatch ----------------------------------------------------------------

    def line(self, number: int, record: dict[str, JsonValue]) -> None:
        kind = record.get("type")
        payload = record.get("payload")
        if "payload" not in record and isinstance(kind, str):
            # Legacy rollouts: bare items after a bare meta line.
            if number == 1 and "id" in record:
                self.session_meta(record)
                return
            payload, kind = record, "response_item"
        if self.first_timestamp is None:
            self.first_timestamp = iso_ms(record.get("timestamp"))
        if not isinstance(payload, dict):
            if kind == "response_item" and record.get("record_type") == "state":
                self.report.skip("state")
                return
            self.report.bad_line(self.path, number, f"a {kind} line without a payload object")
            return
        if kind == "session_meta":
            if self.meta is None:
                self.session_meta(payload)
            else:
                self.report.skip("session_meta (repeated)")
        elif kind == "response_item":
            self.response_item(number, record, payload)
        elif kind == "event_msg":
            self.event(payload)
        elif kind == "turn_context":
            self.turn_context(payload)
        elif kind == "compacted":
            self.compacted(number, record, payload)
        else:
            self.report.skip(kind if isinstance(kind, str) else "(no type)")

    def session_meta(self, payload: dict[str, JsonValue]) -> None:
        self.meta = payload
        if isinstance(payload.get("id"), str):
            self.thread_id = str(payload["id"])

    def turn_context(self, payload: dict[str, JsonValue]) -> None:
        model = payload.get("model")
        if isinstance(model, str):
            self.model = model
        steady = {k: v for k, v in payload.items() if k != "turn_id"}
        if self.context is None or steady != {
            k: v for k, v in self.context.items() if k != "turn_id"
        }:
            self.context_changed = True
        self.context = payload

    def event(self, payload: dict[str, JsonValue]) -> None:
        kind = payload.get("type")
        if kind == "token_count":
            self.token_count(payload)
        elif kind == "thread_name_updated":
            name = payload.get("thread_name", payload.get("name"))
            if isinstance(name, str) and name.strip():
                self.title = name
        else:
            self.report.skip(f"event_msg:{kind}")

    # -- items ------------------------------------------------------------------

    def _claim(self, item_id: str) -> bool:
        """Whether this item is new to the run (a fork's replayed prefix is not)."""
        owner = self.run.claimed.setdefault(item_id, self.thread_id)
        if owner != self.thread_id or item_id in self.seen:
            self.report.replayed += 1
            return False
        self.seen.add(item_id)
        return True

    def _draft(self, number: int, record: dict[str, JsonValue], item_id: str, role: str) -> _Draft:
        timestamp = iso_ms(record.get("timestamp")) or self.first_timestamp or 0
        draft = _Draft(item_id, role, timestamp, self.path, number)
        if self.context_changed and self.context is not None:
            draft.metadata["turn_context"] = self.context
            self.context_changed = False
        self.drafts.append(draft)
        return draft

    def response_item(
        self, number: int, record: dict[str, JsonValue], payload: dict[str, JsonValue]
    ) -> None:
        kind = payload.get("type")
        item_id = _item_id(record)
        is_output = kind in _OUTPUT_ITEMS or (
            kind == "message" and payload.get("role") == "assistant"
        )
        if kind not in _OUTPUT_ITEMS and kind not in _RESULT_ITEMS and kind != "message":
            self.report.skip(f"response_item:{kind}")
            return
        if not self._claim(item_id):
            if is_output:
                self.last_output_replayed = True
                self.open_output = None
            return
        if is_output:
            draft = self.open_output
            if draft is None:
                draft = self.open_output = self._draft(number, record, item_id, "assistant")
                if self.pending_tokens is not None:
                    draft.add_tokens(self.pending_tokens, self.model)
                    self.pending_tokens = None
            else:
                draft.metadata.setdefault("item_ids", [draft.id])
                item_ids = draft.metadata["item_ids"]
                assert isinstance(item_ids, list)
                item_ids.append(item_id)
            self.last_output = draft
            self.last_output_replayed = False
            self.output_item(draft, payload, item_id)
            return
        self.open_output = None
        if kind == "message":
            role = payload.get("role")
            draft = self._draft(number, record, item_id, "user" if role == "user" else "system")
            if role != "user":
                draft.metadata["role"] = role
            texts, other = _texts(payload.get("content"))
            draft.texts.extend(texts)
            if other:
                draft.metadata["blocks"] = other
            extra = _rest(payload, "type", "role", "content")
            if extra:
                draft.metadata["item"] = extra
            return
        draft = self._draft(number, record, item_id, "user")
        output = payload.get("output")
        call_id = payload.get("call_id")
        draft.results.append(
            {
                "tool_call_id": call_id,
                "output": output if output is not None else "",
                "is_error": isinstance(output, dict) and output.get("success") is False,
            }
        )
        extra = _rest(payload, "call_id", "output")
        if extra != {"type": "function_call_output"}:
            draft.metadata["item"] = extra
        if isinstance(call_id, str) and call_id in self.spawn_calls:
            for child in _UUID.findall(orjson.dumps(output).decode()):
                self.run.spawned.setdefault(child, call_id)

    def output_item(self, draft: _Draft, payload: dict[str, JsonValue], item_id: str) -> None:
        kind = payload.get("type")
        if kind == "message":
            texts, other = _texts(payload.get("content"))
            draft.texts.extend(texts)
            extra = _rest(payload, "role", "content")
            if other:
                extra["content"] = other
            draft.items.append(extra)
            return
        if kind == "reasoning":
            draft.items.append(payload)
            return
        # An item without a call id (web_search_call) is named by its own line,
        # so that two in one turn keep two ids (issue 13).
        call_id = payload.get("call_id") or payload.get("id") or item_id
        name, tool_input, kept = _call(payload)
        draft.calls.append({"id": call_id, "name": name, "input": tool_input})
        draft.items.append(kept)
        if "spawn" in name or name in ("create_agent", "new_agent"):
            self.spawn_calls.add(str(call_id))

    def compacted(
        self, number: int, record: dict[str, JsonValue], payload: dict[str, JsonValue]
    ) -> None:
        item_id = _item_id(record)
        if not self._claim(item_id):
            return
        self.open_output = None
        marker = self._draft(number, record, item_id, "system")
        marker.texts.append("Conversation compacted")
        summary_id = f"{self.thread_id}:compact-{item_id}"
        marker.metadata["summary_thread_id"] = summary_id
        text = payload.get("message")
        summary = build_message(
            self.report,
            self.path,
            number,
            {
                "id": f"{item_id}:summary",
                "role": "assistant",
                "content": text if isinstance(text, str) else "",
                "timestamp": marker.timestamp,
                "metadata": _rest(payload, "message"),
            },
        )
        if summary is not None:
            self.summaries.append(
                ParsedThread(
                    id=summary_id,
                    kind="summary",
                    created=marker.timestamp,
                    source=str(self.path),
                    messages=[summary],
                    origin_id=self.thread_id,
                    metadata={"imported_from": str(self.path)},
                )
            )

    # -- usage -------------------------------------------------------------------

    def token_count(self, payload: dict[str, JsonValue]) -> None:
        info = payload.get("info")
        total = info.get("total_token_usage") if isinstance(info, dict) else None
        if not isinstance(total, dict):
            self.report.skip("event_msg:token_count (rate limits only)")
            return
        now = [_count(total.get(name)) for name in _TOKEN_FIELDS]
        if now == self.totals:
            self.report.skip("event_msg:token_count (repeated)")
            return
        if any(a < b for a, b in zip(now, self.totals, strict=True)):
            delta = now  # the totals restarted (a new cumulative base)
        else:
            delta = [a - b for a, b in zip(now, self.totals, strict=True)]
        self.totals = now
        if self.last_output_replayed:
            return  # usage of a replayed (forked) prefix: its own thread has it
        if self.last_output is not None:
            self.last_output.add_tokens(delta, self.model)
        elif self.pending_tokens is None:
            self.pending_tokens = delta
        else:
            self.pending_tokens = _plus(self.pending_tokens, delta)

    # -- the result ----------------------------------------------------------------

    def finish(self) -> list[ParsedThread]:
        messages = [m for m in (self._message(d) for d in self.drafts) if m is not None]
        if not messages:
            return []
        meta = self.meta or {}
        created = iso_ms(meta.get("timestamp")) or self.first_timestamp or messages[0].timestamp
        thread = ParsedThread(
            id=self.thread_id,
            kind="session",
            created=created,
            source=str(self.path),
            title=self.title or _first_prompt(messages),
            env=_env(meta),
            metadata={"imported_from": str(self.path), "codex": _rest(meta, "id", "cwd")},
            messages=messages,
        )
        source = meta.get("source")
        spawn = source.get("subagent") if isinstance(source, dict) else None
        spawn = spawn.get("thread_spawn") if isinstance(spawn, dict) else None
        parent = spawn.get("parent_thread_id") if isinstance(spawn, dict) else None
        if isinstance(parent, str):
            thread.kind = "subagent"
            thread.parent_id = parent
            thread.spawned_by = self.run.spawned.get(self.thread_id)
            if thread.spawned_by is not None:
                thread.metadata["spawned_by_tool_call"] = thread.spawned_by
        for summary in self.summaries:
            summary.title = f"Summary: {thread.title or 'Conversation'}"
            summary.env = dict(thread.env)
        return [thread, *self.summaries]

    def _message(self, draft: _Draft) -> Message | None:
        metadata = dict(draft.metadata)
        if draft.items:
            metadata["items"] = draft.items
        usage: dict[str, JsonValue] | None = None
        if draft.tokens is not None:
            fresh, cached, output, reasoning = draft.tokens
            usage = {
                "model": draft.model,
                "input_tokens": max(0, fresh - cached),
                "output_tokens": output,
                "cache_read_tokens": cached,
            }
            metadata["reasoning_output_tokens"] = reasoning
        return build_message(
            self.report,
            draft.path,
            draft.line,
            {
                "id": draft.id,
                "role": draft.role,
                "content": "\n\n".join(draft.texts),
                "timestamp": draft.timestamp,
                "tool_calls": draft.calls,
                "tool_results": draft.results,
                "usage": usage,
                "metadata": metadata,
            },
        )


def _plus(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _rest(payload: dict[str, JsonValue], *mapped: str) -> dict[str, JsonValue]:
    return {k: v for k, v in payload.items() if k not in mapped}


def _count(value: JsonValue) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _texts(content: JsonValue) -> tuple[list[str], list[JsonValue]]:
    """Text parts (``input_text``, ``output_text``, ``text``) and everything else."""
    if isinstance(content, str):
        return [content], []
    texts: list[str] = []
    other: list[JsonValue] = []
    for part in content if isinstance(content, list) else []:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(part, dict) and isinstance(text, str):
            if text.strip():
                texts.append(text)
            extra = _rest(part, "type", "text")
            if extra:
                other.append(part)
        else:
            other.append(part)
    return texts, other


def _call(payload: dict[str, JsonValue]) -> tuple[str, dict[str, JsonValue], dict[str, JsonValue]]:
    """(tool name, tool input, the item's remaining fields) of a model tool call."""
    kind = str(payload.get("type"))
    if kind == "function_call":
        raw = payload.get("arguments")
        try:
            parsed = orjson.loads(raw) if isinstance(raw, str) else raw
        except orjson.JSONDecodeError:
            parsed = None
        tool_input = parsed if isinstance(parsed, dict) else {"arguments": raw}
        kept = _rest(payload, "name", "arguments", "call_id")
        return str(payload.get("name")), tool_input, kept
    if kind == "custom_tool_call":
        kept = _rest(payload, "name", "input", "call_id")
        return str(payload.get("name")), {"input": payload.get("input")}, kept
    name = kind.removesuffix("_call")
    action = payload.get("action")
    if isinstance(action, dict):
        return name, action, _rest(payload, "action", "call_id")
    return name, _rest(payload, "type", "call_id", "id", "status"), {"type": kind}


def _env(meta: dict[str, JsonValue]) -> dict[str, JsonValue]:
    env: dict[str, JsonValue] = {"agent": AGENT}
    if isinstance(meta.get("cwd"), str):
        env["cwd"] = meta["cwd"]
    git = meta.get("git")
    if isinstance(git, dict):
        for key, name in (
            ("branch", "git_branch"),
            ("commit_hash", "git_commit"),
            ("repository_url", "git_remote"),
        ):
            if isinstance(git.get(key), str):
                env[name] = git[key]
    for key, name in (("cli_version", "agent_version"), ("originator", "originator")):
        if isinstance(meta.get(key), str):
            env[name] = meta[key]
    return env


def _first_prompt(messages: Sequence[Message]) -> str | None:
    """A title from the first user message that is not injected context."""
    for message in messages:
        text = message.content.lstrip()
        if message.role == "user" and text and not text.startswith(_CONTEXT_PREFIXES):
            return clip_title(text)
    return None
