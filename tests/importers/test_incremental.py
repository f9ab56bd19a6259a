"""Incremental import is exactly a one-shot import (issue 13, item 1).

A session file imported while the agent is still writing it, after any cut
points (inside a line, inside a multi-line response, before a late usage
event), then once more when it is finished, gives the threads one import of
the finished file gives: messages (with tool calls, results and usage),
thread totals and links. Run on every Claude Code and Codex sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.importers.conftest import SAMPLES
from threadline import ThreadStore
from threadline.importers import ImportReport, import_claude_code, import_codex, import_openhands
from threadline.recorders import MemoryRecorder

Importer = Callable[[ThreadStore, Sequence[Path]], Awaitable[ImportReport]]


def _sample_files(agent: str) -> list[Path]:
    return sorted((SAMPLES / agent).rglob("*.jsonl")) if SAMPLES.exists() else []


_CASES = [
    *((path, "claude-code") for path in _sample_files("claude-code")),
    *((path, "codex") for path in _sample_files("codex")),
]


def _importer(agent: str) -> Importer:
    async def run(store: ThreadStore, paths: Sequence[Path]) -> ImportReport:
        if agent == "codex":
            return await import_codex(store, list(paths))
        return await import_claude_code(store, list(paths))

    return run


async def _snapshot(store: ThreadStore) -> dict[str, object]:
    """Every thread's messages, links and totals (not versions: an incremental
    import logs more deltas for the same threads)."""
    found: dict[str, object] = {}
    cursor: str | None = None
    while True:
        page = await store.list_threads(limit=100, cursor=cursor)
        for head in page.threads:
            thread = await store.get_thread(head.id)
            found[head.id] = (
                thread.messages,
                thread.parent_thread_id,
                set(thread.child_thread_ids),
                thread.origin_thread_id,
                set(thread.summary_thread_ids),
                head.totals.model_dump(exclude={"cost_usd"}),
                round(head.totals.cost_usd, 9),
                head.message_count,
            )
        cursor = page.next_cursor
        if cursor is None:
            return found


def _cut_points(data: bytes) -> st.SearchStrategy[list[int]]:
    """Sorted cut offsets: anywhere, or at line ends (so whole lines of a
    multi-line response or a late usage event arrive in separate imports)."""
    ends = [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
    anywhere = st.integers(1, max(1, len(data) - 1))
    at_lines = st.sampled_from(ends) if ends else anywhere
    return st.lists(anywhere | at_lines, max_size=6).map(sorted)


def _write(target: Path, data: bytes) -> None:
    with target.open("wb") as handle:  # the agent appending: same file, same inode
        handle.write(data)


async def _incremental(importer: Importer, data: bytes, target: Path, cuts: list[int]) -> object:
    async with ThreadStore(MemoryRecorder()) as store:
        for cut in cuts:
            _write(target, data[:cut])
            await importer(store, [target])
        _write(target, data)
        await importer(store, [target])
        again = await _snapshot(store)
        await importer(store, [target])  # and once more: nothing changes
        assert await _snapshot(store) == again
        return again


async def _one_shot(importer: Importer, target: Path) -> object:
    async with ThreadStore(MemoryRecorder()) as store:
        await importer(store, [target])
        return await _snapshot(store)


@pytest.mark.skipif(not _CASES, reason="real sample transcripts not available")
@pytest.mark.parametrize(("path", "agent"), _CASES, ids=lambda v: getattr(v, "name", v))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_incremental_import_equals_one_shot(
    path: Path, agent: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    content = path.read_bytes()
    cuts = data.draw(_cut_points(content), label="cuts")
    folder = tmp_path_factory.mktemp("live")
    target = folder / path.name
    importer = _importer(agent)
    target.write_bytes(content)
    expected = asyncio.run(_one_shot(importer, target))
    assert asyncio.run(_incremental(importer, content, target, cuts)) == expected


def _openhands_conversations() -> list[Path]:
    root = SAMPLES / "openhands"
    return sorted(p.parent for p in root.rglob("base_state.json")) if root.exists() else []


def _write_prefix(events: list[tuple[str, bytes]], folder: Path, cut: int) -> None:
    """The conversation's event files as they stand once the first ``cut`` bytes
    of all of them, in order, are written: whole files, then part of one."""
    left = cut
    for name, data in events:
        if left <= 0:
            return
        (folder / name).write_bytes(data[:left])
        left -= len(data)


@pytest.mark.skipif(not _openhands_conversations(), reason="OpenHands samples not available")
@pytest.mark.parametrize("conversation", _openhands_conversations(), ids=lambda p: p.name)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_incremental_openhands_import_equals_one_shot(
    conversation: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """OpenHands writes an event per file: importing after each cut of the event
    stream (whole files so far, the next one half written) and once at the end
    gives what one import of the finished folder gives."""
    events = [(p.name, p.read_bytes()) for p in sorted((conversation / "events").glob("*.json"))]
    total = sum(len(blob) for _, blob in events)
    cuts = sorted(data.draw(st.lists(st.integers(0, total), max_size=6), label="cuts"))
    target = tmp_path_factory.mktemp("openhands") / conversation.name
    (target / "events").mkdir(parents=True)
    for path in conversation.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())

    async def incremental() -> object:
        async with ThreadStore(MemoryRecorder()) as store:
            for cut in [*cuts, total]:
                _write_prefix(events, target / "events", cut)
                await import_openhands(store, [target.parent])
            return await _snapshot(store)

    got = asyncio.run(incremental())
    assert got == asyncio.run(_one_shot(import_openhands, target.parent))
