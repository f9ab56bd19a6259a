"""OpenHands conversations (``~/.openhands/conversations/<id>/``) → threads.

A conversation folder of the OpenHands SDK and CLI (V1) holds
``base_state.json`` (the conversation's settings and usage statistics,
rewritten as it changes) and ``events/event-<idx>-<uuid>.json``, one immutable
JSON file per event. One thread per folder; its id is the conversation id
(the folder name when it is one, else ``base_state.json``'s ``id``).

Events become messages, one per event, in ``idx`` order, with the event's
``id`` as the message id (so importing again, or after the conversation
grew, adds exactly the events the thread lacks):

- ``SystemPromptEvent`` → a ``system`` message (the tool list in metadata);
- ``MessageEvent`` → a message of its ``llm_message.role``;
- ``ActionEvent`` → an ``assistant`` message whose text is the thought and
  whose one tool call is the action (arguments parsed from the call's JSON);
- ``ObservationEvent``, ``UserRejectObservation``, ``AgentErrorEvent`` → a
  ``user`` message holding the tool result, joined to its call through
  ``action_id`` (else ``tool_call_id``). A tool-call id the thread already
  used (some providers repeat them) becomes ``<id>:<event id>``, so every
  tool call's id is unique within its thread;
- ``Condensation`` → a ``system`` marker message, and, when it carries a
  summary, a summary thread ``<thread>:compact-<event id>`` linked like a
  Claude Code compaction;
- ``ConversationErrorEvent`` → a ``system`` message; state updates, pauses,
  condensation requests and other events are skipped and counted by kind.

Usage: ``base_state.json`` keeps, per LLM (``stats.usage_to_metrics``), a
``token_usages`` entry per response, keyed by ``response_id``; events name
their response in ``llm_response_id``. The first event of a response gets its
usage. OpenHands' ``prompt_tokens`` include the cached ones (litellm's
convention), so ``input_tokens`` = prompt - cache read - cache write. Costs
(``costs``) have no response id; they are joined to responses through
``response_latencies`` (one per response, in the same order) when the two
lists have the same length, and then the cost OpenHands reported is the
message's ``cost_usd``; otherwise the cost is computed like for the other
importers.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import JsonValue

from threadline.deltas import MessageDelta
from threadline.importers.core import (
    ImportReport,
    ParsedThread,
    build_message,
    clip_title,
    iso_ms,
    save_threads,
)
from threadline.importers.progress import ImportProgress
from threadline.model import Message
from threadline.store import ThreadStore

AGENT = "openhands"
BASE_STATE = "base_state.json"
EVENTS = "events"
_EVENT_FILE = re.compile(r"^event-(\d+)-(.+)\.json$")
_V0_EVENT_FILE = re.compile(r"^\d+\.json$")
_RESULT_KINDS = frozenset({"ObservationEvent", "UserRejectObservation", "AgentErrorEvent"})
_SECRET_KEY = re.compile(r"api_key|secret|password|access_key|private_key", re.IGNORECASE)
_MUTABLE_STATE = frozenset(
    {
        "stats",
        "secret_registry",
        "execution_status",
        "agent_state",
        "blocked_actions",
        "blocked_messages",
        "activated_knowledge_skills",
    }
)
LATE_USAGE = "usage written after its message was imported"
"""The ``skipped`` key counting responses whose usage came too late (see docs/import.md)."""


def default_paths() -> list[Path]:
    return [Path.home() / ".openhands" / "conversations"]


@dataclass
class OpenHandsReport(ImportReport):
    """An :class:`ImportReport` that also lists the paths that gave nothing:
    missing, or holding no OpenHands conversation (``problems``; the CLI exits
    1 when there is any, after importing the other paths)."""

    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, JsonValue]:
        return {**super().to_json(), "problems": list(self.problems)}


async def import_openhands(
    store: ThreadStore,
    paths: Sequence[Path] | None = None,
    *,
    progress: ImportProgress | None = None,
) -> OpenHandsReport:
    """Import OpenHands conversation folders from ``paths`` (a conversation
    folder, a folder searched recursively for them, or a file inside one;
    default ``~/.openhands/conversations``) into ``store``.

    A path that does not exist or holds no conversation is listed in
    ``report.problems`` and the other paths are imported."""
    report = OpenHandsReport()
    folders = discover(paths if paths else default_paths(), report)
    if progress is not None:
        progress.start(sum(len(_event_files(folder)) + 1 for folder in folders))
    for folder in folders:
        await import_openhands_conversation(store, folder, report=report, progress=progress)
    return report


async def import_openhands_conversation(
    store: ThreadStore,
    folder: Path,
    *,
    report: OpenHandsReport | None = None,
    progress: ImportProgress | None = None,
) -> OpenHandsReport:
    """Import one conversation folder (``<id>/`` holding ``base_state.json``
    and ``events/``): its thread and summary threads, adding only the events
    the store does not hold yet. This is what a watcher calls when the folder
    changes; calling it again after new events were written adds exactly them."""
    report = report if report is not None else OpenHandsReport()
    threads = parse_conversation(folder, report, progress)
    if not threads:
        return report
    report.sessions += 1
    await _note_late_usage(store, threads[0], report)
    await save_threads(store, threads, report)
    return report


# -- finding the folders -----------------------------------------------------------


def discover(paths: Iterable[Path], report: OpenHandsReport) -> list[Path]:
    """The conversation folders under ``paths``, each once, in path order; a
    path that is missing or holds none is added to ``report.problems``."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            report.problems.append(f"No such file or folder: {path}")
            continue
        folders = _conversations_under(path)
        if not folders:
            report.problems.append(f"No OpenHands conversation in {path}: {_what_is_there(path)}")
        found.extend(folders)
    return list(dict.fromkeys(found))


def conversation_folder(path: Path) -> Path | None:
    """The conversation folder that ``path`` (the folder itself, its
    ``base_state.json``, its ``events`` folder or an event file) belongs to,
    or ``None``: what a watcher asks of a changed path."""
    for candidate in (path, path.parent, path.parent.parent):
        if candidate.name != EVENTS and is_conversation(candidate):
            return candidate
    return None


def is_conversation(folder: Path) -> bool:
    """Whether ``folder`` is an OpenHands (V1) conversation folder."""
    return (folder / BASE_STATE).is_file() or bool(_event_files(folder))


def _conversations_under(path: Path) -> list[Path]:
    if path.is_file():
        if path.name == BASE_STATE:
            return [path.parent]
        if path.parent.name == EVENTS and _EVENT_FILE.match(path.name):
            return [path.parent.parent]
        return []
    if path.name == EVENTS and is_conversation(path.parent):
        return [path.parent]
    found: list[Path] = []
    for folder, dirs, files in os.walk(path):
        here = Path(folder)
        if BASE_STATE in files or (EVENTS in dirs and _event_files(here)):
            found.append(here)
        if EVENTS in dirs:
            dirs.remove(EVENTS)  # event files only, never conversations
        dirs.sort()
    return found


def _what_is_there(path: Path, most: int = 100_000) -> str:
    """What a path without a conversation holds, said plainly (looking at no
    more than ``most`` files)."""
    if path.is_file():
        return f"{path.name} is neither a {BASE_STATE} nor an {EVENTS}/event-<idx>-<id>.json file"
    suffixes: Counter[str] = Counter()
    v0_events = 0
    for folder, _, files in os.walk(path):
        for name in files:
            suffixes[Path(name).suffix or "(no suffix)"] += 1
            v0_events += Path(folder).name == EVENTS and bool(_V0_EVENT_FILE.match(name))
        if suffixes.total() >= most:
            break
    if not suffixes:
        return "the folder is empty"
    if v0_events:
        return "it holds OpenHands V0 sessions (events/<n>.json), which this importer does not read"
    kinds = ", ".join(f"{count} {suffix}" for suffix, count in sorted(suffixes.items()))
    return (
        f"it holds {suffixes.total()} file(s) ({kinds}) but no {BASE_STATE} "
        f"or {EVENTS}/event-<idx>-<id>.json"
    )


def _event_files(folder: Path) -> list[Path]:
    """The event files of a conversation, in ``idx`` order."""
    events = folder / EVENTS
    if not events.is_dir():
        return []
    numbered: list[tuple[int, str, Path]] = []
    for path in events.iterdir():
        match = _EVENT_FILE.match(path.name)
        if match is not None and path.is_file():
            numbered.append((int(match.group(1)), path.name, path))
    return [path for _, _, path in sorted(numbered)]


# -- reading files -----------------------------------------------------------------


def read_json_object(path: Path, report: ImportReport) -> dict[str, JsonValue] | None:
    """The JSON object in ``path``, or ``None`` (and a malformed line, with the
    line of the error) if the file is not one. A UTF-8 BOM is accepted."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        report.bad_line(path, 1, f"cannot read ({exc.strerror})")
        return None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        report.bad_line(path, 1, "empty file")
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        report.bad_line(path, exc.lineno, f"not JSON ({exc})")
        return None
    if not isinstance(value, dict):
        report.bad_line(path, 1, f"a JSON {type(value).__name__}, not an object")
        return None
    return value


def _thread_id(folder: Path, state: dict[str, JsonValue] | None) -> str:
    """The conversation id: the folder's name when it is a UUID (the SDK names
    folders ``<id.hex>``; this stays right while ``base_state.json`` is being
    rewritten), else ``base_state.json``'s ``id``, else the folder's name."""
    try:
        return str(uuid.UUID(folder.name))
    except ValueError:
        pass
    if state is not None and isinstance(state.get("id"), str):
        return str(state["id"])
    return folder.name


# -- usage ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Response:
    """One LLM response's usage, as ``base_state.json`` records it."""

    id: str
    usage: dict[str, JsonValue]
    raw: dict[str, JsonValue]


def _responses(state: dict[str, JsonValue] | None) -> dict[str, _Response]:
    """Usage per response id, from ``stats.usage_to_metrics``."""
    stats = state.get("stats") if state is not None else None
    per_llm = stats.get("usage_to_metrics") if isinstance(stats, dict) else None
    found: dict[str, _Response] = {}
    for usage_id, metrics in per_llm.items() if isinstance(per_llm, dict) else ():
        if not isinstance(metrics, dict):
            continue
        costs = _cost_by_response(metrics)
        for entry in _dicts(metrics.get("token_usages")):
            response_id = entry.get("response_id")
            if not isinstance(response_id, str) or not response_id or response_id in found:
                continue
            prompt = _count(entry.get("prompt_tokens"))
            read = _count(entry.get("cache_read_tokens"))
            write = _count(entry.get("cache_write_tokens"))
            model = entry.get("model") or metrics.get("model_name")
            usage: dict[str, JsonValue] = {
                "model": model.rsplit("/", 1)[-1] if isinstance(model, str) else None,
                "input_tokens": max(0, prompt - read - write),
                "output_tokens": _count(entry.get("completion_tokens")),
                "cache_read_tokens": read,
                "cache_write_tokens": write,
                "cost_usd": costs.get(response_id),
            }
            found[response_id] = _Response(response_id, usage, {"usage_id": usage_id, **entry})
    return found


def _cost_by_response(metrics: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Each response's reported cost. OpenHands appends one latency per
    response and one cost per *priced* response, in the same order; only when
    every response was priced do the two lists line up."""
    costs = list(_dicts(metrics.get("costs")))
    latencies = list(_dicts(metrics.get("response_latencies")))
    if not costs or len(costs) != len(latencies):
        return {}
    joined: dict[str, JsonValue] = {}
    for cost, latency in zip(costs, latencies, strict=True):
        response_id, value = latency.get("response_id"), cost.get("cost")
        if isinstance(response_id, str) and isinstance(value, int | float) and value >= 0:
            joined[response_id] = float(value)
    return joined


async def _note_late_usage(store: ThreadStore, parsed: ParsedThread, report: ImportReport) -> None:
    """Count responses whose message an earlier import stored without usage
    (OpenHands writes usage to ``base_state.json`` after the events): messages
    are immutable, so that usage is reported, not added."""
    with_usage = {m.id for m in parsed.messages if m.usage is not None}
    if not with_usage or await store.recorder.head(parsed.id) is None:
        return
    late = sum(
        1
        for record in await store.history(parsed.id)
        if isinstance(record.delta, MessageDelta)
        and record.delta.message.usage is None
        and record.delta.message.id in with_usage
    )
    if late:
        report.skip(LATE_USAGE, late)


# -- parsing one conversation -----------------------------------------------------------


def parse_conversation(
    folder: Path, report: ImportReport, progress: ImportProgress | None = None
) -> list[ParsedThread]:
    """The conversation's thread, then its summary threads (empty if it has no
    message yet)."""
    state_path = folder / BASE_STATE
    state: dict[str, JsonValue] | None = None
    if state_path.is_file():
        report.files += 1
        state = read_json_object(state_path, report)
    if progress is not None:
        progress.advance(state_path)
    parser = _Conversation(folder, _thread_id(folder, state), report, _responses(state))
    for path in _event_files(folder):
        report.files += 1
        event = read_json_object(path, report)
        if event is not None:
            parser.event(path, event)
        if progress is not None:
            progress.advance(path)
    return parser.finish(state)


class _Conversation:
    def __init__(
        self, folder: Path, thread_id: str, report: ImportReport, responses: dict[str, _Response]
    ) -> None:
        self.folder = folder
        self.thread_id = thread_id
        self.report = report
        self.responses = responses
        self.responses_given: set[str] = set()
        self.messages: list[Message] = []
        self.summaries: list[ParsedThread] = []
        self.seen: set[str] = set()
        self.call_ids: set[str] = set()
        self.call_of_action: dict[str, str] = {}  # action event id → tool call id
        self.call_of_raw: dict[str, str] = {}  # the LLM's tool call id → latest tool call id
        self.last_timestamp = 0

    # -- dispatch ----------------------------------------------------------------

    def event(self, path: Path, event: dict[str, JsonValue]) -> None:
        kind = event.get("kind")
        if not isinstance(kind, str):
            self.report.bad_line(path, 1, "an event without a kind")
            return
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            match = _EVENT_FILE.match(path.name)
            event_id = match.group(2) if match else path.stem
        if event_id in self.seen:
            self.report.replayed += 1
            return
        timestamp = iso_ms(event.get("timestamp")) or self.last_timestamp
        self.last_timestamp = timestamp
        fields: dict[str, object] | None
        if kind == "SystemPromptEvent":
            fields = self.system_prompt(event)
        elif kind == "MessageEvent":
            fields = self.message(path, event)
        elif kind == "ActionEvent":
            fields = self.action(path, event_id, event)
        elif kind in _RESULT_KINDS:
            fields = self.result(path, kind, event)
        elif kind == "Condensation":
            fields = self.condensation(path, event_id, timestamp, event)
        elif kind == "ConversationErrorEvent":
            fields = {
                "role": "system",
                "content": f"{event.get('code')}: {event.get('detail')}",
                "metadata": _rest(event, "id", "timestamp", "code", "detail"),
            }
        else:
            self.report.skip(kind)
            return
        if fields is None:
            return
        fields = {"id": event_id, "timestamp": timestamp, **fields}
        response = self.response_of(event) if "usage" not in fields else None
        if response is not None:
            self.give_usage(fields, response)
        message = build_message(self.report, path, 1, fields)
        if message is not None:
            self.seen.add(event_id)
            self.messages.append(message)
            if response is not None:
                self.responses_given.add(response.id)

    def response_of(self, event: dict[str, JsonValue]) -> _Response | None:
        """The usage of the event's response, if no earlier event was given it."""
        response_id = event.get("llm_response_id")
        if not isinstance(response_id, str) or response_id in self.responses_given:
            return None
        return self.responses.get(response_id)

    @staticmethod
    def give_usage(fields: dict[str, object], response: _Response) -> None:
        """Put a response's usage on a message (the raw entry in its metadata)."""
        metadata = fields.get("metadata")
        fields["usage"] = response.usage
        fields["metadata"] = {
            **(metadata if isinstance(metadata, dict) else {}),
            "token_usage": response.raw,
        }

    # -- event kinds ---------------------------------------------------------------

    def system_prompt(self, event: dict[str, JsonValue]) -> dict[str, object]:
        texts, other = _texts(event.get("system_prompt"))
        metadata = _rest(event, "id", "timestamp", "system_prompt")
        if other:
            metadata["system_prompt_blocks"] = other
        return {"role": "system", "content": "\n\n".join(texts), "metadata": metadata}

    def message(self, path: Path, event: dict[str, JsonValue]) -> dict[str, object] | None:
        llm_message = event.get("llm_message")
        if not isinstance(llm_message, dict):
            self.report.bad_line(path, 1, "a MessageEvent without an llm_message object")
            return None
        role = llm_message.get("role")
        if role not in ("user", "assistant", "system", "tool"):
            self.report.bad_line(path, 1, f"a MessageEvent with role {role!r}")
            return None
        texts, other = _texts(llm_message.get("content"))
        metadata = _rest(event, "id", "timestamp", "llm_message")
        rest = _rest(llm_message, "role", "content")
        if rest:
            metadata["llm_message"] = rest
        if other:
            metadata["blocks"] = other
        if role == "tool":
            metadata["role"] = role
        return {
            "role": "user" if role == "tool" else role,
            "content": "\n\n".join(texts),
            "metadata": metadata,
        }

    def action(
        self, path: Path, event_id: str, event: dict[str, JsonValue]
    ) -> dict[str, object] | None:
        call = event.get("tool_call")
        call = call if isinstance(call, dict) else {}
        raw_id = event.get("tool_call_id") or call.get("id")
        name = event.get("tool_name") or call.get("name")
        if not isinstance(name, str) or not name:
            self.report.bad_line(path, 1, "an ActionEvent without a tool name")
            return None
        raw = str(raw_id) if isinstance(raw_id, str) and raw_id else event_id
        call_id = raw if raw not in self.call_ids else f"{raw}:{event_id}"
        self.call_ids.add(call_id)
        self.call_of_action[event_id] = call_id
        self.call_of_raw[raw] = call_id
        arguments = call.get("arguments")
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            tool_input: dict[str, JsonValue] = parsed
        elif arguments is not None:
            tool_input = {"arguments": arguments}
        else:
            action = event.get("action")
            tool_input = dict(action) if isinstance(action, dict) else {}
        texts, other = _texts(event.get("thought"))
        metadata = _rest(event, "id", "timestamp", "thought", "tool_name", "tool_call_id")
        kept = _rest(call, "id", "name", "arguments")
        if kept:
            metadata["tool_call"] = kept
        else:
            metadata.pop("tool_call", None)
        if other:
            metadata["thought_blocks"] = other
        if call_id != raw:
            metadata["tool_call_id"] = raw
        return {
            "role": "assistant",
            "content": "\n\n".join(texts),
            "tool_calls": [{"id": call_id, "name": name, "input": tool_input}],
            "metadata": metadata,
        }

    def result(
        self, path: Path, kind: str, event: dict[str, JsonValue]
    ) -> dict[str, object] | None:
        action_id, raw_id = event.get("action_id"), event.get("tool_call_id")
        call_id = self.call_of_action.get(action_id) if isinstance(action_id, str) else None
        if call_id is None and isinstance(raw_id, str):
            call_id = self.call_of_raw.get(raw_id, raw_id)
        if call_id is None:
            self.report.bad_line(path, 1, f"an {kind} without an action_id or tool_call_id")
            return None
        metadata = _rest(event, "id", "timestamp", "tool_call_id")
        if kind == "ObservationEvent":
            observation = event.get("observation")
            if not isinstance(observation, dict):
                self.report.bad_line(path, 1, "an ObservationEvent without an observation object")
                return None
            output = _output(observation)
            is_error = observation.get("is_error") is True
            metadata["observation"] = _rest(observation, "content", "is_error")
        elif kind == "UserRejectObservation":
            output = str(event.get("rejection_reason") or "rejected")
            is_error = True
            metadata.pop("rejection_reason", None)
        else:
            output = str(event.get("error") or "")
            is_error = True
            metadata.pop("error", None)
        if not metadata.get("observation"):
            metadata.pop("observation", None)
        result = {"tool_call_id": call_id, "output": output, "is_error": is_error}
        return {"role": "user", "tool_results": [result], "metadata": metadata}

    def condensation(
        self, path: Path, event_id: str, timestamp: int, event: dict[str, JsonValue]
    ) -> dict[str, object]:
        forgotten = event.get("forgotten_event_ids")
        count = len(forgotten) if isinstance(forgotten, list) else 0
        metadata = _rest(event, "id", "timestamp", "summary")
        text = event.get("summary")
        marker: dict[str, object] = {
            "role": "system",
            "content": f"Conversation condensed: {count} earlier events forgotten",
            "metadata": metadata,
        }
        if not isinstance(text, str) or not text.strip():
            return marker  # the condenser's usage, if any, goes on the marker
        summary_id = f"{self.thread_id}:compact-{event_id}"
        metadata["summary_thread_id"] = summary_id
        fields: dict[str, object] = {
            "id": f"{event_id}:summary",
            "role": "assistant",
            "content": text,
            "timestamp": timestamp,
            "metadata": {"summary_of": self.thread_id, "message": event_id},
        }
        response = self.response_of(event)
        if response is not None:
            self.give_usage(fields, response)
        summary = build_message(self.report, path, 1, fields)
        if summary is not None:
            if response is not None:
                self.responses_given.add(response.id)
            self.summaries.append(
                ParsedThread(
                    id=summary_id,
                    kind="summary",
                    created=timestamp,
                    source=str(self.folder),
                    messages=[summary],
                    origin_id=self.thread_id,
                    metadata={"imported_from": str(self.folder), "condensation": event_id},
                )
            )
        return {**marker, "usage": None}

    # -- the result ----------------------------------------------------------------

    def finish(self, state: dict[str, JsonValue] | None) -> list[ParsedThread]:
        unused = len(self.responses.keys() - self.responses_given)
        if unused:
            self.report.skip("usage of a response without an event", unused)
        if not self.messages:
            return []
        state = state or {}
        title = next(
            (
                clip_title(m.content)
                for m in self.messages
                if m.role == "user" and not m.tool_results and m.content.strip()
            ),
            None,
        )
        env: dict[str, JsonValue] = {"agent": AGENT}
        workspace = state.get("workspace")
        if isinstance(workspace, dict) and isinstance(workspace.get("working_dir"), str):
            env["cwd"] = workspace["working_dir"]
        settings = {k: v for k, v in state.items() if k not in _MUTABLE_STATE}
        thread = ParsedThread(
            id=self.thread_id,
            kind="session",
            created=self.messages[0].timestamp,
            source=str(self.folder),
            title=title,
            env=env,
            metadata={"imported_from": str(self.folder), "openhands": _without_secrets(settings)},
            messages=self.messages,
        )
        for summary in self.summaries:
            summary.title = f"Summary: {title or 'Conversation'}"
            summary.env = dict(env)
        return [thread, *self.summaries]


# -- small readers ---------------------------------------------------------------------


def _dicts(value: JsonValue) -> Iterable[dict[str, JsonValue]]:
    return (item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()


def _count(value: JsonValue) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _rest(payload: dict[str, JsonValue], *mapped: str) -> dict[str, JsonValue]:
    """The payload's other fields, without empty ones (``[]``, ``{}``, ``null``)."""
    return {k: v for k, v in payload.items() if k not in mapped and v not in (None, [], {})}


def _texts(content: JsonValue) -> tuple[list[str], list[JsonValue]]:
    """The text of OpenHands content (a text block or a list of them) and the
    blocks that are not plain text (images, ...)."""
    blocks = [content] if isinstance(content, dict | str) else content
    texts: list[str] = []
    other: list[JsonValue] = []
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, str):
            texts.append(block)
            continue
        text = block.get("text") if isinstance(block, dict) else None
        is_text = isinstance(block, dict) and block.get("type", "text") == "text"
        if is_text and isinstance(block, dict) and isinstance(text, str):
            if text.strip():
                texts.append(text)
            extra = _rest(block, "type", "text", "cache_prompt")
            if extra:
                other.append(extra)
        else:
            other.append(block)
    return texts, other


def _output(observation: dict[str, JsonValue]) -> JsonValue:
    """What the tool returned: the text the LLM saw, or the blocks if some are
    not text, or (older shapes without ``content``) the whole observation."""
    content = observation.get("content")
    if content is None:
        return _rest(observation, "kind")
    texts, other = _texts(content)
    if other:
        return content
    return "\n".join(texts)


def _without_secrets(value: JsonValue) -> JsonValue:
    """``value`` without keys that name credentials (already masked or
    encrypted by OpenHands; kept out of the store all the same)."""
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if not _SECRET_KEY.search(k)}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value
