"""Agents' own file edits, recorded as file changes on import (issue 14, item 5).

A Claude Code ``Edit``, ``MultiEdit`` or ``Write`` result carries the file
before the call (``toolUseResult.originalFile`` / ``originalFileContents``)
and the edit (``oldString``/``newString``, ``edits``) or the new content; a
Codex ``apply_patch`` call's ``*** Add File`` carries a new file's content.
Each becomes a change of the file log under its tool call's operation (the
tool call id), with the contents before and after, so that ``threadline
files``, the viewer's diffs and ``rollback --dry-run`` work on imported
sessions.

Nothing is invented: an edit whose "before" the transcript does not hold (an
``Edit`` without ``originalFile``, a ``Write`` over a file it did not show, a
patch's ``Update File``/``Delete File`` hunks), whose "after" cannot be
derived exactly (an ``oldString`` not found in the original), or whose path is
outside the thread's working directory is not recorded; the import report
counts it under ``skipped`` ("file edit without its before content", ...).
The file log has no "unknown before" state yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from pydantic import JsonValue

from threadline.errors import ThreadlineError
from threadline.files import contents
from threadline.files.log import FileState, NewFileChange, StoredContent
from threadline.files.workdir import default_mode
from threadline.model import Message
from threadline.recorders.roles import FileLog
from threadline.store import ThreadStore

Edit = tuple[str, str, bytes | None, bytes]  # operation (tool call id), path, before, after

NO_BEFORE = "file edit without its before content"
NO_AFTER = "file edit whose result cannot be derived"
OUTSIDE = "file edit outside the working directory"


def claude_code_edits(messages: Sequence[Message], skip: dict[str, int]) -> list[Edit]:
    """The edits the ``toolUseResult`` of Claude Code tool results record."""
    edits: list[Edit] = []
    for message in messages:
        result = message.metadata.get("toolUseResult")
        if not isinstance(result, dict) or len(message.tool_results) != 1:
            continue
        path = result.get("filePath")
        if not isinstance(path, str):
            continue
        found = _claude_code_edit(result)
        if isinstance(found, str):
            skip[found] = skip.get(found, 0) + 1
            continue
        before, after = found
        edits.append((message.tool_results[0].tool_call_id, path, before, after))
    return edits


def _claude_code_edit(result: Mapping[str, JsonValue]) -> tuple[bytes | None, bytes] | str:
    """(before, after) of one result, or why it cannot be recorded."""
    original = result.get("originalFile", result.get("originalFileContents"))
    if "content" in result and result.get("type") in ("create", "update"):
        content = result.get("content")
        if not isinstance(content, str):
            return NO_AFTER
        if result.get("type") == "create":
            return None, content.encode()
        if not isinstance(original, str):
            return NO_BEFORE
        return original.encode(), content.encode()
    if not isinstance(original, str):
        return NO_BEFORE if ("oldString" in result or "edits" in result) else NO_AFTER
    steps: list[JsonValue] = []
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
        return NO_AFTER
    text = original
    for step in steps:
        if not isinstance(step, dict):
            return NO_AFTER
        old, new = step.get("old_string"), step.get("new_string")
        if not isinstance(old, str) or not isinstance(new, str) or old not in text:
            return NO_AFTER
        text = text.replace(old, new) if step.get("replace_all") else text.replace(old, new, 1)
    return original.encode(), text.encode()


def codex_edits(messages: Sequence[Message], skip: dict[str, int]) -> list[Edit]:
    """The files Codex ``apply_patch`` calls add (``*** Add File``); other hunks
    hold no full "before" and are counted as skipped."""
    edits: list[Edit] = []
    for message in messages:
        for call in message.tool_calls:
            if call.name != "apply_patch":
                continue
            patch = call.input.get("input", call.input.get("patch"))
            if not isinstance(patch, str):
                continue
            for path, content in _added_files(patch, skip):
                edits.append((call.id, path, None, content))
    return edits


def _added_files(patch: str, skip: dict[str, int]) -> list[tuple[str, bytes]]:
    added: list[tuple[str, bytes]] = []
    current: str | None = None
    lines: list[str] = []
    for line in patch.splitlines():
        if line.startswith("*** "):
            if current is not None:
                added.append((current, "".join(f"{text}\n" for text in lines).encode()))
            current, lines = None, []
            if line.startswith("*** Add File: "):
                current = line.removeprefix("*** Add File: ").strip()
            elif line.startswith(("*** Update File: ", "*** Delete File: ")):
                skip[NO_BEFORE] = skip.get(NO_BEFORE, 0) + 1
        elif current is not None and line.startswith("+"):
            lines.append(line[1:])
    return added


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
) -> dict[str, int]:
    """Record the file edits of newly imported ``messages`` (Claude Code or Codex)
    of ``thread_id``; returns what was left out and why (counts)."""
    skip: dict[str, int] = {}
    edits = claude_code_edits(messages, skip) + codex_edits(messages, skip)
    for reason, count in (await record_edits(store, thread_id, cwd, edits)).items():
        skip[reason] = skip.get(reason, 0) + count
    return skip


async def record_edits(
    store: ThreadStore, thread_id: str, cwd: JsonValue, edits: Sequence[Edit]
) -> dict[str, int]:
    """Record ``edits`` in the file log of ``thread_id`` (working directory
    ``cwd``), in order; returns what was left out and why (counts)."""
    skip: dict[str, int] = {}
    recorder = store.recorder
    if not edits or not isinstance(recorder, FileLog):
        return skip
    changes: list[NewFileChange] = []
    stored: dict[str, StoredContent] = {}
    mode = default_mode()
    for operation, path, before, after in edits:
        relative = _relative(path, cwd)
        if relative is None:
            skip[OUTSIDE] = skip.get(OUTSIDE, 0) + 1
            continue
        states: list[FileState | None] = []
        for data in (before, after):
            if data is None:
                states.append(None)
                continue
            digest = contents.content_hash(data)
            stored.setdefault(digest, contents.encode(data, digest=digest))
            states.append(FileState(hash=digest, size=len(data), mode=mode))
        if states[0] is not None and states[0] == states[1]:
            continue  # an edit that changed nothing
        changes.append(NewFileChange(operation, relative, states[0], states[1]))
    if changes:
        try:
            await recorder.record_file_changes(thread_id, changes, list(stored.values()))
        except ThreadlineError:
            skip["file edits of a thread that could not take them"] = len(changes)
    return skip
