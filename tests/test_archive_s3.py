"""Cold storage on S3, for real (issue 16): an S3-compatible server (moto in
server mode, over HTTP on 127.0.0.1) started by the tests; archive and restore
through ``s3://`` URLs, and the server stopping in the middle of an archive —
nothing is lost, and a retry completes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from threadline import ArchiveUnavailable, ColdStorage, Message, Thread, ThreadStore
from threadline.recorders import SqliteRecorder
from threadline.testing import free_port

BUCKET = "threadline-cold"


@dataclass
class S3:
    server: ThreadedMotoServer
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def keys(self) -> list[str]:
        """Every object in the bucket, as the S3 server lists it."""
        return sorted(await ColdStorage.from_url(f"s3://{BUCKET}").keys(prefix=""))

    def restart(self) -> None:
        """Start again on the same port (moto keeps its buckets in this process)."""
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    found = S3(server, port)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": found.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    created = httpx.put(f"{found.endpoint}/{BUCKET}")  # moto takes unsigned requests
    assert created.status_code == 200, created.text
    try:
        yield found
    finally:
        found.server.stop()


async def _threads(store: ThreadStore, count: int) -> dict[str, Thread]:
    made = {}
    for n in range(count):
        thread = await store.create_thread(title=f"t{n}", capture_environment=False, created=1000)
        for m in range(3):
            message = Message(role="user", content=f"message {m} of {n}", timestamp=2000 + m)
            await store.append_message(thread.id, message)
        made[thread.id] = await store.get_thread(thread.id)
    return made


async def test_archive_and_restore_through_an_s3_server(s3: S3, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/team"
    async with ThreadStore(SqliteRecorder(tmp_path / "t.db"), cold_storage=url) as store:
        made = await _threads(store, 3)
        first = next(iter(made))
        assert await store.archive_thread(first) == [first]
        [key] = await s3.keys()
        assert key.startswith(f"team/threads/{first}/")
        assert (await store.archived_thread(first)) is not None
        assert await store.restore_thread(first) == [first]
        assert await s3.keys() == []
        for thread_id, thread in made.items():
            assert await store.get_thread(thread_id) == thread
        assert (await store.doctor()).clean


async def test_the_s3_server_stopping_mid_archive_loses_nothing_and_a_retry_completes(
    s3: S3, tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/team"
    async with ThreadStore(SqliteRecorder(tmp_path / "t.db"), cold_storage=url) as store:
        made = await _threads(store, 8)

        def stop_after_the_first(done: int, total: int) -> None:
            if done == 1:
                s3.server.stop()

        with pytest.raises(ArchiveUnavailable):
            await store.archive_inactive_threads(
                timedelta(0), concurrency=1, progress=stop_after_the_first
            )
        # Whatever moved is in the bucket; whatever did not is still active.
        archived = [i for i in made if await store.archived_thread(i) is not None]
        assert len(archived) >= 1
        assert len(archived) < len(made)
        listed = (await store.list_threads(limit=100)).threads
        assert sorted(h.id for h in listed) == sorted(made)

        s3.restart()
        await store.recover()  # what opening the store again does
        rest = await store.archive_inactive_threads(timedelta(0))
        assert sorted(archived + rest) == sorted(made)
        assert len(await s3.keys()) == len(made)
        report = await store.doctor()
        assert report.clean, report.findings
        for thread_id, thread in made.items():
            assert await store.get_thread(thread_id) == thread  # restored on read
        assert await s3.keys() == []
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint
