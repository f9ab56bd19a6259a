"""The Claude Code importer on the synthetic fixture (tests/fixtures/claude_code):
a session with a sub-agent file, a compaction and its summariser run, a
malformed line and unknown record types, and a resumed session that replays
the first turn."""

from __future__ import annotations

from pathlib import Path

from tests.importers.conftest import FIXTURES
from threadline import ThreadStore
from threadline.importers import import_claude_code

SESSION = "sess-1"
ORDER = ["u-001", "a-001", "u-002", "a-004", "u-003", "u-004", "a-006", "cb-1", "cs-1"]
ORDER += ["u-005", "a-007"]


async def test_report_counts_what_was_imported_and_skipped(
    store: ThreadStore, claude_dir: Path
) -> None:
    report = await import_claude_code(store, [claude_dir])
    assert (report.files, report.sessions, report.threads_created) == (4, 2, 4)
    assert (report.subagent_threads, report.summary_threads) == (1, 1)
    assert (report.messages, report.tool_calls, report.tool_results) == (20, 4, 4)
    assert report.replayed == 4  # sess-2 replays the first prompt and its 3-line response
    assert (report.input_tokens, report.output_tokens) == (9710, 401)
    assert (report.cache_read_tokens, report.cache_write_tokens) == (16100, 2000)
    assert report.computed_cost_messages + report.unpriced_messages == 8
    assert dict(report.skipped) == {
        "brand-new-type": 1,
        "file-history-snapshot": 1,
        "progress": 2,
        "queue-operation": 1,
        "system:turn_duration": 1,
    }
    assert report.malformed == 1
    [bad] = report.malformed_lines
    assert (Path(bad.path).name, bad.line) == ("sess-1.jsonl", 8)
    assert str(bad).startswith(f"{claude_dir}/-home-dev-shop/sess-1.jsonl:8: not JSON")


async def test_session_maps_turns_tools_env_and_title(store: ThreadStore, claude_dir: Path) -> None:
    await import_claude_code(store, [claude_dir])
    thread = await store.get_thread(SESSION)
    assert [m.id for m in thread.messages] == ORDER
    assert [m.role for m in thread.messages] == [
        *("user", "assistant", "user", "assistant", "user", "user", "assistant"),
        *("system", "user", "user", "assistant"),
    ]
    assert thread.title == "Checkout discount codes"
    assert thread.env == {
        "agent": "claude-code",
        "cwd": "/home/dev/shop",
        "git_branch": "main",
        "agent_version": "2.1.40",
    }
    assert thread.created == 1751364001000  # the first prompt's line
    edit = thread.messages[3]
    assert [(c.id, c.name) for c in edit.tool_calls] == [
        ("toolu_edit1", "Edit"),
        ("toolu_bash1", "Bash"),
    ]
    failed = thread.messages[5].tool_results[0]
    assert (failed.tool_call_id, failed.is_error) == ("toolu_bash1", True)
    assert failed.output == "FAIL src/checkout/Form.test.tsx\n  DiscountCode is not defined"


async def test_one_message_per_response_with_the_last_lines_usage(
    store: ThreadStore, claude_dir: Path
) -> None:
    await import_claude_code(store, [claude_dir])
    response = (await store.get_thread(SESSION)).messages[1]
    assert response.content == "I'll delegate the search to a sub-agent."
    assert response.usage is not None
    assert response.usage.model_dump(exclude_none=True) == {
        "model": "claude-sonnet-4-5-20250929",
        "input_tokens": 12,
        "output_tokens": 87,  # the last line's, not 5 + 9 + 87
        "cache_read_tokens": 3000,
        "cache_write_tokens": 500,
    }
    assert response.metadata["line_uuids"] == ["a-001", "a-002", "a-003"]
    assert response.metadata["requestId"] == "req_1"
    assert response.metadata["parentUuid"] == "u-001"
    assert response.metadata["thinking"] == [
        {"type": "thinking", "thinking": "Find the checkout form first.", "signature": "sig1"}
    ]
    head = await store.recorder.head(SESSION)
    assert head is not None
    assert head.totals.output_tokens == 87 + 120 + 30 + 25


async def test_unknown_fields_are_kept_in_metadata(store: ThreadStore, claude_dir: Path) -> None:
    await import_claude_code(store, [claude_dir])
    thread = await store.get_thread(SESSION)
    by_id = {m.id: m for m in thread.messages}
    assert by_id["a-006"].metadata["brandNewField"] == {"kept": True}
    assert by_id["u-003"].metadata["toolUseResult"] == {
        "filePath": "/home/dev/shop/src/checkout/Form.tsx",
        "oldString": "<Total />",
        "newString": "<DiscountCode />\n<Total />",
        "originalFile": "export function Form() { return <Total /> }",
        "userModified": False,
    }
    assert by_id["u-001"].metadata == {
        "parentUuid": "p-001",
        "promptId": "pr-1",
        "permissionMode": "default",
    }
    assert thread.metadata["claude_code"] == {
        "sessionId": SESSION,
        "cwd": "/home/dev/shop",
        "version": "2.1.40",
        "gitBranch": "main",
        "userType": "external",
        "isSidechain": False,
    }


async def test_subagent_file_is_a_child_linked_to_its_task_call(
    store: ThreadStore, claude_dir: Path
) -> None:
    await import_claude_code(store, [claude_dir])
    parent = await store.get_thread(SESSION)
    assert parent.child_thread_ids == ("sess-1:agent-a1",)
    child = await store.get_thread("sess-1:agent-a1")
    assert child.parent_thread_id == SESSION
    assert child.title == "Task: Find checkout form"
    assert child.metadata["spawned_by_tool_call"] == "toolu_task1"
    assert child.metadata["agent_meta"] == {
        "agentType": "Explore",
        "description": "Find checkout form",
        "toolUseId": "toolu_task1",
    }
    assert [m.id for m in child.messages] == ["sa-001", "sa-002", "sa-003", "sa-004"]
    assert child.messages[1].tool_calls[0].name == "Grep"


async def test_compaction_becomes_a_summary_thread(store: ThreadStore, claude_dir: Path) -> None:
    await import_claude_code(store, [claude_dir])
    parent = await store.get_thread(SESSION)
    assert parent.summary_thread_ids == ("sess-1:compact-cb-1",)
    summary = await store.get_thread("sess-1:compact-cb-1")
    assert summary.origin_thread_id == SESSION
    assert summary.title == "Summary: Checkout discount codes"
    assert [m.id for m in summary.messages] == ["sc-001", "sc-002", "cs-1:summary"]
    assert summary.messages[-1].role == "assistant"
    assert summary.messages[-1].content.startswith("This session is being continued")
    assert summary.metadata["compactMetadata"] == {"trigger": "auto", "preTokens": 150000}
    boundary = parent.messages[ORDER.index("cb-1")]
    assert (boundary.role, boundary.content) == ("system", "Conversation compacted")


async def test_resumed_session_does_not_duplicate_replayed_lines(
    store: ThreadStore, claude_dir: Path
) -> None:
    await import_claude_code(store, [claude_dir])
    resumed = await store.get_thread("sess-2")
    assert [m.id for m in resumed.messages] == ["r-001", "r-002"]
    assert resumed.env["git_branch"] == "feature/discounts"
    assert resumed.title == "Continue: add tests for the discount code"


async def test_importing_twice_adds_nothing(store: ThreadStore, claude_dir: Path) -> None:
    await import_claude_code(store, [claude_dir])
    before = await store.get_thread(SESSION)
    again = await import_claude_code(store, [claude_dir])
    assert (again.messages, again.threads_created, again.threads_updated) == (0, 0, 0)
    assert again.already_imported == 20
    assert await store.get_thread(SESSION) == before


async def test_a_grown_session_adds_only_the_new_lines(
    store: ThreadStore, claude_dir: Path
) -> None:
    await import_claude_code(store, [claude_dir])
    session = claude_dir / "-home-dev-shop" / "sess-1.jsonl"
    template = (FIXTURES / "claude_code" / "-home-dev-shop" / "sess-1.jsonl").read_text()
    last_prompt, last_answer = template.splitlines()[-2:]
    grown = [
        last_prompt.replace('"u-005"', '"u-006"').replace("expired codes too", "a limit per user"),
        last_answer.replace('"a-007"', '"a-008"').replace("msg_4", "msg_5"),
        last_answer.replace('"a-007"', '"a-009"').replace("msg_4", "msg_5"),
    ]
    with session.open("a") as handle:
        handle.write("\n".join(grown) + "\n")
    report = await import_claude_code(store, [claude_dir])
    assert (report.messages, report.threads_updated, report.already_imported) == (2, 1, 20)
    thread = await store.get_thread(SESSION)
    assert [m.id for m in thread.messages[-3:]] == ["a-007", "u-006", "a-008"]
    assert thread.messages[-1].metadata["line_uuids"] == ["a-008", "a-009"]


async def test_imported_messages_are_searchable(store: ThreadStore, claude_dir: Path) -> None:
    await import_claude_code(store, [claude_dir])
    hits = await store.search("DiscountCode", limit=10)
    assert {(h.thread_id, h.message_id) for h in hits} == {
        (SESSION, "a-004"),  # the Edit's input
        (SESSION, "u-004"),  # the failing test's output
        (SESSION, "a-006"),  # the answer
        (SESSION, "cs-1"),  # the compaction summary, in the session
        ("sess-1:compact-cb-1", "cs-1:summary"),  # and in its summary thread
    }
    [title] = await store.search("discount codes checkout", limit=1)
    assert (title.thread_id, title.kind) == (SESSION, "title")


async def test_an_agent_file_without_its_session_is_reported_unlinked(
    store: ThreadStore, claude_dir: Path
) -> None:
    agent = claude_dir / "-home-dev-shop" / SESSION / "subagents" / "agent-a1.jsonl"
    report = await import_claude_code(store, [agent])
    assert report.unlinked == ["sess-1:agent-a1"]
    child = await store.get_thread("sess-1:agent-a1")
    assert child.parent_thread_id == SESSION
    await import_claude_code(store, [claude_dir])
    assert (await store.get_thread(SESSION)).child_thread_ids == ("sess-1:agent-a1",)
