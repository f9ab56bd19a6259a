"""Writer exclusivity: one writer per thread, within a process and across processes.

Across processes the lease is a ``flock`` beside the database, so a second
process is refused while the first holds it, and a holder that dies (even by
``kill -9``) frees it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import ThreadStore, WriterBusy
from threadline.recorders import SqliteRecorder

# Takes the writer, appends one message and prints its id once it is durable,
# then holds the writer until a line arrives on stdin; prints "released" after
# dispose().
CHILD_WRITER = """
import asyncio, sys
from threadline import Message, ThreadStore

async def main(db, thread_id):
    async with await ThreadStore.open(db) as store:
        writer = await store.acquire_writer(thread_id)
        thread = await writer.append(Message(role="assistant", content="from the child"))
        print(thread.messages[-1].id, flush=True)
        sys.stdin.readline()
        await writer.dispose()
        print("released", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def busy_message(thread_id: str) -> str:
    return f"Thread {thread_id} is already being modified"


@contextlib.contextmanager
def child_writer(db: Path, thread_id: str) -> Iterator[subprocess.Popen[str]]:
    """A separate Python process holding the writer of ``thread_id``."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD_WRITER, str(db), thread_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()


async def read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    assert child.stderr is not None
    line = await asyncio.to_thread(child.stdout.readline)
    if not line:
        await asyncio.to_thread(child.wait)
        pytest.fail(f"child writer exited with {child.returncode}: {child.stderr.read()}")
    return line.strip()


async def test_second_writer_in_the_same_process_is_busy_until_dispose(
    store: ThreadStore,
) -> None:
    thread = await store.create_thread(title="exclusive", capture_environment=False)
    first = await store.acquire_writer(thread.id)

    with pytest.raises(WriterBusy, match=f"^{busy_message(thread.id)}$"):
        await store.acquire_writer(thread.id)
    await first.dispose()

    second = await store.acquire_writer(thread.id)
    assert second.thread == thread
    await second.dispose()


async def test_two_stores_on_one_file_in_one_process_share_one_writer(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with ThreadStore(SqliteRecorder(db)) as one, ThreadStore(SqliteRecorder(db)) as other:
        thread = await one.create_thread(title="exclusive", capture_environment=False)
        writer = await one.acquire_writer(thread.id)

        with pytest.raises(WriterBusy, match=f"^{busy_message(thread.id)}$"):
            await other.acquire_writer(thread.id)
        await writer.dispose()

        taken = await other.acquire_writer(thread.id)
        await taken.dispose()


async def test_writer_held_by_another_process_is_busy_until_it_disposes(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with ThreadStore(SqliteRecorder(db)) as store:
        thread = await store.create_thread(title="exclusive", capture_environment=False)
        with child_writer(db, thread.id) as child:
            child_message_id = await read_line(child)

            with pytest.raises(WriterBusy, match=f"^{busy_message(thread.id)}$"):
                await store.acquire_writer(thread.id)

            assert child.stdin is not None
            child.stdin.write("dispose\n")
            child.stdin.flush()
            assert await read_line(child) == "released"
            writer = await store.acquire_writer(thread.id)
            assert [m.id for m in writer.thread.messages] == [child_message_id]
            await writer.dispose()
            assert await asyncio.to_thread(child.wait) == 0


async def test_writer_of_a_process_killed_with_sigkill_is_free_at_once(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with ThreadStore(SqliteRecorder(db)) as store:
        thread = await store.create_thread(title="exclusive", capture_environment=False)
        with child_writer(db, thread.id) as child:
            child_message_id = await read_line(child)
            with pytest.raises(WriterBusy, match=f"^{busy_message(thread.id)}$"):
                await store.acquire_writer(thread.id)

            child.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(child.wait) == -signal.SIGKILL

            writer = await store.acquire_writer(thread.id)
            assert [m.id for m in writer.thread.messages] == [child_message_id]
            await writer.dispose()
