"""The team server at scale (issue 19): every route on a big workspace against a small database.

Run: ``.venv/bin/python bench/scale.py [--threads N] [--per-thread M] [--long L]
[--backend sqlite|postgres|both] [--quick]`` (PostgreSQL needs Debian's
``postgresql`` package: it starts its own durable cluster on 127.0.0.1).

For each backend, ``threadline serve`` runs in a process of its own (as
deployed) on two databases:

- **big**: one workspace of N threads x M messages (default 20,000 x 50) plus
  one thread of L messages (default 200,000), loaded through
  ``POST /v1/sync/batch``, and a small workspace beside it (the neighbour
  test);
- **small**: a database of 100 threads x 50 messages (5,000 messages), the
  baseline.

The messages are the benchmarks' realistic mix; one message in 20,000 holds
the rare word ``quokka``. Then each route is timed (sequential requests over
one keep-alive connection: p50 / p99) on the big workspace, on the small
workspace next to it, and on the small database; the ratios are big ÷ small.
Also: 16 concurrent clients pushing one message per request (rate, big ÷
small), the server's peak RSS through the whole run (sampled every 0.2 s
from ``/proc``), and bytes on disk per byte of message JSON.

Goals (issue 19): every route ≤ 1.5x (search ≤ 3x, p99 ≤ 300 ms for any
word), workspace usage ≤ 50 ms, a small workspace ≤ 1.5x next to a big
neighbour, RSS < 500 MB, push rate ≥ 0.8x, bytes per message ≤ 1.3x JSON.
A request that fails (a timeout, a 5xx, a server that died) is printed as
failed and its figures are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson

from _common import human_bytes, message_stream, ms, take
from server import serve, threadline_server
from threadline.auth import create_token
from threadline.deltas import MessageDelta, ThreadCreate, delta_to_json
from threadline.recorders.postgres import PostgresWorkspaces
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.testing import TemporaryPostgres

RARE = "quokka"
RARE_EVERY = 20_000
POOL = 4_000  # distinct message bodies, reused (with fresh ids) across threads
BATCH_THREADS = 50  # pushes per /v1/sync/batch request (the route's limit)
LONG_CHUNK = 1_000  # deltas per push of the long thread (the server's limit)
SAMPLES = 30  # timed requests per route
CLIENTS = 16


@dataclass
class Corpus:
    """Message deltas as JSON, ready to be spliced into request bodies."""

    bodies: list[bytes]
    json_bytes: int = 0
    messages: int = 0
    counter: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def make(cls) -> Corpus:
        bodies = []
        for index, message in enumerate(take(message_stream(seed=19), POOL)):
            if index == 0:
                message = message.model_copy(update={"content": f"{message.content} {RARE}"})
            bodies.append(delta_to_json(MessageDelta.of(message)))
        return cls(bodies)

    def take(self, count: int) -> list[bytes]:
        """``count`` message deltas with ids unique in this run (and, one in
        RARE_EVERY, the rare word)."""
        out = []
        for _ in range(count):
            n = next(self.counter)
            body = self.bodies[n % POOL if n % RARE_EVERY == 0 else 1 + n % (POOL - 1)]
            body = body.replace(b'"id":"M-bench-19-', f'"id":"M-{n:09d}-'.encode(), 1)
            self.json_bytes += len(body)
            self.messages += 1
            out.append(body)
        return out


def push_body(thread_id: str, base: int, deltas: list[bytes]) -> bytes:
    head = b'{"thread_id":' + orjson.dumps(thread_id) + b',"base_version":' + str(base).encode()
    return head + b',"deltas":[' + b",".join(deltas) + b"]}"


def create(thread_id: str, title: str) -> bytes:
    return delta_to_json(ThreadCreate(id=thread_id, title=title))


async def load(url: str, token: str, corpus: Corpus, threads: int, per: int, long: int) -> str:
    """Fill a workspace: ``threads`` x ``per`` messages and one thread of
    ``long``; returns the long thread's id (or "" without one)."""
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:

        async def batch(first: int) -> None:
            pushes = []
            for i in range(first, min(first + BATCH_THREADS, threads)):
                thread_id = f"T-scale-{i:07d}"
                deltas = [create(thread_id, f"task {i}"), *corpus.take(per)]
                pushes.append(push_body(thread_id, 0, deltas))
            body = b'{"pushes":[' + b",".join(pushes) + b"]}"
            answer = await http.post("/v1/sync/batch", content=body)
            answer.raise_for_status()

        starts = list(range(0, threads, BATCH_THREADS))
        for group in range(0, len(starts), 4):  # four requests in flight
            await asyncio.gather(*(batch(s) for s in starts[group : group + 4]))
            done = min(threads, starts[min(group + 4, len(starts)) - 1] + BATCH_THREADS)
            if group % 40 == 0:
                print(f"    {done:,} threads, {time.perf_counter() - started:.0f} s", flush=True)
        if not long:
            return ""
        long_id = "T-scale-long"
        version, remaining = 0, long
        while remaining:
            count = min(LONG_CHUNK - (version == 0), remaining)
            deltas = corpus.take(count)
            if version == 0:
                deltas.insert(0, create(long_id, "the long thread"))
            remaining -= count
            body = b'{"base_version":' + str(version).encode() + b',"deltas":['
            answer = await http.post(
                f"/v1/threads/{long_id}/deltas", content=body + b",".join(deltas) + b"]}"
            )
            answer.raise_for_status()
            version = answer.json()["version"]
        print(f"    loaded in {time.perf_counter() - started:.0f} s", flush=True)
        return long_id


# -- measuring ---------------------------------------------------------------------


class PeakRss:
    """The highest resident set size of a process, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for row in status.splitlines():
                if row.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(row.split()[1]) * 1024)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass
class Timed:
    p50: float | None
    p99: float | None
    failed: str | None = None


def time_route(
    http: httpx.Client, path: str, samples: int = SAMPLES, budget: float = 30.0
) -> Timed:
    """p50 / p99 of ``samples`` requests (fewer once they took ``budget`` seconds)."""
    took: list[float] = []
    while len(took) < samples and (len(took) < 3 or sum(took) < budget):
        began = time.perf_counter()
        try:
            answer = http.get(path)
        except httpx.HTTPError as error:
            return Timed(None, None, type(error).__name__)
        if answer.status_code != 200:
            return Timed(None, None, f"HTTP {answer.status_code}")
        took.append(time.perf_counter() - began)
    took.sort()
    return Timed(statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))])


# The small database's route a long-thread route is compared with.
BASELINE = {
    "long: newest page": "thread page",
    "long: middle page": "thread page",
    "long: viewer page": "viewer thread page",
    "long: usage": "usage (thread)",
}


def routes(long_id: str, long: int, some: str) -> dict[str, str]:
    """Route name → path; the long thread's routes only where there is one."""
    paths = {
        "list threads": "/v1/threads?limit=50",
        "thread page": f"/v1/threads/{some}?limit=50",
        "deltas": f"/v1/threads/{some}/deltas?since=0&limit=100",
        "change feed": "/v1/changes?since=0&limit=100",
        "viewer list": "/",
        "viewer thread page": f"/threads/{some}",
        "usage (thread)": f"/v1/usage?thread_id={some}",
        "usage (workspace)": "/v1/usage",
        "search rare word": f"/v1/search?q={RARE}&limit=20",
        "search title": "/v1/search?q=task&limit=20",
        "search common word": "/v1/search?q=the&limit=20",
    }
    if long_id:
        paths |= {
            "long: newest page": f"/v1/threads/{long_id}?limit=50",
            "long: middle page": f"/v1/threads/{long_id}/messages?limit=50&offset={long // 2}",
            "long: viewer page": f"/threads/{long_id}",
            "long: usage": f"/v1/usage?thread_id={long_id}",
        }
    return paths


def measure(url: str, token: str, long_id: str, long: int, some: str) -> dict[str, Timed]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        paths = routes(long_id, long, some)
        return {name: time_route(http, path) for name, path in paths.items()}


async def push_rate(url: str, token: str, corpus: Corpus, per_client: int = 60) -> float:
    """Messages per second pushed by 16 clients, one message per request, each to its thread."""
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        run = next(corpus.counter)

        async def client(c: int) -> None:
            thread_id = f"T-push-{run}-{c}"
            deltas = [create(thread_id, "pushes")]
            version = 0
            for _ in range(per_client):
                deltas += corpus.take(1)
                body = b'{"base_version":' + str(version).encode() + b',"deltas":['
                answer = await http.post(
                    f"/v1/threads/{thread_id}/deltas", content=body + b",".join(deltas) + b"]}"
                )
                answer.raise_for_status()
                version, deltas = answer.json()["version"], []

        began = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(CLIENTS)))
        return CLIENTS * per_client / (time.perf_counter() - began)


# -- one backend -------------------------------------------------------------------


@dataclass
class Database:
    """Where one server keeps its data, and how to make tokens and read its size."""

    name: str
    url: str
    directory: Path | None = None

    async def token(self, workspace: str) -> str:
        storage: SqliteWorkspaces | PostgresWorkspaces
        if self.directory is not None:
            storage = SqliteWorkspaces(self.directory)
        else:
            storage = await PostgresWorkspaces.connect(self.url, min_size=1, max_size=1)
        try:
            return await create_token(storage, "bench", workspace)
        finally:
            await storage.close()

    async def bytes(self) -> int:
        if self.directory is not None:
            return sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("CHECKPOINT")
            # less an empty database's catalog (a new database copies template1)
            return int(
                await conn.fetchval(
                    "SELECT pg_database_size(current_database()) - pg_database_size('template1')"
                )
            )
        finally:
            await conn.close()


@contextmanager
def databases(backend: str, root: Path) -> Iterator[tuple[Database, Database]]:
    if backend == "sqlite":
        yield (
            Database("sqlite", str(root / "big"), root / "big"),
            Database("sqlite", str(root / "small"), root / "small"),
        )
        return
    with TemporaryPostgres(durable=True) as cluster:

        async def make() -> tuple[str, str]:
            conn = await asyncpg.connect(cluster.dsn)
            try:
                await conn.execute("CREATE DATABASE big")
                await conn.execute("CREATE DATABASE small")
            finally:
                await conn.close()
            base = cluster.dsn.rsplit("/", 1)[0]
            return f"{base}/big", f"{base}/small"

        big, small = asyncio.run(make())
        yield Database("postgres", big), Database("postgres", small)


def run_backend(backend: str, threads: int, per: int, long: int) -> None:
    sizes = f"{threads:,} threads x {per} + {long:,} messages"
    print(f"\n== {backend}: {sizes}, against 5,000 ==", flush=True)
    corpus = Corpus.make()
    with tempfile.TemporaryDirectory() as tmp, databases(backend, Path(tmp)) as (big, small):
        big_token = asyncio.run(big.token("big"))
        neighbour_token = asyncio.run(big.token("neighbour"))
        small_token = asyncio.run(small.token("small"))
        with (
            serve(threadline_server(big.url)) as (big_url, pid),
            serve(threadline_server(small.url)) as (small_url, _),
        ):
            rss = PeakRss(pid)
            before = corpus.json_bytes
            long_id = asyncio.run(load(big_url, big_token, corpus, threads, per, long))
            big_json = corpus.json_bytes - before
            asyncio.run(load(big_url, neighbour_token, corpus, 100, per, 0))
            asyncio.run(load(small_url, small_token, corpus, 100, per, 0))
            some = "T-scale-0000042"
            at_scale = measure(big_url, big_token, long_id, long, some)
            beside = measure(big_url, neighbour_token, "", 0, some)
            alone = measure(small_url, small_token, "", 0, some)
            rate_big = asyncio.run(push_rate(big_url, big_token, corpus))
            rate_small = asyncio.run(push_rate(small_url, small_token, corpus))
            peak = rss.stop()
        disk = asyncio.run(big.bytes())
    report(at_scale, beside, alone)
    print(
        f"  16-client push rate: {rate_big:,.0f}/s at scale, {rate_small:,.0f}/s small, "
        f"ratio {rate_big / rate_small:.2f} (goal ≥ 0.8)"
    )
    print(f"  server peak RSS through the run: {human_bytes(peak)} (goal < 500 MB)")
    print(
        f"  bytes on disk per byte of message JSON: {disk / max(big_json, 1):.2f} "
        f"({human_bytes(disk)} for {human_bytes(big_json)}; goal ≤ 1.3)"
    )


def report(at_scale: dict[str, Timed], beside: dict[str, Timed], alone: dict[str, Timed]) -> None:
    def cell(t: Timed | None) -> str:
        if t is None:
            return "-"
        if t.failed:
            return f"failed: {t.failed}"
        assert t.p50 is not None
        assert t.p99 is not None
        return f"{ms(t.p50)} / {ms(t.p99)}"

    def ratio(a: Timed | None, b: Timed | None) -> str:
        if a is None or b is None or a.p50 is None or b.p50 is None:
            return "-"
        return f"{a.p50 / b.p50:.2f}x"

    print(
        f"  {'route':<22} {'at scale p50 / p99':>26} {'small db p50 / p99':>26} "
        f"{'ratio':>7} {'neighbour p50 / p99':>26} {'ratio':>7}"
    )
    for name, timed in at_scale.items():
        base = alone.get(BASELINE.get(name, name))
        near = beside.get(name)
        print(
            f"  {name:<22} {cell(timed):>26} {cell(base):>26} {ratio(timed, base):>7} "
            f"{cell(near):>26} {ratio(near, base):>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--per-thread", type=int, default=50)
    parser.add_argument("--long", type=int, default=200_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="2,000 x 50 + 20,000 messages")
    args = parser.parse_args()
    threads, long = (2_000, 20_000) if args.quick else (args.threads, args.long)
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load_average} on {os.cpu_count()} cores")
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run_backend(backend, threads, args.per_thread, long)


if __name__ == "__main__":
    main()
