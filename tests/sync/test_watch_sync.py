"""``threadline watch --sync`` (issue 13): what the watcher captures reaches the
sync server from the same process, and a stop pushes what came last."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from tests.importers.conftest import FIXTURES
from tests.importers.test_live_capture import _Watch
from tests.sync.conftest import Server
from threadline import ThreadStore
from threadline.sync.client import RemoteRecorder


async def _counts(db: Path, server: Server, token: str) -> tuple[dict[str, int], dict[str, int]]:
    async with await ThreadStore.open(db) as store:
        local = {h.id: h.message_count for h in await store.recorder.list_heads(limit=1000)}
    remote = RemoteRecorder(server.url, token)
    try:
        there = {h.id: h.message_count for h in await remote.list_heads(limit=1000)}
    finally:
        await remote.close()
    return local, there


def test_watch_sync_pushes_what_it_captures(sync_server: Server, tmp_path: Path) -> None:
    token = asyncio.run(sync_server.token())
    root = tmp_path / "claude"
    project = root / "-home-dev-shop"
    project.mkdir(parents=True)
    db, log = tmp_path / "threads.db", tmp_path / "watch.log"
    env = {
        **os.environ,
        "THREADLINE_HOME": str(tmp_path / "home"),
        "THREADLINE_REMOTE": sync_server.url,
        "THREADLINE_TOKEN": token,
    }
    watcher = _Watch(db, log, "--claude-code", str(root), "--sync", "--interval", "30", env=env)
    try:
        source = FIXTURES / "claude_code" / "-home-dev-shop"
        shutil.copytree(source / "sess-1", project / "sess-1")
        shutil.copy(source / "sess-1.jsonl", project / "sess-1.jsonl")
        # The interval is 30 s: only the round each capture starts can be in time.
        deadline = time.monotonic() + 30
        local: dict[str, int] = {}
        server: dict[str, int] = {}
        while time.monotonic() < deadline:
            local, server = asyncio.run(_counts(db, sync_server, token))
            if "sess-1" in local and local == server:
                break
            time.sleep(0.2)
        assert "sess-1" in local, log.read_text()
        assert server == local, log.read_text()
        shutil.copy(source / "sess-2.jsonl", project / "sess-2.jsonl")
        time.sleep(0.5)
        assert watcher.stop() == 0, log.read_text()  # the last round pushes sess-2
        local, server = asyncio.run(_counts(db, sync_server, token))
        assert "sess-2" in server
        assert server == local
    finally:
        if watcher.process.poll() is None:
            watcher.kill()
