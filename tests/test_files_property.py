"""Property: any sequence of tool operations (creates, modifies, deletes, mode
changes) on a real temporary tree, rolled back in any order, leaves every file
exactly as it was before them, bytes and modes."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from threadline import ThreadStore
from threadline.recorders import MemoryRecorder

PATHS = ("a.txt", "b.bin", "d/c.txt", "d/e/f.txt", "g/h.txt")
# A few shared contents make operations write what an earlier one wrote (A -> B -> A).
contents = st.sampled_from([b"", b"one\n", b"two\n", bytes(range(256))]) | st.binary(max_size=200)
modes = st.sampled_from([0o644, 0o600, 0o755, 0o640])
actions = st.tuples(
    st.sampled_from(PATHS),
    st.sampled_from(["write", "write", "delete"]),
    contents,
    st.none() | modes,
)
operations = st.lists(st.lists(actions, min_size=1, max_size=3), min_size=1, max_size=6)
initial_trees = st.dictionaries(st.sampled_from(PATHS), st.tuples(contents, modes), max_size=5)

Tree = dict[str, tuple[bytes, int]]


def files_of(root: Path) -> Tree:
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mode & 0o7777)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def dirs_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


async def run_scenario(
    root: Path, ops: list[list[tuple[str, str, bytes, int | None]]], order: list[int]
) -> tuple[int, int]:
    """Apply ``ops`` through the tracker, then roll them back in ``order``,
    passing over the ones still refused until no pass makes progress.
    Returns (rollbacks run, files refused along the way)."""
    async with ThreadStore(MemoryRecorder()) as store:
        thread = await store.create_thread(env={"cwd": str(root)}, capture_environment=False)
        for number, op in enumerate(ops):
            async with store.track_files(thread.id, f"call-{number}") as files:
                for path, kind, content, mode in op:
                    if kind == "delete" and (root / path).is_file():
                        await files.delete(path)
                    else:
                        await files.write(path, content, mode=mode)
        pending = [f"call-{n}" for n in order]
        runs = refusals = 0
        progress = True
        while pending and progress:
            progress = False
            for operation_id in list(pending):
                report = await store.rollback_operation(thread.id, operation_id)
                runs += 1
                assert not report.failed
                refusals += len(report.refused)
                if any(f.status == "done" for f in report.files):
                    progress = True
                if report.ok:
                    pending.remove(operation_id)
        return runs, refusals


@given(initial_trees, operations, st.data())
def test_rolling_back_operations_in_any_order_restores_every_file(
    initial: dict[str, tuple[bytes, int]],
    ops: list[list[tuple[str, str, bytes, int | None]]],
    data: st.DataObject,
) -> None:
    order = data.draw(st.permutations(range(len(ops))))
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        for path, (content, mode) in initial.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
            (root / path).chmod(mode)
        before, dirs_before = files_of(root), dirs_of(root)
        asyncio.run(run_scenario(root, ops, list(order)))
        assert files_of(root) == before
        # Directories the operations made are gone, unless another operation's
        # file still held them when theirs was removed: then they stay, empty.
        left = dirs_of(root)
        assert dirs_before <= left
        assert all(_holds_no_file(root / d) for d in left - dirs_before)


def _holds_no_file(directory: Path) -> bool:
    return all(p.is_dir() for p in directory.rglob("*"))


@given(initial_trees, operations)
def test_rolling_back_newest_first_restores_the_tree_exactly(
    initial: dict[str, tuple[bytes, int]],
    ops: list[list[tuple[str, str, bytes, int | None]]],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        for path, (content, mode) in initial.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
            (root / path).chmod(mode)
        before, dirs_before = files_of(root), dirs_of(root)
        runs, refusals = asyncio.run(run_scenario(root, ops, list(reversed(range(len(ops))))))
        assert (runs, refusals) == (len(ops), 0)
        assert files_of(root) == before
        assert dirs_of(root) == dirs_before
