"""Agents' own edits become file changes on import (issue 14, item 5): Claude
Code ``Edit``/``MultiEdit``/``Write`` results and Codex ``apply_patch``'s added
files, with their contents before and after; nothing is invented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from threadline import ThreadStore
from threadline.importers import import_claude_code, import_codex

ORIGINAL = "def total(items):\n    return sum(items)\n"
EDITED = "def total(items):\n    return sum(i.price for i in items)\n"
MULTI = "def total(items):\n    return round(sum(i.price for i in items), 2)\n"


def _line(n: int, cwd: Path, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "parentUuid": f"x-{n - 1}" if n else None,
        "isSidechain": False,
        "cwd": str(cwd),
        "sessionId": "sess-edits",
        "type": kind,
        "uuid": f"x-{n}",
        "timestamp": f"2025-07-01T10:00:{n:02d}.000Z",
        **fields,
    }


def _call(n: int, cwd: Path, call_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "tool_use", "id": call_id, "name": name, "input": tool_input}]
    message: dict[str, Any] = {
        "id": f"msg_{n}",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "usage": {"input_tokens": 5, "output_tokens": 5},
    }
    return _line(n, cwd, "assistant", requestId=f"req_{n}", message=message)


def _result(n: int, cwd: Path, call_id: str, result: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "tool_result", "tool_use_id": call_id, "content": "ok"}]
    return _line(n, cwd, "user", message={"role": "user", "content": content}, toolUseResult=result)


def transcript(folder: Path, cwd: Path) -> Path:
    path = str(cwd / "shop" / "cart.py")
    lines = [
        _line(0, cwd, "user", message={"role": "user", "content": "Fix the cart total"}),
        _call(1, cwd, "t-write", "Write", {"file_path": path, "content": ORIGINAL}),
        _result(2, cwd, "t-write", {"type": "create", "filePath": path, "content": ORIGINAL}),
        _call(3, cwd, "t-edit", "Edit", {"file_path": path}),
        _result(
            4,
            cwd,
            "t-edit",
            {
                "filePath": path,
                "oldString": "sum(items)",
                "newString": "sum(i.price for i in items)",
                "originalFile": ORIGINAL,
                "replaceAll": False,
            },
        ),
        _call(5, cwd, "t-multi", "MultiEdit", {"file_path": path}),
        _result(
            6,
            cwd,
            "t-multi",
            {
                "filePath": path,
                "edits": [
                    {"old_string": "return sum", "new_string": "return round(sum"},
                    {"old_string": "items)\n", "new_string": "items), 2)\n"},
                ],
                "originalFileContents": EDITED,
            },
        ),
        # An edit whose "before" the transcript lacks, and one outside the folder.
        _call(7, cwd, "t-blind", "Edit", {"file_path": path}),
        _result(8, cwd, "t-blind", {"filePath": path, "oldString": "a", "newString": "b"}),
        _call(9, cwd, "t-away", "Write", {"file_path": "/etc/motd", "content": "hi"}),
        _result(10, cwd, "t-away", {"type": "create", "filePath": "/etc/motd", "content": "hi"}),
    ]
    target = folder / "sess-edits.jsonl"
    target.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return target


async def test_claude_code_edits_are_file_changes_of_their_calls(tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    (cwd / "shop").mkdir(parents=True)
    (cwd / "shop" / "cart.py").write_text(MULTI)  # the file as the session left it
    source = transcript(tmp_path, cwd)
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_claude_code(store, [source])
        assert dict(report.edits_left_out) == {
            "file edit without its before content": 1,
            "file edit outside the working directory": 1,
        }
        changes = await store.file_changes("sess-edits")
        assert [(c.operation_id, c.path, c.type) for c in changes] == [
            ("t-write", "shop/cart.py", "create"),
            ("t-edit", "shop/cart.py", "modify"),
            ("t-multi", "shop/cart.py", "modify"),
        ]
        [operation] = await store.file_operations("sess-edits", operation_id="t-edit")
        [diff] = operation.changes
        assert "-    return sum(items)" in diff.diff
        assert "+    return sum(i.price for i in items)" in diff.diff
        plan = await store.rollback_operation("sess-edits", "t-multi", dry_run=True)
        assert [(f.path, f.action, f.status) for f in plan.files] == [
            ("shop/cart.py", "restore", "planned")
        ]
        again = await import_claude_code(store, [source])
        assert again.messages == 0
        assert len(await store.file_changes("sess-edits")) == 3  # not recorded twice


async def test_codex_apply_patch_records_added_files_only(tmp_path: Path) -> None:
    cwd = tmp_path / "repo"
    patch = (
        "*** Begin Patch\n*** Add File: notes/todo.md\n+# To do\n+- ship it\n"
        "*** Update File: README.md\n@@\n-old\n+new\n*** End Patch\n"
    )
    lines = [
        {
            "timestamp": "2025-07-01T10:00:00.000Z",
            "type": "session_meta",
            "payload": {
                "id": "rollout-edits",
                "timestamp": "2025-07-01T10:00:00.000Z",
                "cwd": str(cwd),
            },
        },
        {
            "timestamp": "2025-07-01T10:00:01.000Z",
            "type": "response_item",
            "payload": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Write the notes"}],
            },
        },
        {
            "timestamp": "2025-07-01T10:00:02.000Z",
            "type": "response_item",
            "payload": {
                "type": "custom_tool_call",
                "name": "apply_patch",
                "call_id": "c-1",
                "input": patch,
            },
        },
        {
            "timestamp": "2025-07-01T10:00:03.000Z",
            "type": "response_item",
            "payload": {"type": "custom_tool_call_output", "call_id": "c-1", "output": "Done"},
        },
    ]
    source = tmp_path / "rollout-edits.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_codex(store, [source])
        [head] = (await store.list_threads()).threads
        changes = await store.file_changes(head.id)
        assert [(c.operation_id, c.path, c.type) for c in changes] == [
            ("c-1", "notes/todo.md", "create")
        ]
        [operation] = await store.file_operations(head.id)
        assert "+- ship it" in operation.changes[0].diff
        assert dict(report.edits_left_out) == {"file edit without its before content": 1}
