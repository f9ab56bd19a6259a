"""``threadline files`` and ``threadline rollback``, driven through a real subprocess.

The thread and its tool operations are recorded in-process through the
library; what is under test goes through ``python -m threadline``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.importers.test_edits import TAX, session_folder
from tests.test_cli import fails, run_cli, succeeds, succeeds_json
from threadline import Message, ThreadStore
from threadline.importers import import_claude_code


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print('v1')\n")
    return root


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def record_session(home: Path, project: Path) -> None:
    """Thread T-files: message M-1, then call-1 edits app.py and creates
    docs/notes.md; message M-2, then call-2 writes a binary file."""
    async with await ThreadStore.open(home / "threads.db") as store:
        thread = await store.create_thread(
            id="T-files", env={"cwd": str(project)}, capture_environment=False
        )
        await store.append_message(thread.id, Message(id="M-1", role="user", content="edit"))
        async with store.track_files(thread.id, "call-1") as files:
            await files.write("app.py", "print('v2')\n")
            await files.write("docs/notes.md", "# Notes\n")
        await store.append_message(thread.id, Message(id="M-2", role="user", content="more"))
        async with store.track_files(thread.id, "call-2") as files:
            await files.write("data.bin", b"\x00\x01")


async def test_files_lists_changes_by_operation_with_diffs(home: Path, project: Path) -> None:
    await record_session(home, project)
    out = succeeds(run_cli(home, "files", "T-files"))
    assert out.splitlines()[:6] == [
        "Operation call-1",
        out.splitlines()[1],
        "    --- a/app.py",
        "    +++ b/app.py",
        "    @@ -1 +1 @@",
        "    -print('v1')",
    ]
    assert out.splitlines()[1].startswith("  #1 modify app.py  12 B -> 12 B  ")
    assert "    +# Notes" in out
    assert "    binary: data.bin 0 -> 2 bytes" in out
    listed = succeeds_json(run_cli(home, "files", "T-files", "--operation", "call-2", "--json"))
    assert listed["thread_id"] == "T-files"
    [operation] = listed["operations"]
    assert operation["operation_id"] == "call-2"
    assert [c["change"]["path"] for c in operation["changes"]] == ["data.bin"]
    assert operation["changes"][0]["change"]["type"] == "create"
    assert fails(run_cli(home, "files", "T-none"), 1).startswith("Error: Thread T-none not found")


async def test_rollback_refuses_an_edited_file_until_forced_and_can_be_undone(
    home: Path, project: Path
) -> None:
    await record_session(home, project)
    (project / "app.py").write_text("print('mine')\n")
    refused = run_cli(home, "rollback", "T-files", "--operation", "call-1")
    assert refused.returncode == 1, refused.stderr
    assert re.search(r"^app\.py +none +refused +it was edited since", refused.stdout, re.M)
    assert re.search(r"^docs/notes\.md +remove +done", refused.stdout, re.M)
    assert "1 done, 1 refused." in refused.stdout
    assert (project / "app.py").read_text() == "print('mine')\n"
    assert not (project / "docs").exists()
    forced = succeeds_json(
        run_cli(home, "rollback", "T-files", "--operation", "call-1", "--force", "--json")
    )
    assert [(f["path"], f["status"], f["forced"]) for f in forced["files"]] == [
        ("app.py", "done", True),
        ("docs/notes.md", "unchanged", False),
    ]
    assert (project / "app.py").read_text() == "print('v1')\n"
    undo = succeeds(run_cli(home, "rollback", "T-files", "--operation", forced["operation_id"]))
    assert f"Rolled back operation {forced['operation_id']} of thread T-files." in undo
    assert (project / "app.py").read_text() == "print('mine')\n"


async def test_rollback_to_a_message_with_dry_run_then_for_real(home: Path, project: Path) -> None:
    await record_session(home, project)
    planned = succeeds_json(
        run_cli(home, "rollback", "T-files", "--to-message", "M-1", "--dry-run", "--json")
    )
    assert (planned["dry_run"], planned["after_message"], planned["operation_id"]) == (
        True,
        "M-1",
        None,
    )
    assert [(f["path"], f["action"], f["status"]) for f in planned["files"]] == [
        ("app.py", "restore", "planned"),
        ("data.bin", "remove", "planned"),
        ("docs/notes.md", "remove", "planned"),
    ]
    assert (project / "data.bin").exists()
    out = succeeds(run_cli(home, "rollback", "T-files", "--to-message", "M-1"))
    assert out.startswith("Rolled back every change after message M-1 of thread T-files.")
    assert "3 done." in out
    assert entries(project) == ["app.py"]
    assert (project / "app.py").read_text() == "print('v1')\n"


def test_rollback_needs_exactly_one_target(home: Path) -> None:
    error = fails(run_cli(home, "rollback", "T-files"), 2)
    assert "Give exactly one of --operation OP and --to-message MSG" in error


async def test_imported_edits_without_their_before_are_listed_and_never_rolled_back(
    home: Path, tmp_path: Path
) -> None:
    """A Claude Code session whose Write (t-over) replaced shop/tax.py without
    showing it first: ``files`` lists the change with its before not recorded,
    and ``rollback`` refuses that file, in a dry run and for real, even forced."""
    cwd, source = session_folder(tmp_path)
    async with await ThreadStore.open(home / "threads.db") as store:
        report = await import_claude_code(store, [source])
    assert report.edits_unknown_before == 2
    out = succeeds(run_cli(home, "files", "sess-edits", "--operation", "t-over"))
    assert out.splitlines()[0] == "Operation t-over"
    assert re.match(
        r"  #5 modify shop/tax\.py  \? -> 11 B  .*  \(before not recorded in the transcript\)$",
        out.splitlines()[1],
    )
    assert out.splitlines()[2] == (
        "    before not recorded in the transcript: shop/tax.py ? -> 11 bytes"
    )
    listed = succeeds_json(run_cli(home, "files", "sess-edits", "--no-diff", "--json"))
    blind = listed["operations"][3]["changes"][0]["change"]
    assert (blind["operation_id"], blind["before"], blind["after"]) == (
        "t-blind",
        {"unknown": True},
        {"unknown": True},
    )

    dry = run_cli(home, "rollback", "sess-edits", "--operation", "t-over", "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert re.search(
        r"^shop/tax\.py +none +refused +its content before change #5 is not recorded",
        dry.stdout,
        re.M,
    )
    assert "so it cannot be put back, not even with --force; restore it by hand" in dry.stdout
    assert "Files whose earlier content was never recorded cannot be rolled back" in dry.stdout
    assert "--force overwrites them" not in dry.stdout
    assert "Dry run: nothing was changed." in dry.stdout
    for force in ((), ("--force",)):
        real = run_cli(home, "rollback", "sess-edits", "--operation", "t-over", *force, "--json")
        assert real.returncode == 1, real.stderr
        outcome = json.loads(real.stdout)
        assert outcome["operation_id"] is None
        assert [(f["path"], f["status"], f["unrecorded"]) for f in outcome["files"]] == [
            ("shop/tax.py", "refused", True)
        ]
    assert (cwd / "shop" / "tax.py").read_text() == TAX
