"""Run by tests/reliability/test_store_full.py inside a private mount namespace
where ``DIR`` is a small tmpfs: fill the disk through the library, try the CLI,
free space, append again. Prints what happened as JSON on stdout.

    python full_disk_child.py DIR
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from threadline import Message, StoreFull, ThreadlineError, ThreadStore


def cli(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", "--db", str(db), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def main(directory: Path) -> dict[str, object]:
    filler = directory / "filler"
    filler.write_bytes(os.urandom(400_000))  # what an operator frees later
    db = directory / "threads.db"
    report: dict[str, object] = {}
    async with await ThreadStore.open(db) as store:
        thread = await store.create_thread(title="full", capture_environment=False)
        appended = 0
        error: ThreadlineError | None = None
        for _ in range(2000):
            try:
                await store.append_message(
                    thread.id, Message(role="user", content=secrets.token_urlsafe(12_000))
                )
            except ThreadlineError as exc:
                error = exc
                break
            appended += 1
        report["appended_before_full"] = appended
        report["error"] = type(error).__name__ if error else None
        report["retryable"] = bool(error and error.retryable)
        report["is_store_full"] = isinstance(error, StoreFull)
        report["wal_after_full"] = wal_bytes(db)
        added = cli(db, "add", thread.id, "--role", "user", stdin=secrets.token_urlsafe(200_000))
        report["cli_status"] = added.returncode
        report["cli_stderr"] = added.stderr
        filler.unlink()
        after = 0
        for _ in range(5):
            await store.append_message(
                thread.id, Message(role="user", content=secrets.token_urlsafe(2_000))
            )
            after += 1
        report["appended_after_freeing"] = after
        report["wal_after_freeing"] = wal_bytes(db)
        report["messages"] = (await store.get_thread(thread.id)).v - 1
    listed = cli(db, "list", "--json")
    report["list_status"] = listed.returncode
    report["doctor_status"] = cli(db, "doctor").returncode
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
