"""Crash loop of the lifecycle: ``kill -9`` a process that archives and restores.

A child process opens the store (so it recovers what the previous child left
half done), then archives and restores random thread families (a root thread
with its sub-agent threads) for ever. The parent kills it with SIGKILL after a
random delay, so kills land while the store opens and recovers, while objects
are written or read, and in and around the commits; then it starts the next
child. Afterwards every thread is exactly once either active or archived, its
log is the one it was created with (same versions, deltas and commit times),
no object is left over, and ``doctor`` finds nothing.

``THREADLINE_LIFECYCLE_CRASH_ITERATIONS`` sets the number of kills (default
40); ``THREADLINE_CRASH_SEED`` replays the random delays of a printed run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest

from tests.reliability import lifecycle_crash_child as child_module
from tests.reliability.test_crash_loop import CHILD_TIMEOUT, forkserver, read_until_closed
from threadline import Message, ThreadStore
from threadline.deltas import ChildLinkDelta
from threadline.lifecycle.archive import ColdStorage
from threadline.recorders import RecordedDelta, SqliteRecorder

ITERATIONS = int(os.environ.get("THREADLINE_LIFECYCLE_CRASH_ITERATIONS", "40"))
ROOTS = 12
SUB_AGENTS = 2  # under every third root
MESSAGES = 30
EARLY_KILL_EVERY = 6  # one kill in this many lands while the store opens and recovers
EARLY_KILL_DELAY = (0.0, 0.05)
KILL_DELAY = (0.002, 0.08)


async def make_families(store: ThreadStore) -> tuple[list[str], list[str]]:
    """``ROOTS`` root threads, every third with sub-agent threads; returns the
    root ids and every thread id."""
    roots: list[str] = []
    every: list[str] = []
    for r in range(ROOTS):
        root = await store.create_thread(
            title=f"root {r} ✓",
            capture_environment=False,
            messages=[
                Message(role="user", content=f"root {r} message {n}") for n in range(MESSAGES)
            ],
        )
        roots.append(root.id)
        every.append(root.id)
        for s in range(SUB_AGENTS if r % 3 == 0 else 0):
            child = await store.create_thread(
                title=f"sub-agent {r}.{s}",
                capture_environment=False,
                parent_thread_id=root.id,
                messages=[Message(role="assistant", content=f"step {n}") for n in range(MESSAGES)],
            )
            head = await store.recorder.head(root.id)
            assert head is not None
            await store.append_deltas(root.id, head.v, [ChildLinkDelta(thread_id=child.id)])
            every.append(child.id)
    return roots, every


def run_child_and_kill(
    context: ForkServerContext,
    db: Path,
    archive_url: str,
    roots: list[str],
    child: int,
    rng: random.Random,
) -> list[bytes]:
    early = child % EARLY_KILL_EVERY == EARLY_KILL_EVERY - 1
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=child_module.flip_until_killed,
        args=(str(db), archive_url, roots, rng.randrange(2**32), sender),
        name=f"lifecycle-crash-child-{child}",
        daemon=True,
    )
    records: list[bytes] = []
    try:
        process.start()
        sender.close()
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
    errors = [r.decode() for r in records if r.startswith(child_module.ERROR)]
    assert errors == [], f"child {child} failed"
    assert exitcode == -signal.SIGKILL, f"child {child} ended on its own ({exitcode})"
    return records


def kill_loop(
    db: Path, archive_url: str, roots: list[str], rng: random.Random
) -> list[list[bytes]]:
    context = forkserver()
    return [
        run_child_and_kill(context, db, archive_url, roots, child, rng)
        for child in range(ITERATIONS)
    ]


@pytest.mark.slow
async def test_kill_9_during_archive_and_restore_leaves_every_thread_once_and_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lifecycle.db"
    cold = ColdStorage.local(tmp_path / "cold")
    async with ThreadStore(SqliteRecorder(db), cold_storage=cold) as store:
        roots, every = await make_families(store)
        original: dict[str, list[RecordedDelta]] = {t: await store.history(t) for t in every}
    seed = int(os.environ.get("THREADLINE_CRASH_SEED") or random.randrange(2**32))

    runs = await asyncio.to_thread(kill_loop, db, cold.url, roots, random.Random(seed))

    async with await ThreadStore.open(db, archive_url=cold.url) as store:
        report = await store.doctor()
        active = {t for t in every if await store.recorder.head(t) is not None}
        archived = {t for t in every if await store.archived_thread(t) is not None}
        stored: dict[str, list[RecordedDelta]] = {}
        for thread_id in every:
            entry = await store.archived_thread(thread_id)
            if entry is None:
                stored[thread_id] = await store.recorder.deltas(thread_id)
            else:
                stored[thread_id] = await store.lifecycle.read_archived_log(entry)
        objects = await cold.keys()
        pending = await store.lifecycle.recorder.pending_lifecycle()
    acks = [r for records in runs for r in records[1:]]
    with capsys.disabled():
        print(
            f"\nlifecycle crash loop (seed {seed}): {len(runs)} kills, "
            f"{sum(r.startswith(b'archived:') for r in acks)} archives and "
            f"{sum(r.startswith(b'restored:') for r in acks)} restores acknowledged; "
            f"at the end {len(active)} threads active, {len(archived)} archived, "
            f"{len(objects)} objects, doctor findings {len(report.findings)}"
        )

    assert active.isdisjoint(archived)
    assert active | archived == set(every)
    assert stored == original
    assert pending == []
    assert len(objects) == len(archived)
    assert report.findings == []
    assert len(acks) > 0
