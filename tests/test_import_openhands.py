"""The OpenHands importer (``threadline import openhands``).

The real conversation in ../shared/samples/openhands is read twice: by the
importer, and here by a plain independent rule (one message per
conversational event, one tool call per ``ActionEvent``, one result per
``ObservationEvent``, usage summed from ``base_state.json``). Condensations,
repeated tool-call ids and broken files are written into a copy of it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.importers.conftest import samples
from tests.test_cli import run_cli, succeeds_json
from threadline import ThreadStore
from threadline.importers import import_openhands, import_openhands_conversation
from threadline.importers.openhands import (
    LATE_USAGE,
    OpenHandsReport,
    conversation_folder,
    discover,
)
from threadline.model import Thread
from threadline.recorders import MemoryRecorder

THREAD = "cd945624-03b9-487e-bdd4-018e3f531dfd"
_MESSAGE_KINDS = {
    "SystemPromptEvent",
    "MessageEvent",
    "ActionEvent",
    "ObservationEvent",
    "UserRejectObservation",
    "AgentErrorEvent",
    "Condensation",
    "ConversationErrorEvent",
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ThreadStore]:
    async with await ThreadStore.open(tmp_path / "threads.db") as opened:
        yield opened


@pytest.fixture
def sample() -> Path:
    return samples("openhands", "v1-sdk-conversation")


@pytest.fixture
def conversation(tmp_path: Path, sample: Path) -> Path:
    """A writable copy of the real conversation, in a folder named as the SDK names it."""
    target = tmp_path / "conversations" / THREAD.replace("-", "")
    shutil.copytree(sample, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def events_of(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, json.loads(path.read_text())) for path in sorted(folder.glob("events/*.json"))]


def usages_of(folder: Path) -> list[dict[str, Any]]:
    stats = json.loads((folder / "base_state.json").read_text())["stats"]["usage_to_metrics"]
    return [entry for metrics in stats.values() for entry in metrics["token_usages"]]


def write_event(folder: Path, index: int, event: dict[str, Any]) -> Path:
    path = folder / "events" / f"event-{index:05d}-{event['id']}.json"
    path.write_text(json.dumps(event))
    return path


async def test_real_sample_imports_with_the_counts_read_from_the_raw_files(
    store: ThreadStore, sample: Path
) -> None:
    events = [event for _, event in events_of(sample)]
    kinds = [event["kind"] for event in events]
    usages = usages_of(sample)
    stats = json.loads((sample / "base_state.json").read_text())["stats"]["usage_to_metrics"]

    report = await import_openhands(store, [sample])

    assert report.problems == []
    assert (report.files, report.sessions, report.threads_created) == (len(events) + 1, 1, 1)
    assert report.messages == sum(kind in _MESSAGE_KINDS for kind in kinds)
    assert report.tool_calls == kinds.count("ActionEvent")
    assert report.tool_results == kinds.count("ObservationEvent")
    assert (report.messages, report.tool_calls, report.tool_results) == (8, 2, 2)
    assert report.output_tokens == sum(u["completion_tokens"] for u in usages) == 94
    assert report.cache_read_tokens == sum(u["cache_read_tokens"] for u in usages) == 7552
    assert report.input_tokens == sum(
        u["prompt_tokens"] - u["cache_read_tokens"] - u["cache_write_tokens"] for u in usages
    )
    reported_cost = sum(metrics["accumulated_cost"] for metrics in stats.values())
    assert report.cost_usd == pytest.approx(reported_cost)
    assert report.computed_cost_messages == 0
    assert (report.malformed, dict(report.skipped)) == (0, {})

    thread = await store.get_thread(THREAD)
    assert [m.id for m in thread.messages] == [event["id"] for event in events]
    assert [m.role for m in thread.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "user",
        "assistant",
    ]
    prompt = events[1]["llm_message"]["content"][0]["text"]
    assert thread.title == prompt[:79] + "…"
    assert thread.env == {"agent": "openhands", "cwd": "/workspace/project/software-agent-sdk"}
    settings = thread.metadata["openhands"]
    assert isinstance(settings, dict)
    assert "stats" not in settings
    assert "api_key" not in json.dumps(settings)
    calls = [call for m in thread.messages for call in m.tool_calls]
    results = [result for m in thread.messages for result in m.tool_results]
    actions = [e for e in events if e["kind"] == "ActionEvent"]
    assert [c.id for c in calls] == [e["tool_call_id"] for e in actions]
    assert [r.tool_call_id for r in results] == [c.id for c in calls]
    assert calls[0].input["command"] == "pwd > tool_output.txt"
    assert results[1].output == "The current directory has been written to tool_output.txt."
    with_usage = {m.metadata["llm_response_id"]: m.usage for m in thread.messages if m.usage}
    assert set(with_usage) == {u["response_id"] for u in usages}
    first = with_usage["chatcmpl-D5rlWUdHeehJ1YAPoStNh1wWFayTf"]
    assert first is not None
    assert (first.model, first.input_tokens, first.output_tokens) == ("gpt-4o-mini", 3778, 36)
    assert first.cost_usd == pytest.approx(0.0005883)
    [carrier] = [m for m in thread.messages if m.usage is first]
    assert carrier.metadata["token_usage"] == {"usage_id": "agent", **usages[0]}


async def test_importing_twice_adds_nothing(store: ThreadStore, sample: Path) -> None:
    await import_openhands(store, [sample])
    before = await store.get_thread(THREAD)
    again = await import_openhands(store, [sample])
    assert (again.messages, again.threads_created, again.threads_updated) == (0, 0, 0)
    assert again.already_imported == 8
    assert (await store.get_thread(THREAD)).v == before.v


async def test_a_growing_conversation_gains_exactly_its_new_events(
    tmp_path: Path, conversation: Path
) -> None:
    """Whatever event the first import stopped at, importing after each new
    event gives what one import of the finished folder gives."""
    files = sorted((conversation / "events").iterdir())
    async with ThreadStore(MemoryRecorder()) as whole:
        await import_openhands_conversation(whole, conversation)
        expected = await whole.get_thread(THREAD)
    held = tmp_path / "held"
    held.mkdir()
    for start in range(len(files) + 1):
        for path in files[start:]:
            path.rename(held / path.name)
        async with ThreadStore(MemoryRecorder()) as store:
            first = await import_openhands_conversation(store, conversation)
            added = [first.messages]
            for path in files[start:]:
                (held / path.name).rename(path)
                added.append((await import_openhands_conversation(store, conversation)).messages)
            grown = await store.get_thread(THREAD)
        assert added == [start, *[1] * (len(files) - start)]
        assert _comparable(grown) == _comparable(expected)


def _comparable(thread: Thread) -> dict[str, Any]:
    return thread.model_dump(exclude={"v"})


async def test_usage_written_after_its_event_was_imported_is_reported(
    store: ThreadStore, conversation: Path
) -> None:
    state_path = conversation / "base_state.json"
    full = state_path.read_text()
    state = json.loads(full)
    state["stats"] = {"usage_to_metrics": {}}
    state_path.write_text(json.dumps(state))
    first = await import_openhands(store, [conversation])
    assert (first.messages, first.output_tokens) == (8, 0)
    state_path.write_text(full)
    second = await import_openhands(store, [conversation])
    assert second.messages == 0
    assert second.skipped[LATE_USAGE] == 3


async def test_a_broken_event_file_is_reported_and_the_rest_imported(
    store: ThreadStore, conversation: Path
) -> None:
    events = sorted((conversation / "events").iterdir())
    truncated = events[3]
    truncated.write_bytes(truncated.read_bytes()[:150])
    pretty = events[6]
    cut = json.dumps(json.loads(pretty.read_text()), indent=2)[:-30]
    pretty.write_text(cut)
    shapeless = events[7]
    event = json.loads(shapeless.read_text())
    del event["llm_message"]
    shapeless.write_text(json.dumps(event))
    bom = events[1]
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())

    report = await import_openhands(store, [conversation])

    assert [(bad.path, bad.line) for bad in report.malformed_lines] == [
        (str(truncated), 1),
        (str(pretty), cut.count("\n") + 1),  # the error is at the end of the cut file
        (str(shapeless), 1),
    ]
    assert report.malformed_lines[0].error.startswith("not JSON")
    assert report.malformed_lines[2].error == "a MessageEvent without an llm_message object"
    assert (report.messages, report.tool_calls, report.tool_results) == (5, 2, 1)
    thread = await store.get_thread(THREAD)
    assert [m.id for m in thread.messages] == [
        json.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))["id"]
        for path in (events[0], events[1], events[2], events[4], events[5])
    ]
    assert thread.title is not None
    assert thread.title.startswith("Use the terminal tool")


def add_condensation(conversation: Path, first: int) -> None:
    """A condensation (with the condenser's usage) and a condensation request,
    as events ``first`` and ``first + 1``."""
    state_path = conversation / "base_state.json"
    state = json.loads(state_path.read_text())
    state["stats"]["usage_to_metrics"]["condenser"] = {
        "model_name": "gpt-4o-mini",
        "accumulated_cost": 0.0002,
        "costs": [{"model": "gpt-4o-mini", "cost": 0.0002, "timestamp": 1770290690.0}],
        "response_latencies": [{"model": "gpt-4o-mini", "latency": 1.0, "response_id": "cond-1"}],
        "token_usages": [
            {
                "model": "gpt-4o-mini",
                "prompt_tokens": 900,
                "completion_tokens": 60,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "response_id": "cond-1",
            }
        ],
    }
    state_path.write_text(json.dumps(state))
    events = [event for _, event in events_of(conversation)]
    write_event(
        conversation,
        first,
        {
            "id": "c0ffee00-0000-4000-8000-000000000008",
            "timestamp": "2026-02-05T11:24:50.000000",
            "source": "environment",
            "forgotten_event_ids": [e["id"] for e in events[2:6]],
            "summary": "The agent wrote the working directory to tool_output.txt.",
            "summary_offset": 2,
            "llm_response_id": "cond-1",
            "kind": "Condensation",
        },
    )
    write_event(
        conversation,
        first + 1,
        {
            "id": "c0ffee00-0000-4000-8000-000000000009",
            "timestamp": "2026-02-05T11:24:51.000000",
            "source": "environment",
            "kind": "CondensationRequest",
        },
    )


async def test_a_condensation_becomes_a_summary_thread_with_the_condensers_usage(
    store: ThreadStore, conversation: Path
) -> None:
    add_condensation(conversation, 8)
    report = await import_openhands(store, [conversation])

    assert (report.threads_created, report.summary_threads, report.messages) == (2, 1, 10)
    assert report.skipped == {"CondensationRequest": 1}
    head = await store.get_thread(THREAD)
    summary_id = f"{THREAD}:compact-c0ffee00-0000-4000-8000-000000000008"
    assert head.summary_thread_ids == (summary_id,)
    marker = head.messages[-1]
    assert (marker.role, marker.content) == (
        "system",
        "Conversation condensed: 4 earlier events forgotten",
    )
    assert marker.metadata["summary_thread_id"] == summary_id
    assert marker.usage is None
    summary = await store.get_thread(summary_id)
    assert summary.origin_thread_id == THREAD
    assert summary.title == f"Summary: {head.title}"
    [message] = summary.messages
    assert message.content == "The agent wrote the working directory to tool_output.txt."
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (900, 60)
    assert message.usage.cost_usd == pytest.approx(0.0002)
    again = await import_openhands(store, [conversation])
    assert (again.messages, again.threads_created, again.summary_threads) == (0, 0, 0)


def add_repeated_call(conversation: Path, first: int) -> dict[str, Any]:
    """The first action again under a new event id, its error result, and a
    rejection of the first action, as events ``first``..``first + 2``; returns
    the first action."""
    events = {path.name[:11]: (path, event) for path, event in events_of(conversation)}
    _, action = events["event-00002"]
    _, observation = events["event-00003"]
    again = {**action, "id": "a0000000-0000-4000-8000-00000000000a", "llm_response_id": "r-2"}
    answer = {**observation, "id": "b0000000-0000-4000-8000-00000000000b", "action_id": again["id"]}
    answer["observation"] = {**observation["observation"], "is_error": True}
    rejected = {
        "id": "d0000000-0000-4000-8000-00000000000d",
        "timestamp": "2026-02-05T11:24:52.000000",
        "source": "environment",
        "tool_name": "terminal",
        "tool_call_id": action["tool_call_id"],
        "action_id": action["id"],
        "rejection_reason": "not now",
        "kind": "UserRejectObservation",
    }
    for index, event in enumerate((again, answer, rejected), start=first):
        write_event(conversation, index, event)
    return action


async def test_a_repeated_tool_call_id_is_made_unique_and_results_follow_their_action(
    store: ThreadStore, conversation: Path
) -> None:
    action = add_repeated_call(conversation, 8)
    await import_openhands(store, [conversation])

    thread = await store.get_thread(THREAD)
    calls = [call.id for m in thread.messages for call in m.tool_calls]
    assert len(calls) == len(set(calls)) == 3
    raw = action["tool_call_id"]
    again = "a0000000-0000-4000-8000-00000000000a"
    assert calls[-1] == f"{raw}:{again}"
    results = [(r.tool_call_id, r.is_error) for m in thread.messages for r in m.tool_results]
    assert results[-2:] == [(f"{raw}:{again}", True), (raw, True)]
    assert thread.messages[-1].tool_results[0].output == "not now"


def test_cli_imports_a_folder_of_conversations_as_json(tmp_path: Path, conversation: Path) -> None:
    report = succeeds_json(
        run_cli(tmp_path / "home", "import", "openhands", str(conversation.parent), "--json")
    )
    assert (report["sessions"], report["messages"], report["tool_calls"]) == (1, 8, 2)
    assert report["tokens"]["output"] == 94
    assert report["problems"] == []


def test_cli_an_empty_folder_says_what_it_found_and_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(tmp_path / "home", "import", "openhands", str(empty))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: No OpenHands conversation in {empty}: the folder is empty" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "rollout.jsonl").write_text("{}\n")
    result = run_cli(tmp_path / "home", "import", "openhands", str(other))
    assert result.returncode == 1
    assert (
        f"error: No OpenHands conversation in {other}: it holds 1 file(s) (1 .jsonl) "
        "but no base_state.json or events/event-<idx>-<id>.json" in result.stderr
    )


def test_cli_a_missing_path_is_reported_and_the_others_imported(
    tmp_path: Path, conversation: Path
) -> None:
    missing = tmp_path / "nope"
    home = tmp_path / "home"
    result = run_cli(home, "import", "openhands", str(missing), str(conversation), "--json")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: No such file or folder: {missing}" in result.stderr
    report = json.loads(result.stdout)
    assert (report["messages"], report["problems"]) == (8, [f"No such file or folder: {missing}"])
    again = succeeds_json(run_cli(home, "import", "openhands", str(conversation), "--json"))
    assert (again["messages"], again["already_imported"]) == (0, 8)


@st.composite
def _cuts(draw: st.DrawFn, events: int) -> list[tuple[int, bool]]:
    """Imports while the folder holds the first ``n`` events, and (``True``)
    the next event file half written."""
    points = draw(st.lists(st.integers(0, events), unique=True, max_size=6).map(sorted))
    return [(point, draw(st.booleans()) and point < events) for point in points]


async def _threads(store: ThreadStore) -> list[dict[str, Any]]:
    """Every thread, without its version and the folder it was imported from."""
    page = await store.list_threads(limit=100)
    threads = [(await store.get_thread(head.id)).model_dump(exclude={"v"}) for head in page.threads]
    for thread in threads:
        assert thread["metadata"].pop("imported_from")
    return sorted(threads, key=lambda thread: str(thread["id"]))


async def _import_in_steps(full: Path, target: Path, cuts: list[tuple[int, bool]]) -> None:
    files = sorted((full / "events").iterdir())
    shutil.copy(full / "base_state.json", target / "base_state.json")
    (target / "events").mkdir()
    async with ThreadStore(MemoryRecorder()) as whole:
        await import_openhands_conversation(whole, full)
        expected = await _threads(whole)
    async with ThreadStore(MemoryRecorder()) as store:
        for count, partial in cuts:
            for path in files[:count]:
                shutil.copy(path, target / "events" / path.name)
            if partial:
                raw = files[count].read_bytes()
                (target / "events" / files[count].name).write_bytes(raw[: len(raw) // 2])
            await import_openhands_conversation(store, target)
        for path in files:
            shutil.copy(path, target / "events" / path.name)
        final = await import_openhands_conversation(store, target)
        assert final.malformed == 0
        assert await _threads(store) == expected


@pytest.fixture(scope="module")
def rich_conversation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real conversation with a repeated tool call, a condensation and a
    condensation request appended (13 events)."""
    target = tmp_path_factory.mktemp("rich") / THREAD.replace("-", "")
    shutil.copytree(samples("openhands", "v1-sdk-conversation"), target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    add_repeated_call(target, 8)
    add_condensation(target, 11)
    return target


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_importing_at_any_cut_points_gives_what_one_import_gives(
    rich_conversation: Path, data: st.DataObject
) -> None:
    events = len(list((rich_conversation / "events").iterdir()))
    cuts = data.draw(_cuts(events))
    with tempfile.TemporaryDirectory() as name:
        target = Path(name) / rich_conversation.name
        target.mkdir()
        asyncio.run(_import_in_steps(rich_conversation, target, cuts))


def test_a_path_finds_its_conversation_from_inside_or_above(
    tmp_path: Path, conversation: Path
) -> None:
    event = next((conversation / "events").iterdir())
    for path in (
        conversation,
        conversation / "events",
        event,
        conversation / "base_state.json",
        tmp_path,
    ):
        report = OpenHandsReport()
        assert discover([path], report) == [conversation], path
        assert report.problems == []
        if path != tmp_path:
            assert conversation_folder(path) == conversation
    assert conversation_folder(tmp_path) is None
    v0 = tmp_path / "sessions" / "s1" / "events"
    v0.mkdir(parents=True)
    (v0 / "0.json").write_text("{}")
    report = OpenHandsReport()
    assert discover([v0.parent.parent, conversation, conversation], report) == [conversation]
    assert report.problems == [
        f"No OpenHands conversation in {v0.parent.parent}: it holds OpenHands V0 sessions "
        "(events/<n>.json), which this importer does not read"
    ]
