"""Crash loop: ``kill -9`` a writing process at random moments, hundreds of times.

A child process appends messages to one thread through a writer and reports
each acknowledged message (``append`` returned) on a pipe. The parent kills
it with SIGKILL after a random delay, so kills land while opening the store,
mid-commit and between a commit and its report, then starts the next child,
which must reopen the store and take the writer of the dead one. Afterwards
every acknowledged message is in the thread exactly once, in order, and the
log and the database are sound.

``THREADLINE_CRASH_ITERATIONS`` sets the number of kills (default 200);
``THREADLINE_CRASH_SEED`` replays the random delays of a printed run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest

from tests.reliability import crash_child
from threadline import ThreadStore
from threadline.recorders import SqliteRecorder

ITERATIONS = int(os.environ.get("THREADLINE_CRASH_ITERATIONS", "200"))
# One kill in this many lands before the child reports ready: while it opens
# the store (WAL recovery, migrations) or takes the writer.
EARLY_KILL_EVERY = 8
EARLY_KILL_DELAY = (0.0, 0.03)
KILL_DELAY = (0.005, 0.06)
# Generous bounds on waiting for a child, only so that a hung child fails the
# test instead of hanging it; no outcome depends on them.
CHILD_TIMEOUT = 60.0


@dataclass(frozen=True)
class ChildRun:
    child: int
    ready: bool
    acked: list[str]


def forkserver() -> ForkServerContext:
    """Children forked from a server that has threadline imported already.

    Every child also re-runs the script that started pytest as ``__mp_main__``
    (multiprocessing's main-module fix-up); preloading what pytest's entry
    script imports keeps that from costing an import of pytest per child.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["threadline", "_pytest.config"])
    return context


def read_until_closed(receiver: Connection) -> list[bytes]:
    records: list[bytes] = []
    while receiver.poll(CHILD_TIMEOUT):
        try:
            records.append(receiver.recv_bytes())
        except EOFError:
            return records
    pytest.fail("the pipe of a killed child did not close")


def run_child_and_kill(
    context: ForkServerContext, db: Path, thread_id: str, child: int, rng: random.Random
) -> ChildRun:
    early = child % EARLY_KILL_EVERY == EARLY_KILL_EVERY - 1
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=crash_child.append_until_killed,
        args=(str(db), thread_id, child, sender),
        name=f"crash-child-{child}",
        daemon=True,
    )
    records: list[bytes] = []
    try:
        process.start()
        sender.close()  # the child holds the only write end: EOF once it is dead
        if early:
            time.sleep(rng.uniform(*EARLY_KILL_DELAY))
        else:
            if not receiver.poll(CHILD_TIMEOUT):
                pytest.fail(f"child {child} did not report ready")
            records.append(receiver.recv_bytes())
            time.sleep(rng.uniform(*KILL_DELAY))
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        records += read_until_closed(receiver)
        exitcode = process.exitcode
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
        receiver.close()
        sender.close()
    errors = [r.decode() for r in records if r.startswith(crash_child.ERROR)]
    assert errors == [], f"child {child} failed"
    assert exitcode == -signal.SIGKILL, f"child {child} ended on its own ({exitcode})"
    assert records[:1] in ([], [crash_child.READY]), f"child {child} sent {records[:1]} first"
    return ChildRun(child, ready=bool(records), acked=[r.decode() for r in records[1:]])


def kill_loop(db: Path, thread_id: str, iterations: int, rng: random.Random) -> list[ChildRun]:
    context = forkserver()
    return [run_child_and_kill(context, db, thread_id, child, rng) for child in range(iterations)]


@pytest.mark.slow
async def test_kill_9_loop_loses_and_duplicates_no_acknowledged_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "crash.db"
    async with ThreadStore(SqliteRecorder(db, synchronous="FULL")) as store:
        thread = await store.create_thread(title="crash loop", capture_environment=False)
    seed = int(os.environ.get("THREADLINE_CRASH_SEED") or random.randrange(2**32))

    runs = await asyncio.to_thread(kill_loop, db, thread.id, ITERATIONS, random.Random(seed))

    recorder = SqliteRecorder(db)
    async with ThreadStore(recorder) as store:
        stored = await store.get_thread(thread.id)
        versions = [r.v for r in await store.history(thread.id)]
        head = await recorder.head(thread.id)
        integrity = await recorder.integrity_check()
    assert head is not None
    acked = sum(len(run.acked) for run in runs)
    present = len(stored.messages)
    present_ids = [m.id for m in stored.messages]
    lost = len({i for run in runs for i in run.acked} - set(present_ids))
    duplicated = len(present_ids) - len(set(present_ids))
    with capsys.disabled():
        print(
            f"\ncrash loop (seed {seed}): {len(runs)} kills "
            f"({sum(not run.ready for run in runs)} before the writer was taken), "
            f"{acked} acknowledged, {present} present "
            f"({present - acked} appended but killed before acknowledging), "
            f"{lost} lost, {duplicated} duplicated, "
            f"versions 1..{versions[-1] if versions else 0} ({len(versions)} logged), "
            f"head message_count {head.message_count}, integrity_check {integrity}"
        )

    ids = [m.id for m in stored.messages]
    assert len(set(ids)) == len(ids), "a message is present twice"
    by_child: dict[int, list[str]] = {run.child: [] for run in runs}
    labels: list[tuple[int, int]] = []
    for message in stored.messages:
        child, n = (int(part) for part in message.content.split(":"))
        assert message.content == crash_child.message_content(child, n)
        labels.append((child, n))
        by_child[child].append(message.id)
    assert labels == sorted(labels), "messages out of the order they were appended in"
    for run in runs:
        appended = by_child[run.child]
        assert appended[: len(run.acked)] == run.acked, f"child {run.child} lost an ack"
        # At most the one append in flight when the kill came is there unacknowledged.
        assert len(appended) - len(run.acked) in (0, 1)
    assert acked > 0
    assert versions == list(range(1, stored.v + 1))
    assert stored.v == 1 + present
    assert (head.v, head.message_count) == (stored.v, present)
    assert integrity == "ok"
