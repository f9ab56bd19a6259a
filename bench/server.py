"""The sync server's benchmarks (issue #4).

Run: ``.venv/bin/python bench/server.py [--quick]`` (needs Debian's
``postgresql`` package: it starts its own durable cluster on 127.0.0.1).

1. 16 concurrent HTTP clients, each appending one agent message per request to
   its own thread, against ``threadline serve`` on PostgreSQL and on embedded
   SQLite (a separate process, as deployed): throughput and p50/p99 latency;
   and the baseline measured in the same run on the same cluster: raw asyncpg
   single-row ``INSERT`` s of the same message JSON, 8 connections, autocommit.
   Target: the PostgreSQL server at >= 0.5 of the raw rate.
2. The newest page (50 messages) of a 100,000-message thread over HTTP: p50, p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import orjson

from _common import Timings, heading, line, message_stream, ms, per_s, take
from threadline.auth import create_token
from threadline.deltas import MessageDelta, ThreadCreate, delta_to_json
from threadline.model import Message
from threadline.recorders.postgres import PostgresWorkspaces
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.testing import TemporaryPostgres, free_port

CLIENTS = 16
RAW_CONNECTIONS = 8


@contextmanager
def serve(db: str) -> Iterator[str]:
    """``threadline serve --db db`` in a process of its own; its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--db", db, "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def push(base: int, message: Message) -> bytes:
    delta = orjson.loads(delta_to_json(MessageDelta.of(message)))
    return orjson.dumps({"base_version": base, "deltas": [delta]})


async def http_appends(url: str, token: str, messages: list[Message], per_client: int) -> Timings:
    """CLIENTS concurrent clients, each appending per_client messages to its own thread."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        threads = [f"T-bench-{os.getpid()}-{time.monotonic_ns()}-{c}" for c in range(CLIENTS)]
        for thread_id in threads:
            created = await http.post("/v1/threads", content=orjson.dumps({"id": thread_id}))
            assert created.status_code == 201, created.text

        async def client(c: int) -> None:
            version = 1
            for n in range(per_client):
                body = push(version, messages[(c * per_client + n) % len(messages)])
                started = time.perf_counter()
                response = await http.post(f"/v1/threads/{threads[c]}/deltas", content=body)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                version += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(CLIENTS)))
        wall = time.perf_counter() - started
    return Timings(latencies, wall=wall, operations=len(latencies))


async def raw_inserts(dsn: str, bodies: list[bytes], total: int) -> Timings:
    """The baseline: single-row INSERTs of message JSON (bytea), autocommit, 8 connections."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS raw_messages (id bigserial PRIMARY KEY, body bytea NOT NULL)"
    )
    await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=RAW_CONNECTIONS, max_size=RAW_CONNECTIONS)
    latencies: list[float] = []
    per_connection = total // RAW_CONNECTIONS

    async def worker(w: int) -> None:
        async with pool.acquire() as conn:
            for n in range(per_connection):
                started = time.perf_counter()
                await conn.execute(
                    "INSERT INTO raw_messages (body) VALUES ($1)",
                    bodies[(w * per_connection + n) % len(bodies)],
                )
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(RAW_CONNECTIONS)))
    wall = time.perf_counter() - started
    await pool.close()
    return Timings(latencies, wall=wall, operations=len(latencies))


async def newest_pages(url: str, token: str, thread_id: str, reads: int) -> Timings:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(reads):
            started = time.perf_counter()
            response = await http.get(f"/v1/threads/{thread_id}", params={"limit": 50})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            assert len(response.json()["messages"]) == 50
    return Timings(latencies, wall=sum(latencies), operations=len(latencies))


async def long_thread(storage: PostgresWorkspaces, workspace: str, size: int) -> str:
    """A thread of ``size`` messages, written in batches through the recorder."""
    recorder = await storage.recorder(workspace)
    thread_id = "T-long"
    await recorder.append(thread_id, 0, [ThreadCreate(id=thread_id, title="long")])
    stream = message_stream(11)
    version = 1
    while version <= size:
        batch = [MessageDelta.of(m) for m in take(stream, min(1000, size - version + 1))]
        await recorder.append(thread_id, version, batch)
        version += len(batch)
    return thread_id


def report(label: str, timings: Timings) -> None:
    line(label, f"{per_s(timings.rate)}  p50 {ms(timings.median)}  p99 {ms(timings.p99)}")


async def main(quick: bool) -> None:
    per_client = 40 if quick else 150
    raw_total = 2_000 if quick else 8_000
    long_size = 10_000 if quick else 100_000
    messages = take(message_stream(3), 2_000)
    bodies = [delta_to_json(MessageDelta.of(m)) for m in messages]
    with TemporaryPostgres(durable=True) as cluster, tempfile.TemporaryDirectory() as home:
        dsn = cluster.dsn
        storage = await PostgresWorkspaces.connect(dsn, min_size=1, max_size=2)
        pg_token = await create_token(storage, "bench", "bench")
        sqlite_dir = Path(home) / "server"
        sqlite_storage = SqliteWorkspaces(sqlite_dir)
        sqlite_token = await create_token(sqlite_storage, "bench", "bench")
        await sqlite_storage.close()

        heading(1, f"{CLIENTS} concurrent HTTP clients appending to their own threads")
        raw = Timings.empty()
        pg = Timings.empty()
        with serve(dsn) as url:
            for _ in range(2):  # alternate, so that a noisy neighbour slows both
                raw.add(await raw_inserts(dsn, bodies, raw_total // 2))
                pg.add(await http_appends(url, pg_token, messages, per_client // 2))
        with serve(str(sqlite_dir)) as url:
            lite = await http_appends(url, sqlite_token, messages, per_client)
        report(f"raw asyncpg INSERT, {RAW_CONNECTIONS} connections", raw)
        report("HTTP append, PostgreSQL server", pg)
        report("HTTP append, embedded SQLite server", lite)
        ratio = pg.rate / raw.rate
        verdict = "PASS" if ratio >= 0.5 else "MISS"
        line("PostgreSQL server / raw inserts", f"{ratio:.2f}  (target >= 0.5: {verdict})")
        line("SQLite server / raw inserts", f"{lite.rate / raw.rate:.2f}")

        heading(2, f"newest page (50) of a {long_size:,}-message thread over HTTP")
        thread_id = await long_thread(storage, "bench", long_size)
        with serve(dsn) as url:
            await newest_pages(url, pg_token, thread_id, 20)  # warm up
            pages = await newest_pages(url, pg_token, thread_id, 100 if quick else 300)
        line("PostgreSQL server", f"p50 {ms(pages.median)}  p99 {ms(pages.p99)}")
        await storage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    asyncio.run(main(parser.parse_args().quick))
