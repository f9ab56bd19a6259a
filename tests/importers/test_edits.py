"""Agents' own edits become file changes on import (issue 14, item 5): Claude
Code ``Edit``/``MultiEdit``/``Write`` results, Codex ``apply_patch`` calls and
OpenHands ``file_editor`` results, with their contents before and after; a
content the transcript does not hold is recorded as not recorded, never
invented, and a rollback that would need it refuses that file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.importers.conftest import FIXTURES, samples
from threadline import ThreadStore
from threadline.files.log import UNKNOWN, FileState
from threadline.importers import import_claude_code, import_codex, import_openhands

ORIGINAL = "def total(items):\n    return sum(items)\n"
TAX = "RATE = 0.2\n"
SIDECHAIN_SESSION = "fe5e1c67-53e7-4862-81ae-d0e013e3270b"
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
    tax = str(cwd / "shop" / "tax.py")
    odd = str(cwd / "shop" / "odd.py")
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
        # Edits of a file the transcript never showed: an Edit without
        # originalFile (before and after unknown), then a Write over it (before
        # unknown, after its content); one outside the folder; a result that
        # is no edit (a plan); an Edit whose oldString the original lacks.
        _call(7, cwd, "t-blind", "Edit", {"file_path": tax}),
        _result(8, cwd, "t-blind", {"filePath": tax, "oldString": "0.1", "newString": "0.2"}),
        _call(9, cwd, "t-away", "Write", {"file_path": "/etc/motd", "content": "hi"}),
        _result(10, cwd, "t-away", {"type": "create", "filePath": "/etc/motd", "content": "hi"}),
        _call(11, cwd, "t-over", "Write", {"file_path": tax, "content": TAX}),
        _result(12, cwd, "t-over", {"type": "update", "filePath": tax, "content": TAX}),
        _call(13, cwd, "t-plan", "ExitPlanMode", {"plan": "p"}),
        _result(14, cwd, "t-plan", {"filePath": str(cwd / "plan.md"), "plan": "p"}),
        _call(15, cwd, "t-odd", "Edit", {"file_path": odd}),
        _result(
            16,
            cwd,
            "t-odd",
            {"filePath": odd, "oldString": "y", "newString": "z", "originalFile": "x = 1\n"},
        ),
    ]
    target = folder / "sess-edits.jsonl"
    target.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return target


def session_folder(tmp_path: Path) -> tuple[Path, Path]:
    """The working directory as the session left it, and its transcript."""
    cwd = tmp_path / "work"
    (cwd / "shop").mkdir(parents=True)
    (cwd / "shop" / "cart.py").write_text(MULTI)
    (cwd / "shop" / "tax.py").write_text(TAX)
    (cwd / "shop" / "odd.py").write_text("x = 2\n")
    return cwd, transcript(tmp_path, cwd)


async def test_claude_code_edits_are_file_changes_of_their_calls(tmp_path: Path) -> None:
    _, source = session_folder(tmp_path)
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_claude_code(store, [source])
        assert (report.edits_recorded, report.edits_unknown_before) == (6, 2)
        assert report.edits_unknown_after == 2
        assert dict(report.edits_left_out) == {"file edit outside the working directory": 1}
        assert report.to_json()["file_edits_unknown_before"] == 2
        changes = await store.file_changes("sess-edits")
        assert [(c.operation_id, c.path, c.type) for c in changes] == [
            ("t-write", "shop/cart.py", "create"),
            ("t-edit", "shop/cart.py", "modify"),
            ("t-multi", "shop/cart.py", "modify"),
            ("t-blind", "shop/tax.py", "modify"),
            ("t-over", "shop/tax.py", "modify"),
            ("t-odd", "shop/odd.py", "modify"),
        ]
        assert [(c.before_unknown, c.after_unknown) for c in changes[3:]] == [
            (True, True),
            (True, False),
            (False, True),
        ]
        assert isinstance(changes[4].after, FileState)
        assert await store.file_content(changes[4].after.hash) == TAX.encode()
        [operation] = await store.file_operations("sess-edits", operation_id="t-edit")
        [diff] = operation.changes
        assert "-    return sum(items)" in diff.diff
        assert "+    return sum(i.price for i in items)" in diff.diff
        plan = await store.rollback_operation("sess-edits", "t-multi", dry_run=True)
        assert [(f.path, f.action, f.status) for f in plan.files] == [
            ("shop/cart.py", "restore", "planned")
        ]
        again = await import_claude_code(store, [source])
        assert (again.messages, again.edits_recorded) == (0, 0)
        assert len(await store.file_changes("sess-edits")) == 6  # not recorded twice


async def test_changes_not_recorded_in_the_transcript_show_no_diff_and_refuse_rollback(
    tmp_path: Path,
) -> None:
    cwd, source = session_folder(tmp_path)
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        await import_claude_code(store, [source])
        diffs = {
            op.operation_id: op.changes[0].diff for op in await store.file_operations("sess-edits")
        }
        assert diffs["t-blind"] == (
            "before and after not recorded in the transcript: shop/tax.py ? -> ? bytes\n"
        )
        assert diffs["t-over"] == (
            f"before not recorded in the transcript: shop/tax.py ? -> {len(TAX)} bytes\n"
        )
        assert diffs["t-odd"] == "after not recorded in the transcript: shop/odd.py 6 -> ? bytes\n"

        # Undoing t-over needs tax.py as it was before: never recorded. A dry
        # run says so; a real rollback, forced or not, leaves the file alone.
        for force, dry_run in ((False, True), (False, False), (True, False)):
            report = await store.rollback_operation(
                "sess-edits", "t-over", force=force, dry_run=dry_run
            )
            [outcome] = report.files
            assert (outcome.path, outcome.action, outcome.status) == (
                "shop/tax.py",
                "none",
                "refused",
            )
            assert (outcome.unrecorded, outcome.forced, report.ok) == (True, False, False)
            assert outcome.reason is not None
            assert outcome.reason == (
                "its content before change #5 is not recorded (not in the transcript it was "
                "imported from), so it cannot be put back, not even with --force; restore it "
                "by hand (from version control, for instance)"
            )
            assert report.operation_id is None  # nothing written, nothing recorded
        assert (cwd / "shop" / "tax.py").read_text() == TAX
        assert len(await store.file_changes("sess-edits")) == 6

        # A rewind to the first message: cart.py goes, tax.py cannot go back.
        thread = await store.get_thread("sess-edits")
        plan = await store.rollback_to("sess-edits", thread.messages[0].id, dry_run=True)
        assert [(f.path, f.action, f.status, f.unrecorded) for f in plan.files] == [
            ("shop/cart.py", "remove", "planned", False),
            ("shop/odd.py", "none", "refused", False),
            ("shop/tax.py", "none", "refused", True),
        ]

        # t-odd left a content not recorded: whether odd.py was edited since is
        # not known, so only a forced rollback puts its known "before" back.
        [odd] = (await store.rollback_operation("sess-edits", "t-odd", dry_run=True)).files
        assert (odd.status, odd.unrecorded) == ("refused", False)
        assert odd.reason is not None
        assert odd.reason.startswith("what change #6 left is not recorded")
        forced = await store.rollback_operation("sess-edits", "t-odd", force=True)
        assert [(f.status, f.forced) for f in forced.files] == [("done", True)]
        assert (cwd / "shop" / "odd.py").read_text() == "x = 1\n"


def rollout(tmp_path: Path, cwd: Path, patch: str) -> Path:
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
    return source


async def test_codex_apply_patch_records_every_file_with_what_the_patch_holds(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "repo"
    patch = (
        "*** Begin Patch\n*** Add File: notes/todo.md\n+# To do\n+- ship it\n"
        "*** Update File: README.md\n@@\n-old\n+new\n"
        "*** Delete File: old.txt\n"
        "*** Update File: src/a.py\n*** Move to: src/b.py\n@@\n-a\n+b\n*** End Patch\n"
    )
    source = rollout(tmp_path, cwd, patch)
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_codex(store, [source])
        [head] = (await store.list_threads()).threads
        changes = await store.file_changes(head.id)
        assert [(c.operation_id, c.path, c.type) for c in changes] == [
            ("c-1", "notes/todo.md", "create"),
            ("c-1", "README.md", "modify"),
            ("c-1", "old.txt", "delete"),
            ("c-1", "src/a.py", "delete"),
            ("c-1", "src/b.py", "modify"),
        ]
        assert [(c.before, c.after) for c in changes[1:]] == [
            (UNKNOWN, UNKNOWN),
            (UNKNOWN, None),
            (UNKNOWN, None),
            (UNKNOWN, UNKNOWN),
        ]
        [operation] = await store.file_operations(head.id)
        assert "+- ship it" in operation.changes[0].diff
        assert (report.edits_recorded, report.edits_unknown_before) == (5, 4)
        assert (report.edits_unknown_after, dict(report.edits_left_out)) == (2, {})


def conversation(tmp_path: Path, cwd: Path) -> Path:
    """An OpenHands conversation whose file_editor creates a file, edits it,
    edits another it never showed, views one and fails an edit."""
    folder = tmp_path / "conversations" / "0c5e2d4a91b84c1e9d2f3a4b5c6d7e8f"
    (folder / "events").mkdir(parents=True)
    state = {"id": "0c5e2d4a-91b8-4c1e-9d2f-3a4b5c6d7e8f", "workspace": {"working_dir": str(cwd)}}
    (folder / "base_state.json").write_text(orjson.dumps(state).decode())
    steps: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
        (
            {"command": "create", "path": str(cwd / "a.py")},
            {"prev_exist": False, "new_content": "a = 1\n"},
            False,
        ),
        (
            {"command": "str_replace", "path": str(cwd / "a.py")},
            {"old_content": "a = 1\n", "new_content": "a = 2\n"},
            False,
        ),
        ({"command": "insert", "path": str(cwd / "b.py")}, {"new_content": "b = 1\n"}, False),
        ({"command": "view", "path": str(cwd / "a.py")}, {}, False),
        ({"command": "str_replace", "path": str(cwd / "a.py")}, {}, True),
    ]
    events: list[dict[str, Any]] = [
        {
            "id": "ev-user",
            "timestamp": "2026-02-05T11:24:40.000000",
            "source": "user",
            "llm_message": {"role": "user", "content": [{"type": "text", "text": "Edit"}]},
            "kind": "MessageEvent",
        }
    ]
    for n, (arguments, fields, is_error) in enumerate(steps):
        events.append(
            {
                "id": f"ev-act-{n}",
                "timestamp": f"2026-02-05T11:24:4{n}.100000",
                "source": "agent",
                "thought": [],
                "action": {**arguments, "kind": "FileEditorAction"},
                "tool_name": "file_editor",
                "tool_call_id": f"call-{n}",
                "tool_call": {
                    "id": f"call-{n}",
                    "name": "file_editor",
                    "arguments": orjson.dumps(arguments).decode(),
                },
                "kind": "ActionEvent",
            }
        )
        observation = {
            "content": [{"type": "text", "text": "done"}],
            "is_error": is_error,
            "command": arguments["command"],
            "path": arguments["path"],
            "prev_exist": True,
            **fields,
            "kind": "FileEditorObservation",
        }
        events.append(
            {
                "id": f"ev-obs-{n}",
                "timestamp": f"2026-02-05T11:24:4{n}.200000",
                "source": "environment",
                "tool_name": "file_editor",
                "tool_call_id": f"call-{n}",
                "observation": observation,
                "action_id": f"ev-act-{n}",
                "kind": "ObservationEvent",
            }
        )
    for index, event in enumerate(events):
        (folder / "events" / f"event-{index:05d}-{event['id']}.json").write_text(
            orjson.dumps(event).decode()
        )
    return folder


async def test_openhands_file_editor_results_are_file_changes(tmp_path: Path) -> None:
    cwd = tmp_path / "project"
    folder = conversation(tmp_path, cwd)
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_openhands(store, [folder])
        assert report.problems == []
        [head] = (await store.list_threads()).threads
        changes = await store.file_changes(head.id)
        assert [(c.operation_id, c.path, c.type) for c in changes] == [
            ("call-0", "a.py", "create"),
            ("call-1", "a.py", "modify"),
            ("call-2", "b.py", "modify"),
        ]
        assert (changes[2].before, changes[1].before_unknown) == (UNKNOWN, False)
        [create, edit, blind] = [op.changes[0].diff for op in await store.file_operations(head.id)]
        assert "+a = 1" in create
        assert "-a = 1\n+a = 2" in edit
        assert blind == "before not recorded in the transcript: b.py ? -> 6 bytes\n"
        assert (report.edits_recorded, report.edits_unknown_before) == (3, 1)
        assert (report.edits_unknown_after, dict(report.edits_left_out)) == (0, {})


async def test_real_samples_record_unknown_before_changes_instead_of_leaving_them_out(
    tmp_path: Path,
) -> None:
    """The Claude Code samples' three ``Write`` updates carry no ``originalFile``:
    each is a change from a content not recorded to the content written. Every
    other edit of theirs inside its session's folder has both sides."""
    folder = samples("claude-code")
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        report = await import_claude_code(store, [folder])
        assert (report.edits_recorded, report.edits_unknown_before) == (22, 3)
        assert report.edits_unknown_after == 0
        assert dict(report.edits_left_out) == {"file edit outside the working directory": 11}
        thread = f"{SIDECHAIN_SESSION}:sidechain-f4546a51-ea10-47e0-b4e0-76802974f8a9"
        unknown = [c for c in await store.file_changes(thread) if c.before_unknown]
        assert [(c.path, c.type, c.after_unknown) for c in unknown] == [
            ("types/todo.ts", "modify", False),
            ("types/filters.ts", "modify", False),
            ("types/actions.ts", "modify", False),
        ]
        [operation] = await store.file_operations(thread, operation_id=unknown[0].operation_id)
        assert operation.changes[0].diff == (
            "before not recorded in the transcript: types/todo.ts ? -> 549 bytes\n"
        )


async def test_codex_fixture_and_sample_patches(tmp_path: Path) -> None:
    """The Codex fixture's ``apply_patch`` updates src/limiter.rs: recorded with
    both contents not recorded. The real Codex sample makes no patch."""
    async with await ThreadStore.open(tmp_path / "threads.db") as store:
        fixture = await import_codex(store, [FIXTURES / "codex"])
        assert (fixture.edits_recorded, fixture.edits_unknown_before) == (1, 1)
        assert (fixture.edits_unknown_after, dict(fixture.edits_left_out)) == (1, {})
        sample = await import_codex(store, [samples("codex")])
        assert (sample.edits_recorded, dict(sample.edits_left_out)) == (0, {})
