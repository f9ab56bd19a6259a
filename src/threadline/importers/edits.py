"""Agents' own file edits, recorded as file changes on import (issue 14, item 5).

Each edit becomes a change of the file log under its tool call's operation
(the tool call id), with the contents before and after, so that ``threadline
files``, the viewer's diffs and ``rollback --dry-run`` work on imported
sessions:

- a Claude Code ``Edit``, ``MultiEdit`` or ``Write`` result (its
  ``toolUseResult``) carries the file before the call (``originalFile`` /
  ``originalFileContents``) and the edit (``oldString``/``newString``,
  ``edits``) or the new content (``content``; ``type`` is ``create`` or
  ``update``);
- a Codex ``apply_patch`` call's patch: ``*** Add File`` holds a new file's
  content; ``*** Update File`` and ``*** Delete File`` hold hunks only;
- an OpenHands ``file_editor`` result (``FileEditorObservation``) carries
  ``prev_exist``, ``old_content`` and ``new_content``.

Nothing is invented. A content the transcript does not hold is recorded as
not recorded (:class:`~threadline.files.log.UnknownContent`), never guessed:

- *before* not recorded: an ``Edit``/``MultiEdit`` without ``originalFile``, a
  ``Write`` (``update``) over a file the transcript did not show, a patch's
  ``Update File``/``Delete File`` (and a move's destination), an OpenHands
  edit of an existing file without ``old_content``;
- *after* not recorded: an ``Edit``/``MultiEdit`` without ``originalFile``
  (there is nothing to apply it to), or whose ``oldString`` is not found in
  the original as given, a patch's ``Update File``, an OpenHands edit without
  ``new_content``.

Such a change still lists its path and operation; it has no diff, and a
rollback that would need its unknown "before" refuses that file. The import
report counts the recorded changes, those with the content before (after)
not recorded, and what was left out and why: an edit whose path is outside
the thread's working directory, or the edits of a thread that could not take
them. A failed tool call (an error result) changed nothing and is not an edit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pydantic import JsonValue

from threadline.errors import ThreadlineError
from threadline.files import contents
from threadline.files.log import (
    UNKNOWN,
    FileState,
    NewFileChange,
    State,
    StoredContent,
    UnknownContent,
)
from threadline.files.workdir import default_mode
from threadline.model import Message
from threadline.recorders.roles import FileLog
from threadline.store import ThreadStore

Content = bytes | UnknownContent | None
"""A side of an edit: the bytes, :data:`~threadline.files.log.UNKNOWN`, or no file."""

Edit = tuple[str, str, Content, Content]  # operation (tool call id), path, before, after

OUTSIDE = "file edit outside the working directory"
REFUSED = "file edits of a thread that could not take them"

_EDITOR_COMMANDS = frozenset({"create", "str_replace", "insert", "undo_edit"})


@dataclass
class EditCounts:
    """What :func:`record_agent_edits` did: changes recorded, how many of them
    have their content before (after) not recorded, and what was left out, by
    reason."""

    recorded: int = 0
    unknown_before: int = 0
    unknown_after: int = 0
    left_out: Counter[str] = field(default_factory=Counter)


def claude_code_edits(messages: Sequence[Message]) -> list[Edit]:
    """The edits the ``toolUseResult`` of Claude Code tool results record."""
    edits: list[Edit] = []
    for message in messages:
        result = message.metadata.get("toolUseResult")
        if not isinstance(result, dict) or len(message.tool_results) != 1:
            continue
        path = result.get("filePath")
        if not isinstance(path, str) or message.tool_results[0].is_error:
            continue
        found = _claude_code_edit(result)
        if found is not None:
            edits.append((message.tool_results[0].tool_call_id, path, *found))
    return edits


def _claude_code_edit(result: Mapping[str, JsonValue]) -> tuple[Content, Content] | None:
    """(before, after) of one result, or ``None`` if it is not an edit's."""
    given = result.get("originalFile", result.get("originalFileContents"))
    original = given.encode() if isinstance(given, str) else None
    if "content" in result and result.get("type") in ("create", "update"):
        content = result.get("content")
        after: Content = content.encode() if isinstance(content, str) else UNKNOWN
        if result.get("type") == "create":
            return None, after
        return (UNKNOWN if original is None else original), after
    steps: list[JsonValue]
    if "oldString" in result:
        steps = [
            {
                "old_string": result.get("oldString"),
                "new_string": result.get("newString"),
                "replace_all": result.get("replaceAll", False),
            }
        ]
    elif isinstance(result.get("edits"), list):
        steps = list(result["edits"])  # type: ignore[arg-type]
    else:
        return None  # not an edit (a plan, a read, ...)
    if not isinstance(given, str):
        return UNKNOWN, UNKNOWN
    return given.encode(), _applied(given, steps)


def _applied(text: str, steps: Sequence[JsonValue]) -> Content:
    """``text`` with the ``old_string`` → ``new_string`` steps made, or
    :data:`UNKNOWN` if one does not apply exactly."""
    for step in steps:
        if not isinstance(step, dict):
            return UNKNOWN
        old, new = step.get("old_string"), step.get("new_string")
        if not isinstance(old, str) or not isinstance(new, str) or old not in text:
            return UNKNOWN
        text = text.replace(old, new) if step.get("replace_all") else text.replace(old, new, 1)
    return text.encode()


def codex_edits(messages: Sequence[Message]) -> list[Edit]:
    """The files Codex ``apply_patch`` calls add, update, delete or move."""
    edits: list[Edit] = []
    for message in messages:
        for call in message.tool_calls:
            if call.name != "apply_patch":
                continue
            patch = call.input.get("input", call.input.get("patch"))
            if isinstance(patch, str):
                edits.extend((call.id, *edit) for edit in _patch_files(patch))
    return edits


def _patch_files(patch: str) -> list[tuple[str, Content, Content]]:
    """(path, before, after) of each file of an ``apply_patch`` envelope, in order.
    Only an added file's content is in the patch; hunks of an update hold parts."""
    found: list[tuple[str, Content, Content]] = []
    added: str | None = None  # the file being added
    updated: str | None = None  # the file being updated (a move names its destination)
    lines: list[str] = []
    for line in patch.splitlines():
        if line.startswith("*** Move to: ") and updated is not None:
            found[-1] = (updated, UNKNOWN, None)
            found.append((line.removeprefix("*** Move to: ").strip(), UNKNOWN, UNKNOWN))
            updated = None
        elif line.startswith("*** "):
            if added is not None:
                found.append((added, None, "".join(f"{text}\n" for text in lines).encode()))
            added, updated, lines = None, None, []
            if line.startswith("*** Add File: "):
                added = line.removeprefix("*** Add File: ").strip()
            elif line.startswith("*** Update File: "):
                updated = line.removeprefix("*** Update File: ").strip()
                found.append((updated, UNKNOWN, UNKNOWN))
            elif line.startswith("*** Delete File: "):
                found.append((line.removeprefix("*** Delete File: ").strip(), UNKNOWN, None))
        elif added is not None and line.startswith("+"):
            lines.append(line[1:])
    if added is not None:  # an envelope without its end marker
        found.append((added, None, "".join(f"{text}\n" for text in lines).encode()))
    return found


def openhands_edits(messages: Sequence[Message]) -> list[Edit]:
    """The edits OpenHands ``file_editor`` results (``FileEditorObservation``) record."""
    edits: list[Edit] = []
    for message in messages:
        observation = message.metadata.get("observation")
        if not isinstance(observation, dict) or len(message.tool_results) != 1:
            continue
        path, command = observation.get("path"), observation.get("command")
        if (
            observation.get("kind") != "FileEditorObservation"
            or command not in _EDITOR_COMMANDS
            or not isinstance(path, str)
            or message.tool_results[0].is_error
        ):
            continue
        old, new = observation.get("old_content"), observation.get("new_content")
        before: Content = old.encode() if isinstance(old, str) else UNKNOWN
        if observation.get("prev_exist") is False:
            before = None
        after: Content = new.encode() if isinstance(new, str) else UNKNOWN
        edits.append((message.tool_results[0].tool_call_id, path, before, after))
    return edits


def _relative(path: str, cwd: JsonValue) -> str | None:
    """``path`` relative to the working directory ``cwd``, or ``None`` if outside."""
    given = PurePosixPath(path)
    if not given.is_absolute():
        return given.as_posix() if ".." not in given.parts else None
    if not isinstance(cwd, str):
        return None
    try:
        relative = given.relative_to(PurePosixPath(cwd))
    except ValueError:
        return None
    return relative.as_posix() if relative.parts and ".." not in relative.parts else None


async def record_agent_edits(
    store: ThreadStore, thread_id: str, cwd: JsonValue, messages: Sequence[Message]
) -> EditCounts:
    """Record the file edits of newly imported ``messages`` (Claude Code, Codex or
    OpenHands) of ``thread_id``; returns what was recorded and left out."""
    edits = claude_code_edits(messages) + codex_edits(messages) + openhands_edits(messages)
    return await record_edits(store, thread_id, cwd, edits)


async def record_edits(
    store: ThreadStore, thread_id: str, cwd: JsonValue, edits: Sequence[Edit]
) -> EditCounts:
    """Record ``edits`` in the file log of ``thread_id`` (working directory
    ``cwd``), in order; returns what was recorded and left out."""
    counts = EditCounts()
    recorder = store.recorder
    if not edits or not isinstance(recorder, FileLog):
        return counts
    changes: list[NewFileChange] = []
    stored: dict[str, StoredContent] = {}
    mode = default_mode()
    for operation, path, before, after in edits:
        relative = _relative(path, cwd)
        if relative is None:
            counts.left_out[OUTSIDE] += 1
            continue
        states: list[State] = []
        for data in (before, after):
            if not isinstance(data, bytes):
                states.append(data)
                continue
            digest = contents.content_hash(data)
            stored.setdefault(digest, contents.encode(data, digest=digest))
            states.append(FileState(hash=digest, size=len(data), mode=mode))
        if isinstance(states[0], FileState) and states[0] == states[1]:
            continue  # an edit that changed nothing
        if states[0] is None and states[1] is None:
            continue  # nothing there before or after: not a change
        changes.append(NewFileChange(operation, relative, states[0], states[1]))
    if changes:
        try:
            await recorder.record_file_changes(thread_id, changes, list(stored.values()))
        except ThreadlineError:
            counts.left_out[REFUSED] += len(changes)
            return counts
    counts.recorded = len(changes)
    counts.unknown_before = sum(isinstance(c.before, UnknownContent) for c in changes)
    counts.unknown_after = sum(isinstance(c.after, UnknownContent) for c in changes)
    return counts
