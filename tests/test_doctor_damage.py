"""A byte flipped inside a stored thread head (issue 16): ``doctor`` names the
thread, ``doctor --repair`` rebuilds the head and every derived row from the
log (the log is the truth), on SQLite (through the CLI) and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import asyncpg

from tests.pg import new_workspace
from tests.test_cli import run_cli, succeeds
from threadline import ColdStorage, Message, ThreadStore
from threadline.recorders.postgres import PostgresRecorder


def flipped(head: bytes) -> bytes:
    """``head`` with one byte flipped where it breaks the JSON (the first ``:``)."""
    at = head.index(b":")
    return head[:at] + bytes([head[at] ^ 0x01]) + head[at + 1 :]


async def _fill(store: ThreadStore) -> tuple[str, str]:
    damaged = await store.create_thread(title="damaged", capture_environment=False)
    for n in range(3):
        await store.append_message(damaged.id, Message(role="user", content=f"needle {n}"))
    intact = await store.create_thread(title="intact", capture_environment=False)
    return damaged.id, intact.id


async def test_a_flipped_byte_in_a_sqlite_head_is_found_and_rebuilt_from_the_log(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    db = home / "threads.db"
    async with await ThreadStore.open(db) as store:
        damaged, intact = await _fill(store)
        before = await store.get_thread(damaged)
    with sqlite3.connect(db) as conn:
        (head,) = conn.execute("SELECT head FROM threads WHERE id = ?", (damaged,)).fetchone()
        conn.execute("UPDATE threads SET head = ? WHERE id = ?", (flipped(head), damaged))
    conn.close()

    found = run_cli(home, "doctor", "--json")
    assert found.returncode == 1, found.stderr
    assert "Invalid ThreadHead" not in found.stderr
    findings = json.loads(found.stdout)["findings"]
    assert [(f["check"], f["subject"], f["repaired"]) for f in findings] == [
        ("head", damaged, False)
    ]
    repaired = json.loads(succeeds(run_cli(home, "doctor", "--repair", "--json")))
    assert [(f["check"], f["subject"], f["repaired"]) for f in repaired["findings"]] == [
        ("head", damaged, True)
    ]
    assert json.loads(succeeds(run_cli(home, "doctor", "--json")))["clean"] is True
    listed = json.loads(succeeds(run_cli(home, "list", "--json")))["threads"]
    assert sorted(t["id"] for t in listed) == sorted([damaged, intact])
    async with await ThreadStore.open(db) as store:
        assert await store.get_thread(damaged) == before
        assert {h.thread_id for h in await store.search("needle")} == {damaged}


async def test_a_flipped_byte_in_a_postgres_head_is_found_and_rebuilt_from_the_log(
    postgres_dsn: str, tmp_path: Path
) -> None:
    workspace = new_workspace()
    cold = ColdStorage.local(tmp_path / "cold")
    async with ThreadStore(
        await PostgresRecorder.connect(postgres_dsn, workspace=workspace), cold_storage=cold
    ) as store:
        damaged, intact = await _fill(store)
        before = await store.get_thread(damaged)
    conn = await asyncpg.connect(postgres_dsn)
    try:
        where = "WHERE workspace = $1 AND id = $2"
        head = await conn.fetchval(f"SELECT head FROM threads {where}", workspace, damaged)
        await conn.execute(
            f"UPDATE threads SET head = $3 {where}", workspace, damaged, flipped(bytes(head))
        )
    finally:
        await conn.close()
    async with ThreadStore(
        await PostgresRecorder.connect(postgres_dsn, workspace=workspace), cold_storage=cold
    ) as store:
        found = await store.doctor()
        assert [(f.check, f.subject) for f in found.problems] == [("head", damaged)]
        repaired = await store.doctor(repair=True)
        assert [(f.subject, f.repaired) for f in repaired.findings] == [(damaged, True)]
        assert (await store.doctor()).findings == []
        assert await store.get_thread(damaged) == before
        heads = (await store.list_threads()).threads
        assert sorted(h.id for h in heads) == sorted([damaged, intact])
