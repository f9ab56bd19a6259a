"""ThreadStore and ThreadWriter behaviour, on the in-memory and SQLite backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import (
    Message,
    Thread,
    ThreadEvent,
    ThreadNotFound,
    ThreadStore,
    Usage,
    VersionConflict,
    VersionNotFound,
    WriterBusy,
    WriterClosed,
)
from threadline.errors import InvalidModification


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    path = ":memory:" if request.param == "memory" else tmp_path / "threads.db"
    store = await ThreadStore.open(path)
    yield store
    await store.close()


def user(text: str) -> Message:
    return Message(role="user", content=text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on branch ``feature`` with one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "feature"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    return repo


async def test_create_thread_captures_the_environment(store: ThreadStore, repo: Path) -> None:
    thread = await store.create_thread(title="Fix login", env={"cwd": str(repo)})
    assert thread.v == 1
    assert thread.env["cwd"] == str(repo)
    assert thread.env["git_branch"] == "feature"
    assert isinstance(thread.env["git_commit"], str)
    assert len(thread.env["git_commit"]) == 40
    assert {"os", "python", "libraries"} <= thread.env.keys()
    bare = await store.create_thread(capture_environment=False, env={"cwd": "/x"})
    assert bare.env == {"cwd": "/x"}


async def test_create_thread_with_own_id_and_messages(store: ThreadStore) -> None:
    thread = await store.create_thread(
        id="T-imported", messages=[user("a"), user("b")], capture_environment=False
    )
    assert (thread.id, thread.v, len(thread.messages)) == ("T-imported", 3, 2)
    assert await store.get_thread("T-imported") == thread


async def test_unknown_thread_raises_thread_not_found(store: ThreadStore) -> None:
    for call in (
        store.get_thread("T-x"),
        store.load_thread("T-x"),
        store.thread_at("T-x", 1),
        store.history("T-x"),
        store.delete_thread("T-x"),
        store.acquire_writer("T-x"),
    ):
        with pytest.raises(ThreadNotFound, match="Thread T-x not found"):
            await call


async def test_modify_thread_commits_the_difference(store: ThreadStore) -> None:
    thread = await store.create_thread(title="a", capture_environment=False)

    async def modifier(t: Thread) -> Thread:
        return t.with_title("b").with_message(user("hello"))

    changed = await store.modify_thread(thread.id, modifier, expected_version=1)
    assert (changed.v, changed.title, [m.content for m in changed.messages]) == (3, "b", ["hello"])
    assert await store.get_thread(thread.id) == changed
    with pytest.raises(VersionConflict, match="is at version 3, not 1"):
        await store.modify_thread(thread.id, lambda t: t.with_title("c"), expected_version=1)
    with pytest.raises(InvalidModification):
        await store.modify_thread(thread.id, lambda t: t)


async def test_thread_at_returns_every_past_version(store: ThreadStore) -> None:
    thread = await store.create_thread(title="a", capture_environment=False)
    writer = await store.acquire_writer(thread.id)
    await writer.append(user("1"))
    await writer.append(user("2"))
    await writer.truncate(1)
    await writer.set_title("b")
    await writer.dispose()
    assert [m.content for m in (await store.thread_at(thread.id, 3)).messages] == ["1", "2"]
    assert [m.content for m in (await store.thread_at(thread.id, 4)).messages] == ["1"]
    assert (await store.thread_at(thread.id, 1)).title == "a"
    assert await store.thread_at(thread.id, 5) == await store.get_thread(thread.id)
    with pytest.raises(VersionNotFound):
        await store.thread_at(thread.id, 6)
    assert [r.delta.type for r in await store.history(thread.id)] == [
        "thread:create",
        "user:message",
        "user:message",
        "thread:truncate",
        "title",
    ]


async def test_load_thread_pages_back_from_the_newest(store: ThreadStore) -> None:
    thread = await store.create_thread(
        messages=[user(str(i)) for i in range(120)], capture_environment=False
    )
    page = await store.load_thread(thread.id, limit=50)
    assert [m.content for m in page.messages] == [str(i) for i in range(70, 120)]
    assert (page.v, page.total_messages, page.has_more, page.first_index) == (121, 120, True, 70)
    older = await store.load_thread(thread.id, limit=50, before=page.first_index)
    assert [m.content for m in older.messages] == [str(i) for i in range(20, 70)]
    by_offset = await store.load_thread(thread.id, limit=50, offset=50)
    assert by_offset.messages == older.messages
    oldest = await store.load_thread(thread.id, limit=50, before=older.first_index)
    assert [m.content for m in oldest.messages] == [str(i) for i in range(20)]
    assert (oldest.has_more, oldest.first_index) == (False, 0)
    with pytest.raises(ValueError, match="negative"):
        await store.load_thread(thread.id, limit=-1)


async def test_list_threads_paginates_newest_activity_first(store: ThreadStore) -> None:
    ids = []
    for i in range(5):
        thread = await store.create_thread(
            title=str(i), created=1000 + i, capture_environment=False
        )
        ids.append(thread.id)
    first = await store.list_threads(limit=3)
    assert [t.id for t in first.threads] == ids[::-1][:3]
    assert first.next_cursor is not None
    rest = await store.list_threads(limit=3, cursor=first.next_cursor)
    assert [t.id for t in rest.threads] == ids[::-1][3:]
    assert rest.next_cursor is None


async def test_delete_thread_is_refused_while_a_writer_holds_it(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    writer = await store.acquire_writer(thread.id)
    with pytest.raises(WriterBusy):
        await store.delete_thread(thread.id)
    await writer.dispose()
    await store.delete_thread(thread.id)
    with pytest.raises(ThreadNotFound):
        await store.get_thread(thread.id)


async def test_second_writer_is_busy_until_the_first_is_disposed(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    writer = await store.acquire_writer(thread.id)
    with pytest.raises(WriterBusy, match=f"Thread {thread.id} is already being modified"):
        await store.acquire_writer(thread.id)
    await writer.dispose()
    with pytest.raises(WriterClosed):
        await writer.append(user("late"))
    async with await store.acquire_writer(thread.id) as again:
        assert (await again.append(user("x"))).v == 2


async def test_writer_observe_yields_every_committed_state(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    writer = await store.acquire_writer(thread.id)
    seen: list[int] = []

    async def watch() -> None:
        async for state in writer.observe():
            seen.append(state.v)

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await writer.append(user("a"))
    await writer.modify(lambda t: t.with_title("t"))
    await writer.dispose()
    await asyncio.wait_for(task, 5)
    assert seen == [1, 2, 3]


async def test_writer_rebases_appends_after_an_outside_change(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    writer = await store.acquire_writer(thread.id)
    await store.modify_thread(thread.id, lambda t: t.with_title("outside"))
    after = await writer.append(user("mine"))
    assert (after.v, after.title, [m.content for m in after.messages]) == (3, "outside", ["mine"])
    await writer.dispose()


async def test_events_fire_once_per_debounce_window(store: ThreadStore) -> None:
    events: list[ThreadEvent] = []
    store.events.subscribe(events.append)
    thread = await store.create_thread(capture_environment=False)
    writer = await store.acquire_writer(thread.id, autosave_delay=0.05)
    for i in range(5):
        await writer.append(user(str(i)))
    assert [e.type for e in events] == ["thread:created"]
    await asyncio.sleep(0.2)
    assert [(e.type, e.v) for e in events] == [("thread:created", 1), ("thread:updated", 6)]
    await writer.append(user("last"))
    await writer.dispose()  # the final save fires the pending event at once
    await store.delete_thread(thread.id)
    assert [(e.type, e.v) for e in events[2:]] == [("thread:updated", 7), ("thread:deleted", 7)]


async def test_usage_totals_are_kept_on_the_head(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    usage = Usage(model="m", input_tokens=100, output_tokens=10, cost_usd=0.5)
    await store.modify_thread(
        thread.id,
        lambda t: t.with_message(Message(role="assistant", content="a", usage=usage)).with_message(
            Message(
                role="assistant", content="b", usage=usage.model_copy(update={"cost_usd": None})
            )
        ),
    )
    head = (await store.list_threads()).threads[0]
    assert (head.totals.input_tokens, head.totals.cost_usd) == (200, 0.5)
    assert (head.totals.priced_messages, head.totals.unpriced_messages) == (1, 1)


async def test_open_without_path_uses_threadline_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_HOME", str(tmp_path / "home"))
    async with await ThreadStore.open() as store:
        await store.create_thread(capture_environment=False)
    assert (tmp_path / "home" / "threads.db").exists()
    async with await ThreadStore.open(tmp_path / "home" / "threads.db") as again:
        assert len((await again.list_threads()).threads) == 1


def test_default_home_is_dot_threadline(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.store import default_db_path

    monkeypatch.delenv("THREADLINE_HOME", raising=False)
    assert default_db_path() == Path(os.path.expanduser("~")) / ".threadline" / "threads.db"


async def test_append_message_goes_on_top_of_the_head(store: ThreadStore) -> None:
    thread = await store.create_thread(capture_environment=False)
    assert await store.append_message(thread.id, user("a")) == 2
    assert await store.append_message(thread.id, user("b"), expected_version=2) == 3
    with pytest.raises(VersionConflict, match="is at version 3, not 2"):
        await store.append_message(thread.id, user("stale"), expected_version=2)
    with pytest.raises(ThreadNotFound):
        await store.append_message("T-none", user("x"))
    contents = [m.content for m in (await store.get_thread(thread.id)).messages]
    assert contents == ["a", "b"]
