"""The importers on real agent transcripts (../shared/samples; skipped where absent).

Counts are exact. Where a figure can be derived from the raw lines by a
simpler, independent rule (one message per user line and per distinct
``(message.id, requestId)``, the last line's usage), the test derives it.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import samples
from threadline import ThreadStore
from threadline.export import collect, to_json
from threadline.importers import import_claude_code, import_codex, import_export
from threadline.recorders import MemoryRecorder

SIDECHAIN_SESSION = "fe5e1c67-53e7-4862-81ae-d0e013e3270b"


async def test_claude_code_samples_import_with_exact_counts(store: ThreadStore) -> None:
    report = await import_claude_code(store, [samples("claude-code")])
    # spotter/subagent.jsonl's sub-agent exists only as 19 agent_progress records
    # (15 messages, 9 tool calls): a child thread of its own (issue 13).
    assert (report.files, report.sessions, report.threads_created) == (9, 8, 18)
    assert (report.subagent_threads, report.summary_threads) == (9, 1)
    assert (report.messages, report.tool_calls, report.tool_results) == (497, 233, 233)
    assert (report.input_tokens, report.output_tokens) == (2853, 58384)
    assert (report.cache_read_tokens, report.cache_write_tokens) == (4700764, 271124)
    assert (report.malformed, report.replayed, report.unlinked) == (0, 0, [])
    assert dict(report.skipped) == {
        "file-history-snapshot": 7,
        "last-prompt": 1,
        "progress": 38,
        "queue-operation": 4,
        "system:local_command": 4,
        "system:stop_hook_summary": 1,
    }
    again = await import_claude_code(store, [samples("claude-code")])
    assert (again.messages, again.threads_created, again.already_imported) == (0, 0, 497)


def _independent_count(path: Path) -> tuple[int, int]:
    """(messages, output tokens) of a session's main thread, by the plain rule."""
    users = 0
    last_usage: dict[tuple[str, str | None], int] = {}
    for raw in path.read_bytes().splitlines():
        line = orjson.loads(raw)
        if line.get("isSidechain") or line.get("type") not in ("user", "assistant", "system"):
            continue
        if line["type"] == "user":
            users += 1
        elif line["type"] == "system":
            users += line.get("subtype") == "compact_boundary"
        else:
            key = (line["message"]["id"], line.get("requestId"))
            last_usage[key] = line["message"]["usage"]["output_tokens"]
    return users + len(last_usage), sum(last_usage.values())


@pytest.mark.parametrize(
    "name",
    [
        "spotter/subagent.jsonl",
        "spotter/tool_heavy.jsonl",
        "spotter/short.jsonl",
        "claude-code-viewer/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl",
        "claude-code-viewer/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl",
        "agent-history/session-01.jsonl",
    ],
)
async def test_each_response_counts_once_with_its_last_usage(store: ThreadStore, name: str) -> None:
    path = samples("claude-code") / name
    await import_claude_code(store, [path])
    session_id = orjson.loads(path.read_bytes().splitlines()[-1]).get("sessionId")
    page = await store.list_threads(limit=100)
    [head] = [h for h in page.threads if h.parent_thread_id is None and h.id == session_id]
    assert (head.message_count, head.totals.output_tokens) == _independent_count(path)


async def test_spotter_session_has_twelve_responses_from_28_lines(store: ThreadStore) -> None:
    await import_claude_code(store, [samples("claude-code", "spotter", "subagent.jsonl")])
    thread = await store.get_thread("491e126e-1e71-469c-ade2-fcc8af567c74")
    assert sum(m.role == "assistant" for m in thread.messages) == 12
    assert sum(m.role == "user" for m in thread.messages) == 20
    assert thread.env == {
        "agent": "claude-code",
        "cwd": "/home/marco/projects/spotter",
        "git_branch": "master",
        "agent_version": "2.1.38",
    }


async def test_inline_sidechains_become_children_of_their_task_calls(store: ThreadStore) -> None:
    await import_claude_code(store, [samples("claude-code", "claude-code-viewer")])
    parent = await store.get_thread(SIDECHAIN_SESSION)
    assert parent.title == "Empty Repo Setup: CLAUDE.md Foundation Created"  # legacy summary line
    tasks = {c.id: c for m in parent.messages for c in m.tool_calls if c.name == "Task"}
    assert len(parent.child_thread_ids) == len(tasks) == 5
    spawned = set()
    for child_id in parent.child_thread_ids:
        child = await store.get_thread(child_id)
        call = tasks[str(child.metadata["spawned_by_tool_call"])]
        assert child.messages[0].content == call.input["prompt"]
        assert child.title == f"Task: {call.input['description']}"
        spawned.add(call.id)
    assert spawned == set(tasks)


async def test_codex_sample_usage_is_the_cumulative_difference(store: ThreadStore) -> None:
    report = await import_codex(store, [samples("codex")])
    assert (report.sessions, report.messages, report.malformed) == (1, 4, 0)
    thread = await store.get_thread("019e9625-802f-7e91-840a-cfe88d14117a")
    assert [m.role for m in thread.messages] == ["system", "user", "user", "assistant"]
    usage = thread.messages[-1].usage
    assert usage is not None
    assert (usage.model, usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (
        "gpt-5.5",
        22539 - 20864,
        20864,
        10,
    )
    assert thread.env["agent_version"] == "0.135.0"


async def test_json_export_imports_into_another_store_as_the_same_threads(
    store: ThreadStore, tmp_path: Path
) -> None:
    await import_claude_code(store, [samples("claude-code", "claude-code-viewer")])
    tree = await collect(store, SIDECHAIN_SESSION, tree=True)
    exported = tmp_path / "export.json"
    exported.write_bytes(to_json(tree.threads))
    async with ThreadStore(MemoryRecorder()) as other:
        report = await import_export(other, [exported])
        assert report.threads_created == 6
        for thread in tree.threads:
            copy = await other.get_thread(thread.id)
            assert copy.model_dump(exclude={"v"}) == thread.model_dump(exclude={"v"})


async def test_sqlite_and_memory_search_agree_on_real_transcripts(store: ThreadStore) -> None:
    """Both backends find the same messages with the same BM25 scores (FTS5
    counts a few newer emoji as word characters, which moves the average
    document length, and so the scores, by less than 0.1%)."""
    await import_claude_code(store, [samples("claude-code")])
    async with ThreadStore(MemoryRecorder()) as memory:
        await import_claude_code(memory, [samples("claude-code")])
        for query in (
            "TodoWrite",
            "create-next-app",
            '"package.json"',
            "phoenix server",
            "redact*",
        ):
            in_sqlite = await store.search(query, limit=500)
            in_memory = await memory.search(query, limit=500)
            assert in_sqlite, query
            assert {(h.thread_id, h.message_id): h.score for h in in_sqlite} == pytest.approx(
                {(h.thread_id, h.message_id): h.score for h in in_memory}, rel=1e-3
            ), query
