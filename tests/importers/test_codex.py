"""The Codex importer on the synthetic rollouts (tests/fixtures/codex): a parent
session with tool calls, duplicated cumulative token counts, a compaction and a
spawned sub-agent, plus a malformed line and an unknown record type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from threadline import ThreadStore
from threadline.importers import import_codex
from threadline.model import Message

PARENT = "0197c5a0-0000-7000-8000-000000000001"
CHILD = "0197c5a0-0000-7000-8000-000000000002"
ROLLOUT = f"rollout-2025-07-01T09-00-00-{PARENT}.jsonl"


def meta(message: Message, *path: str | int) -> Any:
    """A value deep in a message's metadata (JSON, so untyped)."""
    return dig(message.metadata, *path)


def dig(value: Any, *path: str | int) -> Any:
    for key in path:
        value = value[key]
    return value


def rollout_of(folder: Path) -> Path:
    return next(folder.rglob(ROLLOUT))


async def test_report_counts_what_was_imported_and_skipped(
    store: ThreadStore, codex_dir: Path
) -> None:
    report = await import_codex(store, [codex_dir])
    assert (report.files, report.sessions, report.threads_created) == (2, 2, 3)
    assert (report.subagent_threads, report.summary_threads) == (1, 1)
    assert (report.messages, report.tool_calls, report.tool_results) == (13, 3, 3)
    assert (report.input_tokens, report.cache_read_tokens, report.output_tokens) == (
        5000,
        15000,
        500,
    )
    assert dict(report.skipped) == {
        "event_msg:agent_message": 1,
        "event_msg:context_compacted": 1,
        "event_msg:token_count (rate limits only)": 1,
        "event_msg:token_count (repeated)": 1,
        "event_msg:user_message": 1,
        "world_state": 1,
    }
    [bad] = report.malformed_lines
    assert (Path(bad.path).name, bad.line) == (ROLLOUT, 11)


async def test_rollout_maps_items_to_messages_and_env(store: ThreadStore, codex_dir: Path) -> None:
    await import_codex(store, [codex_dir])
    thread = await store.get_thread(PARENT)
    assert thread.title == "Rate limiter rejects first request"
    assert thread.env == {
        "agent": "codex",
        "cwd": "/home/dev/api",
        "git_branch": "fix/rate-limit",
        "git_commit": "abc123",
        "git_remote": "git@example.com:dev/api.git",
        "agent_version": "0.128.0",
        "originator": "codex_cli_rs",
    }
    assert dig(thread.metadata, "codex", "base_instructions") == {"text": "You are Codex."}
    shape = [
        (m.role, [c.name for c in m.tool_calls], [r.tool_call_id for r in m.tool_results])
        for m in thread.messages
    ]
    assert shape == [
        ("system", [], []),
        ("user", [], []),
        ("assistant", ["shell"], []),
        ("user", [], ["call_1"]),
        ("assistant", ["apply_patch"], []),
        ("user", [], ["call_2"]),
        ("assistant", ["spawn_agent"], []),
        ("user", [], ["call_3"]),
        ("assistant", [], []),
        ("system", [], []),
    ]
    shell = thread.messages[2]
    assert shell.tool_calls[0].input == {"command": ["rg", "-n", "bucket", "src/limiter.rs"]}
    assert meta(shell, "items", 0, "summary") == [
        {"type": "summary_text", "text": "Look at the limiter."}
    ]
    assert thread.messages[0].metadata["role"] == "developer"
    assert meta(thread.messages[1], "turn_context", "model") == "gpt-5-codex"
    assert "turn_context" not in thread.messages[4].metadata  # unchanged since


async def test_cumulative_token_counts_become_differences(
    store: ThreadStore, codex_dir: Path
) -> None:
    await import_codex(store, [codex_dir])
    thread = await store.get_thread(PARENT)
    usage = [
        (m.usage.input_tokens, m.usage.cache_read_tokens, m.usage.output_tokens)
        for m in thread.messages
        if m.usage is not None
    ]
    # totals 5000/4000/120 (written twice), 11000/9000/300, 18000/15000/420
    assert usage == [(1000, 4000, 120), (1000, 5000, 180), (1000, 6000, 120)]
    assert {m.usage.model for m in thread.messages if m.usage} == {"gpt-5-codex"}


async def test_subagent_rollout_is_linked_to_its_spawn_call(
    store: ThreadStore, codex_dir: Path
) -> None:
    await import_codex(store, [codex_dir])
    parent = await store.get_thread(PARENT)
    child = await store.get_thread(CHILD)
    assert parent.child_thread_ids == (CHILD,)
    assert child.parent_thread_id == PARENT
    assert child.metadata["spawned_by_tool_call"] == "call_3"
    assert [m.content for m in child.messages] == [
        "Write a regression test for the limiter",
        "Added test_first_request_passes.",
    ]


async def test_compaction_becomes_a_summary_thread(store: ThreadStore, codex_dir: Path) -> None:
    await import_codex(store, [codex_dir])
    parent = await store.get_thread(PARENT)
    [summary_id] = parent.summary_thread_ids
    summary = await store.get_thread(summary_id)
    assert summary.origin_thread_id == PARENT
    assert summary.messages[0].content == (
        "The user asked why the limiter rejected the first request; the bucket now starts full."
    )
    assert len(meta(summary.messages[0], "replacement_history")) == 1
    assert parent.messages[-1].metadata["summary_thread_id"] == summary_id


async def test_importing_twice_or_a_grown_rollout_adds_only_new_items(
    store: ThreadStore, codex_dir: Path
) -> None:
    await import_codex(store, [codex_dir])
    again = await import_codex(store, [codex_dir])
    assert (again.messages, again.threads_created, again.already_imported) == (0, 0, 13)
    rollout = rollout_of(codex_dir)
    resumed = (
        rollout.read_text()
        .splitlines()[3]
        .replace("Why does the rate limiter reject the first request?", "And the second one?")
    )
    resumed = resumed.replace("09:00:01.100Z", "10:00:00.000Z")
    with rollout.open("a") as handle:
        handle.write(resumed + "\n")
    grown = await import_codex(store, [codex_dir])
    assert (grown.messages, grown.threads_updated) == (1, 1)
    assert (await store.get_thread(PARENT)).messages[-1].content == "And the second one?"


async def test_a_fork_replaying_its_parent_adds_only_its_own_items(
    store: ThreadStore, codex_dir: Path
) -> None:
    rollout = rollout_of(codex_dir)
    lines = rollout.read_text().splitlines()
    fork_id = "0197c5a0-0000-7000-8000-0000000000f0"
    fork_meta = lines[0].replace(PARENT, fork_id).replace('"cli"', '"cli", "forked_from_id": "x"')
    fork_meta = fork_meta.replace("09:00:00.000Z", "12:00:00.000Z")
    own = lines[3].replace("reject the first request?", "reject bursts?")
    own = own.replace("09:00:01.100Z", "12:00:01.000Z")
    (rollout.parent / f"rollout-fork-{fork_id}.jsonl").write_text(
        "\n".join([fork_meta, *lines[1:10], own]) + "\n"
    )
    report = await import_codex(store, [codex_dir])
    fork = await store.get_thread(fork_id)
    assert [m.content for m in fork.messages] == ["Why does the rate limiter reject bursts?"]
    assert report.replayed == 5  # the parent's items the fork re-emitted
    assert dig(fork.metadata, "codex", "forked_from_id") == "x"
