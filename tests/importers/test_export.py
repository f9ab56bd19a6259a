"""Export (json, jsonl, md, with or without the tree) and importing an export."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from threadline import Message, ThreadStore, ToolCall, ToolResult, Usage
from threadline.deltas import ChildLinkDelta, SummaryLinkDelta, TitleDelta, TruncateDelta
from threadline.errors import ThreadNotFound
from threadline.export import collect, render, to_json, to_jsonl, to_markdown
from threadline.importers import import_export
from threadline.recorders import MemoryRecorder


async def make_tree(store: ThreadStore) -> None:
    """A root with a sub-agent, a summary, a retitle, a truncate and a dangling link."""
    await store.create_thread(
        id="T-root",
        title="first title",
        created=1_751_364_000_000,
        env={"cwd": "/src/app", "git_branch": "main"},
        metadata={"team": "web"},
        capture_environment=False,
        messages=[
            Message(
                id="M-1",
                role="user",
                content="Fix the <b>bold</b> bug",
                timestamp=1_751_364_001_000,
            ),
            Message(
                id="M-2",
                role="assistant",
                content="Running the tests",
                timestamp=1_751_364_002_000,
                tool_calls=(ToolCall(id="c1", name="bash", input={"cmd": "pytest -q"}),),
                usage=Usage(model="m", input_tokens=100, output_tokens=20, cost_usd=0.5),
            ),
            Message(
                id="M-3",
                role="user",
                timestamp=1_751_364_003_000,
                tool_results=(
                    ToolResult(tool_call_id="c1", output="```\n1 failed", is_error=True),
                ),
            ),
            Message(id="M-4", role="assistant", content="dropped", timestamp=1_751_364_004_000),
        ],
    )
    await store.create_thread(
        id="T-child",
        title="Task: run tests",
        parent_thread_id="T-root",
        capture_environment=False,
        messages=[Message(id="M-c", role="user", content="run them", timestamp=1)],
        created=1,
    )
    await store.create_thread(
        id="T-sum",
        title="Summary: first title",
        origin_thread_id="T-root",
        capture_environment=False,
        created=2,
        messages=[Message(id="M-s", role="assistant", content="It was a bug.", timestamp=2)],
    )
    head = await store.recorder.head("T-root")
    assert head is not None
    await store.append_deltas(
        "T-root",
        head.v,
        [
            TruncateDelta(from_index=3),
            TitleDelta(value="Fix the bold bug"),
            ChildLinkDelta(thread_id="T-child"),
            ChildLinkDelta(thread_id="T-gone"),
            SummaryLinkDelta(thread_id="T-sum"),
        ],
    )


@pytest.fixture
async def memory_store() -> ThreadStore:
    store = ThreadStore(MemoryRecorder())
    await make_tree(store)
    return store


async def test_tree_is_breadth_first_and_reports_missing_threads(memory_store: ThreadStore) -> None:
    tree = await collect(memory_store, "T-root", tree=True)
    assert [t.id for t in tree.threads] == ["T-root", "T-child", "T-sum"]
    assert tree.missing == ["T-gone"]
    alone = await collect(memory_store, "T-root")
    assert [t.id for t in alone.threads] == ["T-root"]
    with pytest.raises(ThreadNotFound):
        await collect(memory_store, "T-nope")


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
async def test_export_imports_into_another_store_as_the_same_threads(
    memory_store: ThreadStore, tmp_path: Path, fmt: str
) -> None:
    tree = await collect(memory_store, "T-root", tree=True)
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(render(tree.threads, "json" if fmt == "json" else "jsonl"))
    async with await ThreadStore.open(tmp_path / "other.db") as other:
        report = await import_export(other, [path])
        assert (report.threads_created, report.messages, report.malformed) == (3, 5, 0)
        for thread in tree.threads:
            copy = await other.get_thread(thread.id)
            assert copy.model_dump(exclude={"v"}) == thread.model_dump(exclude={"v"})
        again = await import_export(other, [path])
        assert (again.threads_created, again.threads_updated, again.messages) == (0, 0, 0)


def test_jsonl_is_a_thread_line_then_its_messages() -> None:
    from threadline.model import Thread

    thread = Thread(id="T-1", created=5, messages=(Message(id="M-1", role="user", timestamp=6),))
    lines = [orjson.loads(line) for line in to_jsonl([thread]).splitlines()]
    assert [line["type"] for line in lines] == ["thread", "message"]
    assert lines[1] == {
        "type": "message",
        "thread_id": "T-1",
        "id": "M-1",
        "role": "user",
        "content": "",
        "timestamp": 6,
    }
    document = orjson.loads(to_json([thread]))
    assert (document["format"], document["version"]) == ("threadline-export", 1)


async def test_markdown_shows_turns_folded_tools_and_costs(memory_store: ThreadStore) -> None:
    tree = await collect(memory_store, "T-root", tree=True)
    text = to_markdown(tree.threads)
    assert text.startswith("# Fix the bold bug\n\nid `T-root` · created 2025-07-01 10:00:00 UTC")
    assert "3 messages · 100 in / 20 out tokens · cost $0.5000" in text
    assert (
        "cwd `/src/app` · git_branch `main` · sub-agents `T-child`, `T-gone` · summaries `T-sum`"
        in text
    )
    assert "## 1. User · 2025-07-01 10:00:01 UTC\n\nFix the <b>bold</b> bug" in text
    assert "## 2. Assistant · 2025-07-01 10:00:02 UTC · m · 100 in · 20 out · $0.5000" in text
    assert (
        '<details><summary>Tool call: bash(cmd="pytest -q")</summary>\n\n'
        '```json\n{\n  "cmd": "pytest -q"\n}\n```' in text
    )
    # an output holding a fence gets a longer one
    assert "<details><summary>Result of bash (error)</summary>\n\n````\n```\n1 failed\n````" in text
    assert "dropped" not in text  # truncated
    assert "\n\n---\n\n# Task: run tests\n" in text
    assert "\n\n---\n\n# Summary: first title\n" in text
