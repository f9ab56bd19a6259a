"""Regression tests for the importer fidelity fixes of issue 13 (item 5)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run_cli
from threadline import ThreadStore
from threadline.importers import import_claude_code, import_codex

SESSION = "11111111-2222-3333-4444-555555555555"


def _jsonl(path: Path, records: list[dict[str, object]], prefix: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + b"".join(json.dumps(r).encode() + b"\n" for r in records))
    return path


def _user(uuid: str, text: str, parent: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "type": "user",
        "uuid": uuid,
        "parentUuid": parent,
        "sessionId": SESSION,
        "timestamp": "2026-01-01T00:00:00Z",
        "message": {"role": "user", "content": text},
        **extra,
    }


def _assistant(uuid: str, text: str, parent: str, **extra: object) -> dict[str, object]:
    return {
        "type": "assistant",
        "uuid": uuid,
        "parentUuid": parent,
        "sessionId": SESSION,
        "timestamp": "2026-01-01T00:00:01Z",
        "requestId": "req-" + uuid,
        "message": {
            "id": "msg-" + uuid,
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 3, "output_tokens": 7},
        },
        **extra,
    }


async def test_codex_web_searches_of_one_turn_get_distinct_tool_call_ids(
    store: ThreadStore, tmp_path: Path
) -> None:
    def line(stamp: str, payload: dict[str, object]) -> dict[str, object]:
        return {"timestamp": stamp, "type": "response_item", "payload": payload}

    search = {"type": "web_search_call", "status": "completed"}
    path = _jsonl(
        tmp_path / "rollout.jsonl",
        [
            {"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta", "payload": {"id": "cx"}},
            line(
                "2026-01-01T00:00:01Z",
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "q"}],
                },
            ),
            line("2026-01-01T00:00:02Z", {**search, "action": {"query": "one"}}),
            line("2026-01-01T00:00:03Z", {**search, "action": {"query": "two"}}),
        ],
    )
    await import_codex(store, [path])
    thread = await store.get_thread("cx")
    calls = [call for m in thread.messages for call in m.tool_calls]
    assert [call.input["query"] for call in calls] == ["one", "two"]
    assert len({call.id for call in calls}) == 2


async def test_assistant_line_without_message_is_reported_and_not_stored(
    store: ThreadStore, tmp_path: Path
) -> None:
    broken = {k: v for k, v in _assistant("a2", "", "u1").items() if k != "message"}
    path = _jsonl(tmp_path / f"{SESSION}.jsonl", [_user("u1", "hello"), broken])
    report = await import_claude_code(store, [path])
    assert [bad.line for bad in report.malformed_lines] == [2]
    thread = await store.get_thread(SESSION)
    assert [m.id for m in thread.messages] == ["u1"]


async def test_a_byte_order_mark_does_not_make_the_first_line_malformed(
    store: ThreadStore, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / f"{SESSION}.jsonl",
        [_user("u1", "hello"), _assistant("a1", "hi", "u1")],
        prefix=b"\xef\xbb\xbf",
    )
    report = await import_claude_code(store, [path])
    assert report.malformed == 0
    assert [m.id for m in (await store.get_thread(SESSION)).messages] == ["u1", "a1"]


async def test_one_compaction_gives_one_summary_thread_when_the_summariser_starts_elsewhere(
    store: ThreadStore, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    boundary: dict[str, object] = {
        "type": "system",
        "subtype": "compact_boundary",
        "uuid": "b1",
        "parentUuid": None,
        "logicalParentUuid": "a1",
        "sessionId": SESSION,
        "timestamp": "2026-01-01T00:01:00Z",
        "content": "Conversation compacted",
    }
    summary = _user("s1", "Summary of the conversation", "b1", isCompactSummary=True)
    summary["timestamp"] = "2026-01-01T00:01:01Z"
    _jsonl(
        folder / f"{SESSION}.jsonl",
        [_user("u1", "hello"), _assistant("a1", "hi", "u1"), boundary, summary],
    )
    # The summariser's run starts at another line than the boundary's logical parent.
    _jsonl(
        folder / SESSION / "subagents" / "agent-acompact-x1.jsonl",
        [
            _user("c1", "Summarise", "u1", isSidechain=True, agentId="acompact-x1"),
            _assistant("c2", "The summary", "c1", isSidechain=True, agentId="acompact-x1"),
        ],
    )
    report = await import_claude_code(store, [folder])
    assert report.summary_threads == 1
    head = await store.get_thread(SESSION)
    assert len(head.summary_thread_ids) == 1
    summary_thread = await store.get_thread(head.summary_thread_ids[0])
    assert [m.id for m in summary_thread.messages] == ["c1", "c2", "s1:summary"]


def test_import_of_nothing_of_the_agent_says_so_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(home, "import", "claude-code", str(empty))
    assert result.returncode == 1
    assert "no Claude Code session found" in result.stderr
    codex_file = _jsonl(
        tmp_path / "rollout.jsonl",
        [{"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta", "payload": {"id": "c"}}],
    )
    result = run_cli(home, "import", "claude-code", str(codex_file))
    assert result.returncode == 1
    assert "no Claude Code session found" in result.stderr


def test_a_missing_path_is_reported_and_the_others_imported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = _jsonl(tmp_path / f"{SESSION}.jsonl", [_user("u1", "hello")])
    missing = tmp_path / "nowhere.jsonl"
    result = run_cli(home, "import", "claude-code", str(missing), str(path), "--json")
    assert result.returncode == 1
    assert f"no such file or folder: {missing}" in result.stderr
    assert json.loads(result.stdout)["messages"] == 1


def _progress(agent: str, inner: dict[str, object], tool_use: str) -> dict[str, object]:
    """An ``agent_progress`` record carrying one line of a sub-agent's run."""
    return {
        "type": "progress",
        "uuid": "p-" + str(inner["uuid"]),
        "parentUuid": None,
        "sessionId": SESSION,
        "timestamp": inner["timestamp"],
        "parentToolUseID": tool_use,
        "data": {"type": "agent_progress", "agentId": agent, "prompt": "Look", "message": inner},
    }


async def test_a_sub_agent_known_only_from_progress_records_is_its_own_child_thread(
    store: ThreadStore, tmp_path: Path
) -> None:
    task = _assistant("a1", "", "u1")
    task["message"]["content"] = [  # type: ignore[index]
        {"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {"prompt": "Look"}}
    ]
    asked = _user("s1", "Look", None)
    first = _assistant("s2", "Looking", "s1")  # one response in two lines, usage on each
    second = _assistant("s3", "Found it", "s2")
    second["message"] = {**first["message"], "content": [{"type": "text", "text": "Found it"}]}  # type: ignore[dict-item]
    second["message"]["usage"] = {"input_tokens": 3, "output_tokens": 40}  # type: ignore[index]
    second["requestId"] = first["requestId"]
    records = [
        _user("u1", "find the bug"),
        task,
        *(_progress("ab1", line, "toolu_task") for line in (asked, first, second, first)),
        _user("u2", "", "a1", toolUseResult={"agentId": "ab1", "status": "completed"}),
    ]
    records[-1]["message"] = {  # the Task's result
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_task", "content": "done"}],
    }
    path = _jsonl(tmp_path / "project" / f"{SESSION}.jsonl", records)
    report = await import_claude_code(store, [path])
    assert report.subagent_threads == 1
    child = await store.get_thread(f"{SESSION}:agent-ab1")
    assert child.parent_thread_id == SESSION
    assert [m.id for m in child.messages] == ["s1", "s2"]  # the repeated record once
    usage = child.messages[1].usage
    assert usage is not None
    assert usage.output_tokens == 40  # the response's last line
    assert child.metadata["spawned_by_tool_call"] == "toolu_task"
    assert (await store.get_thread(SESSION)).child_thread_ids == (f"{SESSION}:agent-ab1",)

    # With the agent's own file beside it, the progress records add nothing.
    agent_file = tmp_path / "project" / SESSION / "subagents" / "agent-ab1.jsonl"
    _jsonl(
        agent_file,
        [{**line, "isSidechain": True, "agentId": "ab1"} for line in (asked, first, second)],
    )
    again = await import_claude_code(store, [tmp_path / "project"])
    assert (again.messages, again.subagent_threads) == (0, 0)
