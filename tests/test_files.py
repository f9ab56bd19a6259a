"""File change tracking and rollback through ThreadStore, on a real temporary tree."""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import Message, ThreadStore
from threadline.errors import (
    ContentCorrupt,
    InvalidFileChange,
    MessageNotFound,
    NoWorkingDirectory,
    OperationNotFound,
    PathOutsideWorkspace,
    RollbackInterrupted,
    ThreadNotFound,
)
from threadline.files.contents import content_hash
from threadline.files.log import FileState, NewFileChange
from threadline.files.rollback import RollbackReport
from threadline.recorders import MemoryRecorder, SqliteRecorder
from threadline.recorders.roles import file_log


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('v1')\n")
    (root / "README").write_text("readme\n")
    return root


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    recorder = MemoryRecorder() if request.param == "memory" else SqliteRecorder(tmp_path / "t.db")
    async with ThreadStore(recorder) as opened:
        yield opened


async def new_thread(store: ThreadStore, tree: Path) -> str:
    thread = await store.create_thread(env={"cwd": str(tree)}, capture_environment=False)
    return thread.id


def outcomes(report: RollbackReport) -> list[tuple[str, str, str]]:
    return [(f.path, f.action, f.status) for f in report.files]


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under ``root``: bytes (None for a directory) and mode."""
    found: dict[str, tuple[bytes | None, int]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode & 0o7777
        found[path.relative_to(root).as_posix()] = (
            None if path.is_dir() else path.read_bytes(),
            mode,
        )
    return found


# -- recording ------------------------------------------------------------------


async def test_a_change_keeps_the_content_before_and_after(store: ThreadStore, tree: Path) -> None:
    thread_id = await new_thread(store, tree)
    change = await store.record_file_change(
        thread_id, "call-1", path="src/app.py", type="modify", new_content="print('v2')\n"
    )
    assert (change.seq, change.operation_id, change.path, change.type) == (
        1,
        "call-1",
        "src/app.py",
        "modify",
    )
    assert isinstance(change.before, FileState)
    assert isinstance(change.after, FileState)
    assert await store.file_content(change.before.hash) == b"print('v1')\n"
    assert await store.file_content(change.after.hash) == b"print('v2')\n"
    assert (
        change.after.mode == change.before.mode == (tree / "src" / "app.py").stat().st_mode & 0o777
    )
    assert await store.file_changes(thread_id) == [change]


async def test_records_are_durable_once_recorded(tmp_path: Path, tree: Path) -> None:
    async with await ThreadStore.open(tmp_path / "t.db") as store:
        thread_id = await new_thread(store, tree)
        change = await store.record_file_change(thread_id, "call-1", path="README", type="delete")
    async with await ThreadStore.open(tmp_path / "t.db") as reopened:
        assert await reopened.file_changes(thread_id) == [change]
        assert isinstance(change.before, FileState)
        assert await reopened.file_content(change.before.hash) == b"readme\n"


async def test_a_file_log_from_before_migration_12_reads_as_it_was(
    tmp_path: Path, tree: Path
) -> None:
    """Migration 12 added the flags of contents not recorded; rows written
    before it hold known contents and read back unchanged."""
    path = tmp_path / "t.db"
    async with await ThreadStore.open(path) as store:
        thread_id = await new_thread(store, tree)
        async with store.track_files(thread_id, "call-1") as files:
            await files.write("src/app.py", "print('v2')\n")
            await files.delete("README")
        before = await store.file_changes(thread_id)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        ALTER TABLE file_changes DROP COLUMN before_unknown;
        ALTER TABLE file_changes DROP COLUMN after_unknown;
        DELETE FROM schema_migrations WHERE version = 12;
        """
    )
    conn.close()
    async with await ThreadStore.open(path) as reopened:
        assert await reopened.file_changes(thread_id) == before
        assert [(c.before_unknown, c.after_unknown) for c in before] == [(False, False)] * 2
        plan = await reopened.rollback_operation(thread_id, "call-1", dry_run=True)
        assert outcomes(plan) == [
            ("README", "recreate", "planned"),
            ("src/app.py", "restore", "planned"),
        ]


@pytest.mark.parametrize(
    ("path", "kind", "content", "message"),
    [
        ("README", "create", "x", "it exists already; record a modify"),
        ("missing.txt", "modify", "x", "it does not exist, so there is nothing to modify"),
        ("missing.txt", "delete", None, "it does not exist, so there is nothing to delete"),
        ("README", "delete", "x", "a delete has no new content"),
        ("README", "modify", None, "give new_content"),
        ("README", "rename", "x", "type must be create, modify or delete, not 'rename'"),
        ("src", "modify", "x", "it is not a regular file"),
    ],
)
async def test_a_change_that_does_not_match_the_disk_is_refused(
    store: ThreadStore, tree: Path, path: str, kind: str, content: str | None, message: str
) -> None:
    thread_id = await new_thread(store, tree)
    with pytest.raises(InvalidFileChange, match=message) as raised:
        await store.record_file_change(
            thread_id,
            "call-1",
            path=path,
            type=kind,  # type: ignore[arg-type]
            new_content=content,
        )
    assert f"thread {thread_id}" in str(raised.value)
    assert await store.file_changes(thread_id) == []


def test_a_change_needs_a_file_before_or_after_it() -> None:
    with pytest.raises(ValueError, match="a file change needs a file before or after it"):
        NewFileChange(operation_id="op", path="a", before=None, after=None)


async def test_a_thread_without_a_working_directory_cannot_track_files(
    store: ThreadStore, tree: Path
) -> None:
    thread = await store.create_thread(capture_environment=False)
    with pytest.raises(NoWorkingDirectory, match=f"Thread {thread.id} has no working directory"):
        await store.record_file_change(thread.id, "c", path="README", type="delete")
    with pytest.raises(ThreadNotFound):
        await store.record_file_change("T-none", "c", path="README", type="delete")


# -- paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("../outside.txt", "'..' leads out of it"),
        ("src/../../outside.txt", "'..' leads out of it"),
        ("/etc/hostname", "an absolute path elsewhere"),
        ("out/secret.txt", "a symbolic link leads to"),
        ("escape.txt", "a symbolic link leads to"),
        (".", "it is the working directory itself"),
    ],
)
async def test_a_path_that_escapes_the_working_directory_is_refused(
    store: ThreadStore, tree: Path, path: str, detail: str
) -> None:
    outside = tree.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (tree / "out").symlink_to(outside)
    (tree / "escape.txt").symlink_to(outside / "secret.txt")
    thread_id = await new_thread(store, tree)
    with pytest.raises(PathOutsideWorkspace, match=detail):
        await store.record_file_change(thread_id, "c", path=path, type="modify", new_content="x")
    with pytest.raises(PathOutsideWorkspace):
        async with store.track_files(thread_id, "c") as files:
            await files.write(path, "x")
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert await store.file_changes(thread_id) == []


async def test_paths_inside_are_kept_relative_and_resolved(store: ThreadStore, tree: Path) -> None:
    (tree / "link").symlink_to(tree / "src")
    thread_id = await new_thread(store, tree)
    absolute = await store.record_file_change(
        thread_id, "c", path=tree / "README", type="modify", new_content="new\n"
    )
    through_link = await store.record_file_change(
        thread_id, "c", path="link/./app.py", type="modify", new_content="x\n"
    )
    dotted = await store.record_file_change(
        thread_id, "c", path="src/../new.txt", type="create", new_content="n\n"
    )
    assert [absolute.path, through_link.path, dotted.path] == ["README", "src/app.py", "new.txt"]


async def test_a_rollback_refuses_a_path_that_now_leads_outside(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
    outside = tree.parent / "outside"
    (tree / "src").rename(outside)
    (tree / "src").symlink_to(outside)
    report = await store.rollback_operation(thread_id, "call-1", force=True)
    [refused] = report.files
    assert (refused.status, refused.forced) == ("refused", False)
    assert refused.reason is not None
    assert "a symbolic link leads to" in refused.reason
    assert (outside / "app.py").read_text() == "print('v2')\n"


# -- rolling back ------------------------------------------------------------------


async def test_rollback_undoes_a_create_a_modify_and_a_delete(
    store: ThreadStore, tree: Path
) -> None:
    before = snapshot(tree)
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
        await files.write("docs/guide/intro.md", "# Intro\n")
        await files.delete("README")
    assert [c.type for c in files.changes] == ["modify", "create", "delete"]
    assert files.changes[1].dirs == ("docs", "docs/guide")
    report = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(report) == [
        ("README", "recreate", "done"),
        ("docs/guide/intro.md", "remove", "done"),
        ("src/app.py", "restore", "done"),
    ]
    assert (report.ok, report.finished, report.undoes_operation) == (True, True, "call-1")
    assert snapshot(tree) == before


async def test_several_changes_of_one_operation_go_back_to_the_first_state(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        for n in range(2, 5):
            await files.write("src/app.py", f"print('v{n}')\n")
        await files.write("tmp.txt", "1")
        await files.delete("tmp.txt")
    report = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(report) == [
        ("src/app.py", "restore", "done"),
        ("tmp.txt", "none", "unchanged"),
    ]
    assert report.files[0].changes == (1, 2, 3)
    assert (tree / "src" / "app.py").read_text() == "print('v1')\n"
    assert not (tree / "tmp.txt").exists()


async def test_modes_are_kept_and_restored(store: ThreadStore, tree: Path) -> None:
    script = tree / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    readme_mode = (tree / "README").stat().st_mode & 0o7777
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        changed = await files.write("run.sh", "#!/bin/sh\necho hi\n")
        secret = await files.write("secret.key", "k", mode=0o600)
        await files.write("README", "readme\n", mode=0o700)
    assert isinstance(changed.after, FileState)
    assert changed.after.mode == 0o755
    assert isinstance(secret.after, FileState)
    assert secret.after.mode == 0o600
    assert (tree / "secret.key").stat().st_mode & 0o7777 == 0o600
    assert (tree / "README").stat().st_mode & 0o7777 == 0o700
    await store.rollback_operation(thread_id, "call-1")
    assert script.stat().st_mode & 0o7777 == 0o755
    assert (tree / "README").stat().st_mode & 0o7777 == readme_mode
    assert script.read_text() == "#!/bin/sh\n"


async def test_rollback_to_a_message_undoes_every_later_operation(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    first = Message(role="user", content="add a feature")
    await store.append_message(thread_id, first)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
    kept = snapshot(tree)
    second = Message(role="user", content="and another")
    await store.append_message(thread_id, second)
    async with store.track_files(thread_id, "call-2") as files:
        await files.write("src/app.py", "print('v3')\n")
        await files.write("feature.py", "x = 1\n")
    async with store.track_files(thread_id, "call-3") as files:
        await files.delete("README")
    report = await store.rollback_to(thread_id, second.id)
    assert outcomes(report) == [
        ("README", "recreate", "done"),
        ("feature.py", "remove", "done"),
        ("src/app.py", "restore", "done"),
    ]
    assert report.after_message == second.id
    assert snapshot(tree) == kept
    again = await store.rollback_to(thread_id, second.id)
    assert [f.status for f in again.files] == ["unchanged"] * 3
    assert again.operation_id is None
    undo = await store.rollback_operation(thread_id, report.operation_id or "")
    assert (tree / "src" / "app.py").read_text() == "print('v3')\n"
    assert not (tree / "README").exists()
    assert undo.ok


async def test_a_file_edited_since_is_refused_unless_forced_and_forcing_is_undoable(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
        await files.write("notes.txt", "agent notes\n")
    (tree / "src" / "app.py").write_text("print('edited by hand')\n")
    report = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(report) == [
        ("notes.txt", "remove", "done"),
        ("src/app.py", "none", "refused"),
    ]
    refused = report.refused[0]
    assert refused.reason is not None
    assert refused.reason.startswith("it was edited since (expected 12 bytes, sha256 ")
    assert "--force" in refused.reason
    assert (tree / "src" / "app.py").read_text() == "print('edited by hand')\n"
    assert not report.ok
    forced = await store.rollback_operation(thread_id, "call-1", force=True)
    assert [(f.path, f.status, f.forced) for f in forced.files] == [
        ("notes.txt", "unchanged", False),
        ("src/app.py", "done", True),
    ]
    assert (tree / "src" / "app.py").read_text() == "print('v1')\n"
    await store.rollback_operation(thread_id, forced.operation_id or "")
    assert (tree / "src" / "app.py").read_text() == "print('edited by hand')\n"


async def test_a_later_operation_on_the_same_file_must_be_rolled_back_first(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
    async with store.track_files(thread_id, "call-2") as files:
        await files.write("src/app.py", "print('v3')\n")
    blocked = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(blocked) == [("src/app.py", "none", "refused")]
    assert blocked.files[0].reason is not None
    assert blocked.files[0].reason.startswith(
        "operation call-2 changed it since (change #2); roll that back first"
    )
    await store.rollback_operation(thread_id, "call-2")
    assert outcomes(await store.rollback_operation(thread_id, "call-1")) == [
        ("src/app.py", "restore", "done")
    ]
    assert (tree / "src" / "app.py").read_text() == "print('v1')\n"


async def test_forcing_past_a_later_change_leaves_a_file_already_as_wanted(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("tmp.txt", "scratch")
    async with store.track_files(thread_id, "call-2") as files:
        await files.delete("tmp.txt")
    report = await store.rollback_operation(thread_id, "call-1", force=True)
    assert [(f.action, f.status, f.forced) for f in report.files] == [("none", "unchanged", False)]
    assert report.files[0].reason is not None
    assert "operation call-2 changed it since" in report.files[0].reason
    assert report.operation_id is None


async def test_a_rollback_is_recorded_once_and_can_be_undone(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
    after = snapshot(tree)
    report = await store.rollback_operation(thread_id, "call-1")
    assert report.operation_id is not None
    assert report.operation_id.startswith("R-")
    [record] = await store.file_changes(thread_id, operation_id=report.operation_id)
    assert (record.type, record.reverts) == ("modify", (1,))
    again = await store.rollback_operation(thread_id, "call-1")
    assert [(f.status, f.reason) for f in again.files] == [
        ("unchanged", f"already rolled back by {report.operation_id}")
    ]
    assert again.operation_id is None
    assert len(await store.file_changes(thread_id)) == 2
    undo = await store.rollback_operation(thread_id, report.operation_id)
    assert outcomes(undo) == [("src/app.py", "restore", "done")]
    assert snapshot(tree) == after
    # The original operation is live again, so it can be rolled back again.
    assert outcomes(await store.rollback_operation(thread_id, "call-1")) == [
        ("src/app.py", "restore", "done")
    ]


async def test_a_dry_run_reports_and_changes_nothing(store: ThreadStore, tree: Path) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
        await files.write("new.txt", "n")
    (tree / "new.txt").write_text("edited")
    after = snapshot(tree)
    report = await store.rollback_operation(thread_id, "call-1", dry_run=True)
    assert outcomes(report) == [
        ("new.txt", "none", "refused"),
        ("src/app.py", "restore", "planned"),
    ]
    forced = await store.rollback_operation(thread_id, "call-1", dry_run=True, force=True)
    assert [(f.action, f.status, f.forced) for f in forced.files] == [
        ("remove", "planned", True),
        ("restore", "planned", False),
    ]
    assert (report.dry_run, report.operation_id) == (True, None)
    assert snapshot(tree) == after
    assert len(await store.file_changes(thread_id)) == 2


async def test_a_change_that_was_never_written_is_left_alone(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    await store.record_file_change(
        thread_id, "call-1", path="src/app.py", type="modify", new_content="never written\n"
    )
    report = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(report) == [("src/app.py", "none", "unchanged")]
    assert (
        report.files[0].reason == "already as before the changes (never written, or undone by hand)"
    )


async def test_unknown_operations_and_messages_are_reported(store: ThreadStore, tree: Path) -> None:
    thread_id = await new_thread(store, tree)
    with pytest.raises(OperationNotFound, match=f"Thread {thread_id} has no file changes of"):
        await store.rollback_operation(thread_id, "call-none")
    with pytest.raises(MessageNotFound, match=f"Thread {thread_id} has no message M-none"):
        await store.rollback_to(thread_id, "M-none")
    with pytest.raises(OperationNotFound):
        await store.file_operations(thread_id, operation_id="call-none")
    with pytest.raises(ContentCorrupt, match="it is not stored"):
        await store.file_content("0" * 64)


async def test_an_interrupted_rollback_must_be_finished_first_and_running_it_again_does(
    store: ThreadStore, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("a.txt", "a")
        await files.write("b.txt", "b")
    async with store.track_files(thread_id, "call-2") as files:
        await files.write("c.txt", "c")
    real_remove = os.unlink

    def failing_unlink(path: str | os.PathLike[str]) -> None:
        if Path(path).name == "b.txt":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        real_remove(path)

    monkeypatch.setattr(os, "unlink", failing_unlink)
    failed = await store.rollback_operation(thread_id, "call-1")
    assert outcomes(failed) == [("a.txt", "remove", "done"), ("b.txt", "remove", "failed")]
    assert failed.finished is False
    assert failed.failed[0].reason is not None
    assert "run the rollback again to finish it" in failed.failed[0].reason
    with pytest.raises(RollbackInterrupted, match="--operation call-1"):
        await store.rollback_operation(thread_id, "call-2")
    monkeypatch.setattr(os, "unlink", real_remove)
    resumed = await store.rollback_operation(thread_id, "call-1")
    assert (resumed.resumed, resumed.finished, resumed.operation_id) == (
        True,
        True,
        failed.operation_id,
    )
    assert outcomes(resumed) == [("a.txt", "none", "unchanged"), ("b.txt", "remove", "done")]
    assert sorted(snapshot(tree)) == ["README", "c.txt", "src", "src/app.py"]
    assert (await store.rollback_operation(thread_id, "call-2")).ok


# -- contents ------------------------------------------------------------------------


async def test_binary_and_large_files_round_trip(store: ThreadStore, tree: Path) -> None:
    rng = random.Random(6)
    binary = bytes(range(256)) * 64
    large = rng.randbytes(3_000_000)
    text = ("line of a large text file\n" * 200_000).encode()
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("blob.bin", binary)
        await files.write("random.bin", large)
        await files.write("big.txt", text)
    edited = bytearray(large)
    edited[1_500_000:1_500_010] = b"0123456789"
    async with store.track_files(thread_id, "call-2") as files:
        await files.write("random.bin", bytes(edited))
        await files.write("big.txt", text + b"one more line\n")
    for change in await store.file_changes(thread_id):
        assert isinstance(change.after, FileState)
        wanted = (tree / change.path).read_bytes() if change.operation_id == "call-2" else None
        if wanted is not None:
            assert await store.file_content(change.after.hash) == wanted
    assert await store.file_content(content_hash(large)) == large
    await store.rollback_operation(thread_id, "call-2")
    assert (tree / "random.bin").read_bytes() == large
    assert (tree / "big.txt").read_bytes() == text
    await store.rollback_operation(thread_id, "call-1")
    assert not (tree / "random.bin").exists()


async def test_storage_grows_by_one_copy_per_distinct_content(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    first, second = b"first version\n" * 1000, b"second version\n" * 1000
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("a.txt", first)
    usage = await file_log(store.recorder).content_usage()
    assert usage.contents == 1
    async with store.track_files(thread_id, "call-2") as files:
        await files.write("a.txt", second)
    two = await file_log(store.recorder).content_usage()
    assert two.contents == 2
    for n in range(3, 9):
        async with store.track_files(thread_id, f"call-{n}") as files:
            await files.write("a.txt", first if n % 2 else second)
            await files.write(f"copy-{n}.txt", first)
    assert await file_log(store.recorder).content_usage() == two
    assert len(await store.file_changes(thread_id)) == 14


async def test_a_file_edited_many_times_does_not_cost_a_copy_per_edit(
    store: ThreadStore, tree: Path
) -> None:
    rng = random.Random(2)
    words = [f"word{n}" for n in range(500)]
    content = " ".join(rng.choice(words) for _ in range(16_000)).encode()[:100_000]
    (tree / "big.txt").write_bytes(content)
    thread_id = await new_thread(store, tree)
    for n in range(40):
        at = rng.randrange(len(content) - 20)
        content = content[:at] + f"edit {n:04d}".encode() + content[at + 9 :]
        async with store.track_files(thread_id, f"call-{n}") as files:
            await files.write("big.txt", content)
    usage = await file_log(store.recorder).content_usage()
    assert usage.contents == 41
    assert usage.raw_bytes > 40 * 100_000
    # The first copy is compressed whole; each edit is a delta of a few hundred bytes.
    chain = await file_log(store.recorder).content_chain(content_hash(content))
    assert [c.depth for c in chain] == list(range(40, -1, -1))
    assert usage.stored_bytes - len(chain[-1].data) < 40 * 400


# -- listing -------------------------------------------------------------------------


async def test_operations_are_listed_with_diffs(store: ThreadStore, tree: Path) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        await files.write("src/app.py", "print('v2')\n")
        await files.write("data.bin", b"\x00\x01\x02")
    report = await store.rollback_operation(thread_id, "call-1")
    listed = await store.file_operations(thread_id)
    assert [(op.operation_id, op.reverted, op.rollback is not None) for op in listed] == [
        ("call-1", True, False),
        (report.operation_id, False, True),
    ]
    app, data = listed[0].changes
    assert app.diff == (
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-print('v1')\n+print('v2')\n"
    )
    assert isinstance(data.change.after, FileState)
    mode = data.change.after.mode
    assert data.diff == f"new file mode {0o100000 | mode:o}\nbinary: data.bin 0 -> 3 bytes\n"
    assert listed[1].rollback is not None
    assert listed[1].rollback.undoes_operation == "call-1"
    only = await store.file_operations(thread_id, operation_id="call-1", diffs=False)
    assert [d.diff for d in only[0].changes] == ["", ""]


async def test_tool_files_refuse_writes_once_the_block_is_left(
    store: ThreadStore, tree: Path
) -> None:
    thread_id = await new_thread(store, tree)
    async with store.track_files(thread_id, "call-1") as files:
        assert await files.read("README") == b"readme\n"
    with pytest.raises(InvalidFileChange, match="file tracking of operation call-1 has ended"):
        await files.write("README", "late")
    assert (tree / "README").read_text() == "readme\n"
