"""The benchmarks of issue 5: what sync costs on the wire, how fast a change
travels, how much it moves.

Run: ``.venv/bin/python bench/sync.py [--quick]``

A real sync server (uvicorn on 127.0.0.1, embedded SQLite) runs in a thread of
this process; replicas are tiered stores over their own SQLite files, talking
to it over loopback HTTP through a transport that counts the bytes sent
(request line, headers and body, as they go on the wire).

1. **Bytes per appended message in steady sync**: rounds of a few new
   messages on some of 20 threads, one sync round after each, all requests
   counted (pushes and the change-feed reads). Compared with the messages'
   own JSON size (target <= 1.2) and with pushing each changed thread whole
   each round (the baseline, serialised in the same run).
2. **Append on A → arrival on B** through the server, p50 and p99: one sync
   round on each side (the mechanism; a running loop adds up to one interval
   per side), and with both loops running at a 50 ms interval. Baseline: the
   raw protocol for the same change (one push, one delta read) with httpx.
3. **Throughput**: 10,000 messages across 100 threads pushed by A in one round
   and pulled by B in one round. Baseline: the same deltas pushed by raw
   ``POST /v1/sync/batch`` requests and read back by raw delta reads.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Outcome, heading, human_bytes, json_size, line, message_stream, ms, summary
from threadline.auth import create_token
from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.ids import now_ms
from threadline.model import Message
from threadline.recorders.sqlite import SqliteRecorder
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync import protocol as wire
from threadline.sync.client import RemoteRecorder
from threadline.sync.server import create_app
from threadline.sync.service import SyncService, SyncSettings
from threadline.testing import free_port
from threadline.tiered import TieredStore


class CountingTransport(httpx.AsyncBaseTransport):
    """Loopback HTTP that counts the bytes of every request as sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = 0
        self.sent_uncompressed = 0  # as if no body were compressed
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        head = f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()) + "\r\n"
        self.sent += len(head.encode()) + len(body)
        plain = body
        if request.headers.get("content-encoding") == "zstd":
            plain = zstandard.ZstdDecompressor().decompress(body)
        self.sent_uncompressed += len(head.encode()) + len(plain)
        self.requests += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Server:
    """The sync server in a thread of this process."""

    def __init__(self, directory: Path) -> None:
        import uvicorn

        self.storage = SqliteWorkspaces(directory)
        self.port = free_port()
        config = uvicorn.Config(
            create_app(self.storage), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def token(self, workspace: str) -> str:
        return await create_token(self.storage, "bench", workspace)

    async def stop(self) -> None:
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join)
        await self.storage.close()


def replica(path: Path, url: str, token: str, transport: httpx.AsyncBaseTransport) -> TieredStore:
    local = SqliteRecorder(path, synchronous="NORMAL")
    return TieredStore(local, remote=RemoteRecorder(url, token, transport=transport))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def append(store: TieredStore, thread_id: str, messages: list[Message]) -> None:
    head = await store.head(thread_id)
    assert head is not None
    await store.append(thread_id, head.v, [MessageDelta.of(m) for m in messages])


# -- 1. bytes on the wire ---------------------------------------------------------------


async def bytes_per_message(server: Server, workdir: Path, rounds: int) -> list[Outcome]:
    heading(1, "Bytes sent per appended message in steady sync")
    rng = random.Random(5)
    stream = message_stream(seed=11)
    counter = CountingTransport()
    a = replica(workdir / "bytes.db", server.url, await server.token("bytes"), counter)
    assert a.sync is not None
    threads = [f"T-bytes-{i:02d}" for i in range(20)]
    try:
        for thread_id in threads:
            await a.append(thread_id, 0, [ThreadCreate(id=thread_id, created=now_ms())])
        await a.sync.sync_once()
        counter.sent = counter.sent_uncompressed = counter.requests = 0
        message_bytes = whole_bytes = appended = 0
        for _ in range(rounds):
            changed = rng.sample(threads, rng.randint(3, 10))
            for thread_id in changed:
                batch = [next(stream) for _ in range(rng.randint(1, 3))]
                await append(a, thread_id, batch)
                message_bytes += sum(json_size(m) for m in batch)
                appended += len(batch)
            await a.sync.sync_once()
            # The baseline: every changed thread pushed whole, in one body.
            loaded = [await a.load(t) for t in changed]
            body = b"[" + b",".join(t.model_dump_json().encode() for t in loaded if t) + b"]"
            whole_bytes += len(body)
    finally:
        await a.close()
    ratio = counter.sent / message_bytes
    line("messages appended", f"{appended} in {rounds} rounds on 20 threads")
    line("their JSON", human_bytes(message_bytes))
    line(
        "sent by sync (pushes and feed reads)",
        f"{human_bytes(counter.sent)} in {counter.requests} requests",
    )
    line("sent per message / message JSON", f"{ratio:.3f}")
    line(
        "the same without body compression",
        f"{counter.sent_uncompressed / message_bytes:.3f}",
    )
    line("whole changed threads, each round (baseline)", human_bytes(whole_bytes))
    line("sync / whole threads", f"{counter.sent / whole_bytes:.4f}")
    return [
        Outcome(
            1,
            "bytes sent / message JSON",
            human_bytes(counter.sent),
            human_bytes(message_bytes),
            ratio,
            "<= 1.2",
            ratio <= 1.2,
        ),
        Outcome(
            1,
            "bytes sent vs whole threads",
            human_bytes(counter.sent),
            human_bytes(whole_bytes),
            counter.sent / whole_bytes,
            "-",
            None,
        ),
    ]


# -- 2. append on A -> arrival on B -------------------------------------------------------


async def arrival(server: Server, workdir: Path, samples: int) -> list[Outcome]:
    heading(2, "Append on replica A -> arrival on replica B")
    token = await server.token("latency")
    stream = message_stream(seed=13)
    a = replica(workdir / "lat-a.db", server.url, token, httpx.AsyncHTTPTransport())
    b = replica(workdir / "lat-b.db", server.url, token, httpx.AsyncHTTPTransport())
    raw = RemoteRecorder(server.url, token)
    assert a.sync is not None
    assert b.sync is not None
    rounds: list[float] = []
    raw_times: list[float] = []
    try:
        await a.append("T-lat", 0, [ThreadCreate(id="T-lat", created=now_ms())])
        await raw.append("T-raw", 0, [ThreadCreate(id="T-raw", created=now_ms())])
        await a.sync.sync_once()
        await b.sync.sync_once()
        raw_v = 1
        for _ in range(samples):
            message = next(stream)
            start = time.perf_counter()
            await append(a, "T-lat", [message])
            await a.sync.sync_once()
            await b.sync.sync_once()
            rounds.append(time.perf_counter() - start)
            assert (await b.load("T-lat")).messages[-1] == message  # type: ignore[union-attr]
            # The baseline: the same change over the raw protocol.
            start = time.perf_counter()
            await raw.append("T-raw", raw_v, [MessageDelta.of(next(stream))])
            await raw.deltas("T-raw", after=raw_v)
            raw_times.append(time.perf_counter() - start)
            raw_v += 1
    finally:
        await raw.close()
    looped = await arrival_with_loops(a, b, samples // 2, stream)
    await a.close()
    await b.close()
    p50, p99 = statistics.median(rounds), percentile(rounds, 0.99)
    raw50 = statistics.median(raw_times)
    loop50, loop99 = statistics.median(looped), percentile(looped, 0.99)
    line("one round each side: p50 / p99", f"{ms(p50)} / {ms(p99)}")
    line("raw push + delta read (baseline): p50", ms(raw50))
    line("both loops at 50 ms: p50 / p99", f"{ms(loop50)} / {ms(loop99)}")
    return [
        Outcome(2, "A -> B, one round each, p50", ms(p50), ms(raw50), p50 / raw50, "-", None),
        Outcome(2, "A -> B, one round each, p99", ms(p99), ms(raw50), p99 / raw50, "-", None),
        Outcome(2, "A -> B, loops at 50 ms, p50", ms(loop50), ms(raw50), loop50 / raw50, "-", None),
        Outcome(2, "A -> B, loops at 50 ms, p99", ms(loop99), ms(raw50), loop99 / raw50, "-", None),
    ]


async def arrival_with_loops(
    a: TieredStore, b: TieredStore, samples: int, stream: object
) -> list[float]:
    """Both sync loops running: from the append to B's service writing it."""
    assert a.sync is not None
    assert b.sync is not None
    settings = SyncSettings(interval=0.05)
    arrived: dict[str, asyncio.Event] = {}

    def on_change(thread_id: str) -> None:
        if thread_id in arrived:
            arrived[thread_id].set()

    pusher = SyncService(a.local, a.sync.remote, settings=settings)
    puller = SyncService(b.local, b.sync.remote, settings=settings, on_local_change=on_change)
    pusher.start()
    puller.start()
    times: list[float] = []
    try:
        for n in range(samples):
            thread_id = f"T-loop-{n}"
            await a.append(thread_id, 0, [ThreadCreate(id=thread_id, created=now_ms())])
            arrived[thread_id] = asyncio.Event()
            start = time.perf_counter()
            pusher.kick()
            await asyncio.wait_for(arrived[thread_id].wait(), 30)
            times.append(time.perf_counter() - start)
    finally:
        await pusher.stop()
        await puller.stop()
    return times


# -- 3. throughput ------------------------------------------------------------------------


async def throughput(server: Server, workdir: Path, threads: int, per_thread: int) -> list[Outcome]:
    total = threads * per_thread
    heading(3, f"Sync throughput: {total:,} messages across {threads} threads")
    token = await server.token("throughput")
    stream = message_stream(seed=17)
    a = replica(workdir / "tp-a.db", server.url, token, httpx.AsyncHTTPTransport())
    b = replica(workdir / "tp-b.db", server.url, token, httpx.AsyncHTTPTransport())
    assert a.sync is not None
    assert b.sync is not None
    logs: dict[str, list[Delta]] = {}
    try:
        for i in range(threads):
            thread_id = f"T-tp-{i:03d}"
            log: list[Delta] = [ThreadCreate(id=thread_id, created=now_ms())]
            log += [MessageDelta.of(next(stream)) for _ in range(per_thread)]
            await a.append(thread_id, 0, log)
            logs[thread_id] = log
        start = time.perf_counter()
        pushed = await a.sync.sync_once()
        push_s = time.perf_counter() - start
        start = time.perf_counter()
        pulled = await b.sync.sync_once()
        pull_s = time.perf_counter() - start
        assert pushed.deltas_pushed == pulled.deltas_pulled == total + threads
    finally:
        await a.close()
        await b.close()
    raw_push_s, raw_pull_s = await raw_throughput(server, logs)
    line("A pushes (one round)", f"{push_s:.2f} s = {total / push_s:,.0f} messages/s")
    line("B pulls (one round)", f"{pull_s:.2f} s = {total / pull_s:,.0f} messages/s")
    line("raw batch pushes (baseline)", f"{raw_push_s:.2f} s = {total / raw_push_s:,.0f}/s")
    line("raw delta reads (baseline)", f"{raw_pull_s:.2f} s = {total / raw_pull_s:,.0f}/s")
    return [
        Outcome(
            3,
            f"push {total:,} messages / {threads} threads",
            f"{total / push_s:,.0f}/s",
            f"{total / raw_push_s:,.0f}/s",
            push_s / raw_push_s,
            "-",
            None,
        ),
        Outcome(
            3,
            f"pull {total:,} messages / {threads} threads",
            f"{total / pull_s:,.0f}/s",
            f"{total / raw_pull_s:,.0f}/s",
            pull_s / raw_pull_s,
            "-",
            None,
        ),
    ]


async def raw_throughput(server: Server, logs: dict[str, list[Delta]]) -> tuple[float, float]:
    """The same logs through the bare protocol, into a workspace of their own."""
    raw = RemoteRecorder(server.url, await server.token("throughput-raw"))
    try:
        ids = list(logs)
        start = time.perf_counter()
        for i in range(0, len(ids), wire.MAX_BATCH):
            chunk = ids[i : i + wire.MAX_BATCH]
            await raw.push_batch([(t, 0, logs[t]) for t in chunk])
        push_s = time.perf_counter() - start
        start = time.perf_counter()
        for thread_id in ids:
            await raw.deltas(thread_id)
        pull_s = time.perf_counter() - start
    finally:
        await raw.close()
    return push_s, pull_s


async def main(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        server = await asyncio.to_thread(Server, workdir / "server")
        try:
            outcomes = await bytes_per_message(server, workdir, rounds=20 if quick else 60)
            outcomes += await arrival(server, workdir, samples=40 if quick else 200)
            outcomes += await throughput(
                server, workdir, threads=20 if quick else 100, per_thread=100
            )
        finally:
            await server.stop()
    summary(outcomes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller runs, for a smoke test.")
    asyncio.run(main(parser.parse_args().quick))
