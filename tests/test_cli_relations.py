"""``threadline spawn``, ``summarize``, ``tree`` and ``cost`` through a real subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import fails, run_cli, succeeds, succeeds_json
from threadline import Message, ThreadStore, Usage

DAY = 86_400_000
FIRST_DAY = 20_089  # 2025-01-01


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def answer(model: str, cost: float | None, day: int = FIRST_DAY) -> Message:
    return Message(
        role="assistant",
        content="done",
        timestamp=day * DAY + 5,
        usage=Usage(model=model, input_tokens=1_000, output_tokens=100, cost_usd=cost),
    )


async def test_spawn_summarize_and_tree(home: Path) -> None:
    async with await ThreadStore.open(home / "threads.db") as store:
        root = await store.create_thread(
            id="T-root",
            title="Fix login",
            messages=[answer("gpt-5", 0.25)],
            capture_environment=False,
        )
    child = succeeds(run_cli(home, "spawn", root.id, "Find the failing test")).strip()
    summary = succeeds(run_cli(home, "summarize", root.id, stdin="Fixed it.\n")).strip()
    async with await ThreadStore.open(home / "threads.db") as store:
        grandchild = await store.spawn_subagent_thread(child, "Run pytest")
        gone = await store.spawn_subagent_thread(child, "Ephemeral")
        await store.delete_thread(gone.id)
        assert (await store.get_thread(summary)).messages[0].content == "Fixed it."

    tree = succeeds_json(run_cli(home, "tree", grandchild.id, "--root", "--json"))
    assert [(n["id"], n["kind"], n["depth"]) for n in tree["nodes"]] == [
        (root.id, "root", 0),
        (child, "child", 1),
        (grandchild.id, "child", 2),
        (gone.id, "child", 2),
        (summary, "summary", 1),
    ]
    assert tree["nodes"][1]["head"]["title"] == "Task: Find the failing test"
    assert tree["nodes"][3]["head"] is None
    assert tree["costs"][root.id]["cost_usd"] == 0.25
    assert tree["total"]["messages"] == 1

    drawn = succeeds(run_cli(home, "tree", root.id)).splitlines()
    assert drawn[0] == f"Fix login  {root.id}  1 messages · $0.2500"
    assert drawn[1] == f"├── sub-agent Task: Find the failing test  {child}  1 messages · $0.0000"
    assert drawn[2].endswith(f"sub-agent Task: Run pytest  {grandchild.id}  1 messages · $0.0000")
    assert drawn[3].endswith(f"sub-agent {gone.id} missing (deleted)")
    assert drawn[4] == f"└── summary Summary: Fix login  {summary}  1 messages · $0.0000"
    assert drawn[5] == "5 thread(s), $0.2500 in all, 1 missing"


async def test_cost_of_a_tree_by_model_says_what_was_computed(home: Path) -> None:
    async with await ThreadStore.open(home / "threads.db") as store:
        root = await store.create_thread(
            messages=[answer("gpt-5", 0.5), answer("claude-sonnet-4-5", None)],
            capture_environment=False,
        )
        child = await store.spawn_subagent_thread(root.id, "sub")
        await store.append_message(child.id, answer("mystery-model", None, day=FIRST_DAY + 1))
        expected = await store.cost_report(root.id, tree=True, by="model")
    report = succeeds_json(run_cli(home, "cost", root.id, "--tree", "--by", "model", "--json"))
    assert report == expected.model_dump(mode="json")
    assert [(g["key"], g["messages"]) for g in report["groups"]] == [
        ("claude-sonnet-4-5", 1),
        ("gpt-5", 1),
        ("mystery-model", 1),
    ]
    assert report["total"]["computed_messages"] == 1
    assert report["unknown_models"] == ["mystery-model"]

    text = succeeds(run_cli(home, "cost", "--by", "day"))
    assert "2025-01-01" in text
    assert "2025-01-02" in text
    computed = expected.total.computed_cost_usd
    assert f"* includes ${computed:.4f} computed for 1 message(s) that recorded no cost" in text
    assert "models without a price: mystery-model" in text


def test_unknown_parent_and_tree_without_id_are_errors(home: Path) -> None:
    assert "Thread T-nope not found" in fails(run_cli(home, "spawn", "T-nope", "task"), 1)
    assert "--tree needs a thread ID" in fails(run_cli(home, "cost", "--tree"), 2)
