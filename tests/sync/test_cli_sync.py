"""``threadline sync`` and the sync status of ``list``/``show``, through a real
subprocess against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.sync.conftest import Server
from tests.test_cli import fails, run_cli, succeeds


def test_sync_needs_a_server_and_a_token(tmp_path: Path) -> None:
    error = fails(run_cli(tmp_path / "home", "sync", "--once"), 2)
    assert "Missing --remote" in error
    error = fails(run_cli(tmp_path / "home", "sync", "--once", "--remote", "http://x"), 2)
    assert "Missing --token" in error


def test_sync_carries_a_thread_to_another_machine_and_list_shows_its_status(
    tmp_path: Path, sync_server: Server
) -> None:
    token = asyncio.run(sync_server.token())
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    thread_id = succeeds(run_cli(laptop, "new", "--title", "Fix the bug", "--no-env")).strip()
    succeeds(run_cli(laptop, "add", thread_id, "hello", "--role", "user"))
    remote = ["--remote", sync_server.url, "--token", token]

    out = succeeds(run_cli(laptop, "sync", "--once", *remote))
    assert out.strip() == "Pushed 1 thread(s) (2 deltas), pulled 0 thread(s) (0 deltas), merged 0"

    # The other machine finds the server in its config file.
    desktop.mkdir()
    (desktop / "sync.toml").write_text(f'remote = "{sync_server.url}"\ntoken = "{token}"\n')
    report = json.loads(succeeds(run_cli(desktop, "sync", "--once", "--json")))
    assert (report["pulled"], report["deltas_pulled"], report["failed"]) == (1, 2, {})
    listed = json.loads(succeeds(run_cli(desktop, "list", "--json")))
    assert [t["id"] for t in listed["threads"]] == [thread_id]
    assert listed["sync"] == {thread_id: "synced"}
    shown = succeeds(run_cli(desktop, "show", thread_id))
    assert "Sync: synced" in shown
    assert "hello" in shown

    # A local change is pending until the next round pushes it.
    succeeds(run_cli(desktop, "add", thread_id, "from the desktop", "--role", "assistant"))
    assert "pending" in succeeds(run_cli(desktop, "list"))
    succeeds(run_cli(desktop, "sync", "--once"))
    assert "synced" in succeeds(run_cli(desktop, "list"))
    succeeds(run_cli(laptop, "sync", "--once", *remote))
    page = json.loads(succeeds(run_cli(laptop, "show", thread_id, "--json")))
    assert [m["content"] for m in page["messages"]] == ["hello", "from the desktop"]
    assert "sync" not in page  # the laptop has no server configured outside --remote


def test_a_failing_sync_says_why_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    thread_id = succeeds(run_cli(home, "new", "--no-env")).strip()
    result = run_cli(home, "sync", "--once", "--remote", "http://127.0.0.1:9", "--token", "t")
    assert result.returncode == 1, result.stderr
    assert f"{thread_id} failing: The sync server http://127.0.0.1:9 is unavailable" in (
        result.stdout
    )
