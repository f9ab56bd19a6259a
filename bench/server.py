"""The sync server's benchmarks (issue #4).

Run: ``.venv/bin/python bench/server.py [--quick]`` (needs Debian's
``postgresql`` package: it starts its own durable cluster on 127.0.0.1).

1. 16 concurrent HTTP clients, each appending one agent message per request to
   its own thread, against ``threadline serve`` on PostgreSQL and on embedded
   SQLite (a process of its own, as deployed): throughput and p50/p99 latency.
   Two baselines are measured in the same run, alternating with the server so
   that a noisy neighbour slows all of them:

   - raw asyncpg single-row ``INSERT`` s of the same message JSON, 8
     connections, autocommit, on the same cluster. Target: the PostgreSQL
     server at >= 0.5 of its rate.
   - a minimal FastAPI endpoint under uvicorn, like the server's push route but
     with no auth, no validation and no database: the most a Python HTTP server
     answers on this machine, so the ceiling of any server's ratio.

   The clients speak HTTP/1.1 over plain asyncio streams, not httpx: httpx
   spends more CPU per request than the server does, and the clients share the
   machine's cores with the server and PostgreSQL. The CPU time each process
   spends per request (from ``/proc``, Linux only) shows where the time goes;
   with every core busy, a ratio can be at most the raw INSERT's CPU time per
   request over its own, which is printed too.
   The target of issue #12 is the PostgreSQL server at >= 0.5 of the minimal
   endpoint's rate, with p99 <= 30 ms.
2. The same appends against ``threadline serve --workers 2`` on PostgreSQL,
   alternating with one worker: the throughput of two over one (target >= 1.5
   on two cores; the clients and PostgreSQL share those cores).
3. The newest page (50 messages) of a 100,000-message thread over HTTP: p50, p99.

The load average of the machine is printed at the start and the end: a
ratio measured on a machine that other work keeps busy is lower than on a
quiet one.
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
from fastapi import FastAPI, Request, Response

from _common import Timings, heading, line, message_stream, ms, per_s, take
from threadline.auth import create_token
from threadline.deltas import MessageDelta, ThreadCreate, delta_to_json
from threadline.model import Message
from threadline.recorders.postgres import PostgresWorkspaces
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.testing import TemporaryPostgres, free_port

CLIENTS = 16
RAW_CONNECTIONS = 8
WARMUP = 5  # untimed requests per client first: connections, caches, prepared statements

# -- the servers -------------------------------------------------------------------


def minimal_app() -> FastAPI:
    """The HTTP baseline: the push route's shape (POST, path parameter, JSON body
    read, small JSON answer) with none of its work."""
    app = FastAPI()

    @app.post("/v1/threads/{thread_id}/deltas")
    async def push(thread_id: str, request: Request) -> Response:
        await request.body()
        return Response(b'{"version":2}', media_type="application/json")

    return app


@contextmanager
def serve(command: list[str]) -> Iterator[tuple[str, int]]:
    """An HTTP server (``command`` plus ``--port``) in a process of its own, as
    deployed: its base URL and process id."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {command}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def threadline_server(db: str, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "threadline", "serve", "--db", db, "--workers", str(workers)]


def minimal_server() -> list[str]:
    here = str(Path(__file__).parent)
    factory = f"{Path(__file__).stem}:minimal_app"
    return [sys.executable, "-m", "uvicorn", "--app-dir", here, "--factory", factory]


# -- where the CPU goes ---------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used (0 without /proc)."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (PostgreSQL: the postmaster and its backends)."""
    pids = [pid]
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int(_stat(int(entry.name))[1]) == pid:
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def parent_of(pid: int) -> int:
    try:
        return int(_stat(pid)[1])
    except OSError:
        return 0


class CpuMeter:
    """CPU seconds that each process (``clients``: this one) spends between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, processes: dict[str, list[int]]) -> None:
        self.processes = processes
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {"clients": time.process_time()}
        return now | {side: cpu_seconds(pids) for side, pids in self.processes.items()}

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> None:
        self.seconds = {side: t - self._started[side] for side, t in self._now().items()}


@dataclass
class Load:
    """Requests of one kind: their timings and the CPU seconds that each process
    (the clients, the server, PostgreSQL) spent on them."""

    timings: Timings = field(default_factory=Timings.empty)
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, timings: Timings, meter: CpuMeter) -> None:
        self.timings.add(timings)
        for side, seconds in meter.seconds.items():
            self.cpu[side] = self.cpu.get(side, 0.0) + seconds

    @property
    def cpu_ms(self) -> float:
        """Milliseconds of CPU per request, all processes together."""
        return sum(self.cpu.values()) / self.timings.operations * 1e3

    def cpu_line(self) -> str:
        """Milliseconds of CPU per request, by process."""
        count = self.timings.operations
        parts = [f"{side} {seconds / count * 1e3:.2f}" for side, seconds in self.cpu.items()]
        return " + ".join(parts) + f" = {self.cpu_ms:.2f} ms"


# -- the clients -----------------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response.

    Just enough HTTP for uvicorn's answers (``Content-Length`` bodies, no
    compression asked for), at a fraction of httpx's CPU per request."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        fixed = {"Host": f"{self._host}:{self._port}", **headers}
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        writer.write(
            b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (method.encode(), target.encode(), self._headers, len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for header in head.split(b"\r\n")[1:]:
            name, _, value = header.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            await self._streams[1].wait_closed()


def push_body(base: int, message: Message) -> bytes:
    delta = orjson.loads(delta_to_json(MessageDelta.of(message)))
    return orjson.dumps({"base_version": base, "deltas": [delta]})


async def concurrent_posts(
    url: str, headers: dict[str, str], requests: list[list[tuple[str, bytes]]], meter: CpuMeter
) -> Timings:
    """One client per list of ``(path, body)``, all at once, each over its own
    connection; the first WARMUP requests of each are neither timed nor metered."""
    latencies: list[float] = []
    warm = asyncio.Barrier(len(requests) + 1)
    go = asyncio.Event()

    async def client(posts: list[tuple[str, bytes]]) -> None:
        connection = HttpConnection(url, headers)
        try:
            for n, (path, body) in enumerate(posts):
                if n == WARMUP:
                    await warm.wait()
                    await go.wait()
                started = time.perf_counter()
                status, answer = await connection.request("POST", path, body)
                if n >= WARMUP:
                    latencies.append(time.perf_counter() - started)
                assert status == 200, answer
        finally:
            await connection.close()

    tasks = [asyncio.create_task(client(posts)) for posts in requests]
    await warm.wait()
    meter.start()
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    meter.stop()
    return Timings(latencies, wall=wall, operations=len(latencies))


def auth(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    return headers if token is None else {**headers, "Authorization": f"Bearer {token}"}


async def append_requests(
    url: str, token: str | None, messages: list[Message], per_client: int
) -> list[list[tuple[str, bytes]]]:
    """The pushes of CLIENTS clients, each appending to a thread of its own (made
    here, unless ``token`` is None: the minimal endpoint has no threads)."""
    threads = [f"T-bench-{os.getpid()}-{time.monotonic_ns()}-{c}" for c in range(CLIENTS)]
    if token is not None:
        async with httpx.AsyncClient(base_url=url, headers=auth(token), timeout=60) as http:
            for thread_id in threads:
                created = await http.post("/v1/threads", content=orjson.dumps({"id": thread_id}))
                assert created.status_code == 201, created.text
    total = WARMUP + per_client
    return [
        [
            (
                f"/v1/threads/{thread_id}/deltas",
                push_body(1 + n, messages[(c * total + n) % len(messages)]),
            )
            for n in range(total)
        ]
        for c, thread_id in enumerate(threads)
    ]


async def raw_inserts(
    pool: asyncpg.Pool[asyncpg.Record], bodies: list[bytes], total: int, meter: CpuMeter
) -> Timings:
    """The baseline: single-row INSERTs of message JSON (bytea), autocommit, 8 connections."""
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

    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(RAW_CONNECTIONS)))
    wall = time.perf_counter() - started
    meter.stop()
    return Timings(latencies, wall=wall, operations=len(latencies))


async def newest_pages(url: str, token: str, thread_id: str, reads: int) -> Timings:
    connection = HttpConnection(url, {"Authorization": f"Bearer {token}"})
    latencies: list[float] = []
    try:
        for _ in range(reads):
            started = time.perf_counter()
            status, body = await connection.request("GET", f"/v1/threads/{thread_id}?limit=50")
            latencies.append(time.perf_counter() - started)
            assert status == 200, body
            assert len(orjson.loads(body)["messages"]) == 50
    finally:
        await connection.close()
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


async def compare_workers(
    dsn: str, token: str, messages: list[Message], per_client: int, postmaster_pid: int
) -> tuple[Load, Load]:
    """Appends against one server process and against two workers, alternating."""
    one, two = Load(), Load()
    with (
        serve(threadline_server(dsn)) as (url, pid),
        serve(threadline_server(dsn, workers=2)) as (url2, pid2),
    ):
        for _ in range(2):
            for load, at, server in ((one, url, pid), (two, url2, pid2)):
                pushes = await append_requests(at, token, messages, per_client // 2)
                processes = {"server": with_children(server)}
                meter = CpuMeter(processes | {"PostgreSQL": with_children(postmaster_pid)})
                load.add(await concurrent_posts(at, auth(token), pushes, meter), meter)
    return one, two


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, and how many cores share them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def report(label: str, timings: Timings) -> None:
    line(label, f"{per_s(timings.rate)}  p50 {ms(timings.median)}  p99 {ms(timings.p99)}")


async def main(quick: bool) -> None:
    per_client = 60 if quick else 250
    raw_total = 4_000 if quick else 16_000
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
        await storage.pool.execute(
            "CREATE TABLE raw_messages (id bigserial PRIMARY KEY, body bytea NOT NULL)"
        )
        raw_pool = await asyncpg.create_pool(
            dsn, min_size=RAW_CONNECTIONS, max_size=RAW_CONNECTIONS
        )
        postmaster_pid = parent_of(await storage.pool.fetchval("SELECT pg_backend_pid()"))

        heading(1, f"{CLIENTS} concurrent HTTP clients appending to their own threads")
        print(f"    load average before: {load_average()}")
        raw, minimal, pg, lite = Load(), Load(), Load(), Load()
        with (
            serve(threadline_server(dsn)) as (url, pid),
            serve(minimal_server()) as (minimal_url, minimal_pid),
        ):
            warm = CpuMeter({})
            await raw_inserts(raw_pool, bodies, RAW_CONNECTIONS * WARMUP, warm)
            for _ in range(2):  # alternate, so that a noisy neighbour slows all of them
                meter = CpuMeter({"PostgreSQL": with_children(postmaster_pid)})
                raw.add(await raw_inserts(raw_pool, bodies, raw_total // 2, meter), meter)
                posts = await append_requests(minimal_url, None, messages, per_client // 2)
                meter = CpuMeter({"server": [minimal_pid]})
                minimal.add(await concurrent_posts(minimal_url, auth(None), posts, meter), meter)
                pushes = await append_requests(url, pg_token, messages, per_client // 2)
                meter = CpuMeter({"server": [pid], "PostgreSQL": with_children(postmaster_pid)})
                pg.add(await concurrent_posts(url, auth(pg_token), pushes, meter), meter)
        await raw_pool.close()
        with serve(threadline_server(str(sqlite_dir))) as (url, pid):
            pushes = await append_requests(url, sqlite_token, messages, per_client)
            meter = CpuMeter({"server": [pid]})
            lite.add(await concurrent_posts(url, auth(sqlite_token), pushes, meter), meter)
        report(f"raw asyncpg INSERT, {RAW_CONNECTIONS} connections", raw.timings)
        report("minimal FastAPI endpoint (no auth, no DB)", minimal.timings)
        report("HTTP append, PostgreSQL server", pg.timings)
        report("HTTP append, embedded SQLite server", lite.timings)
        print(f"    CPU time per request ({os.cpu_count()} cores), by process:")
        line("raw INSERT", raw.cpu_line())
        line("minimal request", minimal.cpu_line())
        line("append, PostgreSQL server", pg.cpu_line())
        line("append, SQLite server", lite.cpu_line())
        ratio = pg.timings.rate / minimal.timings.rate
        verdict = "PASS" if ratio >= 0.5 else "MISS"
        line("PostgreSQL server / minimal endpoint", f"{ratio:.2f}  (target >= 0.5: {verdict})")
        p99 = pg.timings.p99 * 1e3
        verdict = "PASS" if p99 <= 30 else "MISS"
        line("PostgreSQL server p99", f"{p99:.1f} ms  (target <= 30 ms: {verdict})")
        line("PostgreSQL server / raw inserts", f"{pg.timings.rate / raw.timings.rate:.2f}")
        line("SQLite server / raw inserts", f"{lite.timings.rate / raw.timings.rate:.2f}")
        line("minimal endpoint / raw inserts", f"{minimal.timings.rate / raw.timings.rate:.2f}")
        print("    ratio to raw inserts with every core busy, at most (raw INSERT's CPU / theirs):")
        line("PostgreSQL server", f"{raw.cpu_ms / pg.cpu_ms:.2f}")
        line("minimal endpoint", f"{raw.cpu_ms / minimal.cpu_ms:.2f}")

        heading(2, "the same appends, PostgreSQL server with 2 workers / 1 worker")
        one, two = await compare_workers(dsn, pg_token, messages, per_client, postmaster_pid)
        report("1 worker", one.timings)
        report("2 workers", two.timings)
        line("1 worker, CPU per request", one.cpu_line())
        line("2 workers, CPU per request", two.cpu_line())
        scale = two.timings.rate / one.timings.rate
        verdict = "PASS" if scale >= 1.5 else "MISS"
        line("2 workers / 1 worker", f"{scale:.2f}  (target >= 1.5: {verdict})")
        print(f"    load average after: {load_average()}")

        heading(3, f"newest page (50) of a {long_size:,}-message thread over HTTP")
        thread_id = await long_thread(storage, "bench", long_size)
        with serve(threadline_server(dsn)) as (url, _):
            await newest_pages(url, pg_token, thread_id, 20)  # warm up
            pages = await newest_pages(url, pg_token, thread_id, 100 if quick else 300)
        line("PostgreSQL server", f"p50 {ms(pages.median)}  p99 {ms(pages.p99)}")
        await storage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    quick = parser.parse_args().quick
    try:  # the event loop that uvicorn gives the server, when installed
        import uvloop
    except ImportError:
        asyncio.run(main(quick))
    else:
        uvloop.run(main(quick))
