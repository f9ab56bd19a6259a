"""``kill -9`` in the middle of a rollback: every file is rolled back or untouched,
and running the rollback again finishes it.

One operation changed many files (modified, created in new directories,
deleted). A child process rolls it back and reports each file it wrote; the
parent kills it with SIGKILL after a chosen number of files (0: before any),
so that the kill lands between two files or in the middle of one. Then each
file must hold exactly what the operation left or exactly what it replaced,
the parent runs the same rollback again (which resumes the interrupted one)
and the tree must be as before the operation. Undoing that rollback brings
the operation's files back for the next round.
"""

from __future__ import annotations

import os
import random
import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest

from tests.reliability import rollback_crash_child as child
from tests.reliability.test_crash_loop import CHILD_TIMEOUT, forkserver, read_until_closed
from threadline import ThreadStore
from threadline.files.workdir import TEMP_SUFFIX

FILES = 48
ROUNDS = int(os.environ.get("THREADLINE_ROLLBACK_CRASH_ROUNDS", "8"))

Tree = dict[str, tuple[bytes, int]]


def files_of(root: Path) -> Tree:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o7777)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(TEMP_SUFFIX)
    }


def make_tree(root: Path) -> None:
    rng = random.Random(5)
    for n in range(FILES):
        path = root / f"src/module_{n:02d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(2_000 + n * 100))
        path.chmod(0o644 if n % 3 else 0o755)


async def change_everything(store: ThreadStore, thread_id: str) -> None:
    """One operation: modify half the files, delete a quarter, create as many
    new ones in new directories."""
    rng = random.Random(9)
    async with store.track_files(thread_id, "call-big") as files:
        for n in range(FILES):
            path = f"src/module_{n:02d}.py"
            if n % 4 == 0:
                await files.delete(path)
            else:
                await files.write(path, rng.randbytes(3_000), mode=0o600 if n % 2 else None)
            if n % 2 == 0:
                await files.write(f"generated/part_{n % 3}/new_{n:02d}.py", rng.randbytes(1_500))


def run_and_kill(
    context: ForkServerContext, db: Path, thread_id: str, kill_after: int
) -> tuple[int, bool]:
    """Run a child and kill it once it has written ``kill_after`` files.
    Returns the files it reported written, and whether it finished first."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=child.roll_back_until_killed,
        args=(str(db), thread_id, "call-big", sender),
        daemon=True,
    )
    records: list[bytes] = []
    try:
        process.start()
        sender.close()
        wrote = 0
        while True:
            if not receiver.poll(CHILD_TIMEOUT):
                pytest.fail("the rollback child went silent")
            record = receiver.recv_bytes()
            records.append(record)
            if record.startswith(child.ERROR):
                pytest.fail(record.decode())
            if record == child.DONE:
                break
            wrote += record == child.WROTE
            if record in (child.READY, child.WROTE) and wrote >= kill_after:
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)
                break
        process.join()
        records += read_until_closed(receiver)
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
        receiver.close()
    errors = [r.decode() for r in records if r.startswith(child.ERROR)]
    assert errors == []
    return records.count(child.WROTE), child.DONE in records


@pytest.mark.slow
async def test_kill_9_mid_rollback_leaves_each_file_whole_and_a_rerun_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    make_tree(root)
    db = tmp_path / "threads.db"
    before = files_of(root)
    async with await ThreadStore.open(db) as store:
        thread = await store.create_thread(env={"cwd": str(root)}, capture_environment=False)
        await change_everything(store, thread.id)
    after = files_of(root)
    touched = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert len(touched) == FILES + FILES // 2
    context = forkserver()
    rng = random.Random(int(os.environ.get("THREADLINE_CRASH_SEED", "3")))
    stops = [0, 1, len(touched) - 1, *(rng.randrange(2, len(touched) - 1) for _ in range(ROUNDS))]
    seen: list[tuple[int, int]] = []
    for kill_after in stops:
        wrote, finished = run_and_kill(context, db, thread.id, kill_after)
        assert not finished
        now = files_of(root)
        rolled_back = {p for p in touched if now.get(p) == before.get(p)}
        untouched = {p for p in touched if now.get(p) == after.get(p)}
        assert rolled_back | untouched == touched, "a file is neither rolled back nor untouched"
        assert not rolled_back & untouched
        assert {p: now[p] for p in now if p not in touched} == {
            p: before[p] for p in before if p not in touched
        }
        # Every write the child reported is there; at most the one in flight more.
        assert wrote <= len(rolled_back) <= wrote + 1
        seen.append((kill_after, len(rolled_back)))

        async with await ThreadStore.open(db) as store:
            report = await store.rollback_operation(thread.id, "call-big")
            assert report.finished
            assert report.ok
            # Once a file was written the journal was there (killed right after
            # READY, the child may or may not have written it yet).
            assert report.resumed or kill_after == 0
            assert sum(f.status == "done" for f in report.files) == len(touched - rolled_back)
            assert files_of(root) == before
            assert not list(root.rglob(f"*{TEMP_SUFFIX}"))
            assert not (root / "generated").exists()
            assert report.operation_id is not None
            undo = await store.rollback_operation(thread.id, report.operation_id)
            assert undo.ok
            assert files_of(root) == after
    with capsys.disabled():
        print(f"\nrollback crash: (kill after, files rolled back when killed) {seen}")
