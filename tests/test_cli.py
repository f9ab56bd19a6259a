"""The ``threadline`` CLI, driven through a real subprocess as a user runs it.

Each test gets its own ``THREADLINE_HOME``. Threads a test only needs to exist
are made in-process through the library; what is under test goes through
``python -m threadline``. Process start-up is the cost here, so the tests
spawn as few processes as their assertions need.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from threadline import Message, ThreadStore
from threadline.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run_cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THREADLINE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def succeeds(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    return result.stdout


def succeeds_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(succeeds(result))


def fails(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The one-line error of a command that must fail with ``status``."""
    assert "Traceback" not in result.stderr
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


async def make_thread(home: Path, thread_id: str, *messages: Message, created: int = 0) -> None:
    async with await ThreadStore.open(home / "threads.db") as store:
        await store.create_thread(
            id=thread_id,
            title=f"title of {thread_id}",
            messages=messages,
            created=created or None,
            capture_environment=False,
        )


def test_demo_records_a_session_and_prints_its_cost(home: Path) -> None:
    recorded = succeeds_json(run_cli(home, "demo", "--json"))
    thread = recorded["thread"]
    messages = thread["messages"]
    assistant = [m for m in messages if m["role"] == "assistant"]
    assert thread["title"] == "Fix failing test_login_with_email"
    assert recorded["dropped_messages"] == 5
    assert len(messages) == 14
    # creation + title + truncate + one version per message ever appended
    assert thread["v"] == 3 + len(messages) + recorded["dropped_messages"]
    assert assistant
    assert all(m["usage"]["model"] and m["usage"]["cost_usd"] > 0 for m in assistant)
    assert any(r.get("is_error") for m in messages for r in m.get("tool_results", []))
    names = {call["name"] for m in assistant for call in m.get("tool_calls", [])}
    assert names == {"bash", "read_file", "edit_file"}
    visible = recorded["visible_totals"]
    total = recorded["totals"]
    assert visible["cost_usd"] == pytest.approx(sum(m["usage"]["cost_usd"] for m in assistant))
    assert visible["priced_messages"] == len(assistant)
    assert total["priced_messages"] == len(assistant) + 3  # three responses were truncated
    assert total["cost_usd"] > visible["cost_usd"]

    out = succeeds(run_cli(home, "demo"))
    assert "Fix failing test_login_with_email" in out
    assert '→ read_file(path="src/acme/auth.py")' in out
    assert "← read_file: error: No such file or directory: src/acme/auth.py" in out
    assert re.search(r"All time \(incl\. 5 truncated\).*\$" + f"{total['cost_usd']:.4f}", out)
    assert re.search(r"Visible \(14 messages\).*\$" + f"{visible['cost_usd']:.4f}", out)


def test_new_add_show_log_round_trip(home: Path) -> None:
    created = succeeds_json(
        run_cli(home, "new", "--title", "Fix login", "--id", "T-cli", "--no-env", "--json")
    )
    assert {k: created[k] for k in ("id", "v", "title", "messages", "env")} == {
        "id": "T-cli",
        "v": 1,
        "title": "Fix login",
        "messages": [],
        "env": {},
    }
    first = succeeds_json(
        run_cli(home, "add", "T-cli", "Fix the login bug", "--role", "user", "--json")
    )
    assert first["thread_id"] == "T-cli"
    assert first["v"] == 2
    assert set(first["message"]) == {"id", "role", "content", "timestamp"}
    assert (first["message"]["role"], first["message"]["content"]) == ("user", "Fix the login bug")

    usage = ["--model", "m-1", "--input-tokens", "1200", "--output-tokens", "40"]
    usage += ["--cache-read-tokens", "5", "--cache-write-tokens", "6", "--cost", "0.0042"]
    second = succeeds_json(
        run_cli(
            home,
            *("add", "T-cli", "--role", "assistant", *usage, "--expected-version", "2", "--json"),
            stdin="Looking at it\n",
        )
    )
    assert second["v"] == 3
    assert second["message"]["content"] == "Looking at it"
    assert second["message"]["usage"] == {
        "model": "m-1",
        "input_tokens": 1200,
        "output_tokens": 40,
        "cache_read_tokens": 5,
        "cache_write_tokens": 6,
        "cost_usd": 0.0042,
    }
    given = {
        "id": "M-given",
        "role": "assistant",
        "content": "Reading it",
        "timestamp": 1_700_000_000_000,
        "tool_calls": [{"id": "c1", "name": "read_file", "input": {"path": "a.py"}}],
    }
    third = succeeds_json(
        run_cli(home, "add", "T-cli", json.dumps(given), "--message-json", "--json")
    )
    assert third == {"thread_id": "T-cli", "v": 4, "message": given}
    added = [first["message"], second["message"], given]

    page = succeeds_json(run_cli(home, "show", "T-cli", "--json"))
    assert page["messages"] == added
    assert (page["head"]["v"], page["total_messages"], page["has_more"]) == (4, 3, False)
    assert page["head"]["totals"]["cost_usd"] == 0.0042
    newest = succeeds_json(run_cli(home, "show", "T-cli", "--limit", "2", "--json"))
    assert newest["messages"] == added[1:]
    assert (newest["first_index"], newest["has_more"]) == (1, True)
    text = succeeds(run_cli(home, "show", "T-cli", "--limit", "1", "--before", "2"))
    assert "Looking at it" in text
    assert "Fix the login bug" not in text
    assert "Showing messages #1 to #1 of 3" in text
    assert "threadline show T-cli --before 1" in text

    log = succeeds_json(run_cli(home, "log", "T-cli", "--json"))
    assert log["thread_id"] == "T-cli"
    assert [(d["v"], d["delta"]["type"]) for d in log["deltas"]] == [
        (1, "thread:create"),
        (2, "user:message"),
        (3, "assistant:message"),
        (4, "assistant:message"),
    ]
    assert [d["delta"]["message"] for d in log["deltas"][1:]] == added
    recent = succeeds(run_cli(home, "log", "T-cli", "--since", "3"))
    assert re.search(r"^ ?4 .*assistant:message .*read_file", recent, re.MULTILINE)
    assert "user:message" not in recent


async def test_list_pages_by_newest_activity(home: Path) -> None:
    await make_thread(home, "T-old", created=1_000)
    await make_thread(home, "T-new", created=2_000)
    first = succeeds_json(run_cli(home, "list", "--limit", "1", "--json"))
    assert [t["id"] for t in first["threads"]] == ["T-new"]
    assert first["threads"][0]["title"] == "title of T-new"
    assert first["next_cursor"] is not None
    second = succeeds_json(run_cli(home, "list", "--cursor", first["next_cursor"], "--json"))
    assert [t["id"] for t in second["threads"]] == ["T-old"]
    assert second["next_cursor"] is None
    text = succeeds(run_cli(home, "list", "--limit", "1"))
    assert "T-new" in text
    assert "T-old" not in text
    assert f"threadline list --cursor {first['next_cursor']}" in text


async def test_stale_expected_version_is_refused_and_writes_nothing(home: Path) -> None:
    await make_thread(home, "T-busy", Message(role="user", content="hi"))
    error = fails(
        run_cli(home, "add", "T-busy", "late", "--role", "user", "--expected-version", "1"), 1
    )
    assert "Thread T-busy is at version 2, not 1" in error
    async with await ThreadStore.open(home / "threads.db") as store:
        assert (await store.get_thread("T-busy")).v == 2


@pytest.mark.parametrize(
    "args",
    [["show", "T-missing"], ["add", "T-missing", "hello", "--role", "user"]],
    ids=["show", "add"],
)
def test_unknown_thread_id_is_one_line_error(home: Path, args: list[str]) -> None:
    error = fails(run_cli(home, *args), 1)
    assert "Thread T-missing not found" in error


def test_file_that_is_not_sqlite_is_reported_as_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    db.write_bytes(b"this is not a database\n" * 100)
    error = fails(run_cli(tmp_path, "--db", str(db), "list"), 1)
    assert f"The store {db} is not a readable threadline database" in error


def test_locked_database_is_reported_as_busy(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("BEGIN EXCLUSIVE")
        error = fails(run_cli(tmp_path, "--db", str(db), "new"), 1)  # waits out busy_timeout
    finally:
        holder.close()
    assert f"The store {db} is locked by another process" in error


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["add", "T-x", "--message-json"], "{not json", "Invalid Message: Invalid JSON"),
        (["add", "T-x", "--message-json"], '{"role": "robot"}', "Invalid Message: role:"),
        (["add", "T-x", "hi", "--role", "bot"], "", "Invalid value for '--role'"),
        (["add", "T-x", "hi", "--role", "user", "--output-tokens", "-1"], "", "--output-tokens"),
    ],
    ids=["bad-json", "bad-message", "bad-role", "negative-tokens"],
)
def test_malformed_input_is_a_usage_error(
    home: Path, args: list[str], stdin: str, expected: str
) -> None:
    assert expected in fails(run_cli(home, *args, stdin=stdin), 2)


def test_every_command_in_help_is_documented() -> None:
    help_text = succeeds(run_cli(Path("/nonexistent"), "--help"))
    listed = re.search(r"^Commands:\n((?:  .*\n)+)", help_text, re.MULTILINE)
    assert listed is not None
    names = [line.split()[0] for line in listed.group(1).splitlines()]
    assert sorted(names) == sorted(cli.commands)
    sections = re.split(r"^### `threadline ", DOCS.read_text(), flags=re.MULTILINE)[1:]
    documented = {section.split()[0].rstrip("`"): section for section in sections}
    for name in names:
        assert name in documented, f"threadline {name} is not in docs/cli.md"
        for param in cli.commands[name].params:
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert option in documented[name], f"{name} {option} not in docs/cli.md"
