"""``threadline archive``, ``restore``, ``doctor`` and the archived marker of
``list``, driven through a real subprocess as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.test_cli import fails, run_cli, succeeds, succeeds_json
from threadline import Message, ThreadStore
from threadline.deltas import ChildLinkDelta
from threadline.ids import now_ms

DAY_MS = 86_400_000


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


async def make_threads(home: Path) -> tuple[str, str, str]:
    """An old parent with a sub-agent, and a recent thread."""
    old = now_ms() - 40 * DAY_MS
    async with await ThreadStore.open(home / "threads.db") as store:
        parent = await store.create_thread(
            title="old parent",
            created=old,
            capture_environment=False,
            messages=[Message(role="user", content="long ago", timestamp=old)],
        )
        child = await store.create_thread(
            title="old child", created=old, capture_environment=False, parent_thread_id=parent.id
        )
        await store.append_deltas(parent.id, parent.v, [ChildLinkDelta(thread_id=child.id)])
        recent = await store.create_thread(title="recent", capture_environment=False)
    return parent.id, child.id, recent.id


async def test_archive_older_than_then_list_marks_and_restore_brings_back(home: Path) -> None:
    parent, child, recent = await make_threads(home)

    dry = succeeds_json(run_cli(home, "archive", "--older-than", "30d", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["thread_ids"]) == (True, [parent, child])
    archived = run_cli(home, "archive", "--older-than", "30d")
    assert succeeds(archived).split() == [parent, child]
    location = (home / "threads.archive").as_uri()
    assert archived.stderr.strip() == f"Archived 2 thread(s) to {location}."

    listed = succeeds(run_cli(home, "list"))
    assert f"{parent}  [archived] old parent" in listed
    assert f"{child}  [archived] old child" in listed
    assert f"{recent}  recent" in listed
    assert parent not in succeeds(run_cli(home, "list", "--no-archived"))
    heads = succeeds_json(run_cli(home, "list", "--json"))["threads"]
    assert {h["id"]: h.get("archived_at") is not None for h in heads} == {
        parent: True,
        child: True,
        recent: False,
    }

    assert succeeds_json(run_cli(home, "restore", parent, "--json")) == {
        "thread_ids": [parent, child]
    }
    assert "[archived]" not in succeeds(run_cli(home, "list"))
    assert succeeds(run_cli(home, "archive", recent)).split() == [recent]
    assert "long ago" in succeeds(run_cli(home, "show", parent))


async def test_show_restores_an_archived_thread_on_read(home: Path) -> None:
    parent, _, _ = await make_threads(home)
    succeeds(run_cli(home, "archive", parent))
    assert "long ago" in succeeds(run_cli(home, "show", parent))
    restored = run_cli(home, "restore", parent)
    assert succeeds(restored) == ""
    assert restored.stderr.strip() == f"{parent} is not archived; nothing to restore."


async def test_doctor_reports_a_missing_object_and_repairs_an_orphan(home: Path) -> None:
    parent, child, _ = await make_threads(home)
    clean = run_cli(home, "doctor")
    assert succeeds(clean).strip() == (
        "No problems in 3 active threads, 0 archived threads, 0 archive objects."
    )
    succeeds(run_cli(home, "archive", parent))
    objects = sorted((home / "threads.archive").rglob("*.zst"))
    assert len(objects) == 2
    orphan = objects[0].with_name("leftover.json.zst")
    orphan.write_bytes(b"not referenced")
    [child_object] = [p for p in objects if child in str(p)]
    child_object.unlink()

    report = json.loads(fails_with_stdout(run_cli(home, "doctor", "--json")))
    assert report["clean"] is False
    found = {(f["check"], f["repaired"]) for f in report["findings"]}
    assert found == {("archive", False), ("orphan", False)}
    repaired = json.loads(fails_with_stdout(run_cli(home, "doctor", "--repair", "--json")))
    assert {(f["check"], f["repaired"]) for f in repaired["findings"]} == {
        ("archive", False),
        ("orphan", True),
    }
    assert not orphan.exists()
    error = fails(run_cli(home, "restore", parent), 1)
    assert f"{child_object.as_uri()} of thread {child} is missing" in error
    assert succeeds(run_cli(home, "restore", parent, "--without-subagents")).split() == [parent]


def fails_with_stdout(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that exits 1 (doctor with problems left)."""
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    return result.stdout


def test_archive_needs_one_id_or_an_age(home: Path) -> None:
    assert "Give either a thread ID or --older-than AGE" in fails(run_cli(home, "archive"), 2)
    assert "'3x' is not a duration like 30d" in fails(
        run_cli(home, "archive", "--older-than", "3x"), 2
    )
    assert "Thread T-nope not found" in fails(run_cli(home, "archive", "T-nope"), 1)
