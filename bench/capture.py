"""Live capture (issue 13): latency, idle CPU and catch-up CPU of ``threadline watch``.

Run: ``.venv/bin/python bench/capture.py [--lines N] [--idle-files N] [--idle-seconds S]``

1. A line appended to a watched Claude Code session → visible in the local
   store (a reader polling the head's message count every 5 ms): p50 / p99
   over N lines, one every 300 ms, against the same run's baseline — the
   time the library takes to import that project folder directly (the part
   of the latency that is the import itself, not the event delivery).
   Targets: p50 ≤ 200 ms, p99 ≤ 1 s.
   Then the same through ``watch --sync`` to a ``threadline serve`` on
   loopback (embedded SQLite): line appended → the server's
   ``GET /v1/threads/{id}?limit=0`` shows it. Target p50 ≤ 2 s.
2. CPU of a watcher over an idle tree of N session files (default 1,000),
   once its catch-up is over, as a share of one core (``/proc/PID/stat``),
   against the baseline of an idle ``python -c 'time.sleep()'`` process
   measured the same way. Target ≤ 1 % of one core.
3. Catch-up of a folder of sessions (every Claude Code and Codex sample,
   copied 20 times under fresh session ids and uuids): CPU seconds of
   ``catch_up`` in this process (no interpreter start-up) into a fresh
   SQLite store, against the baseline of reading every line and
   ``json.loads``-ing it. Target ≤ 3 times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _common import heading, line, percentile
from threadline import ThreadStore
from threadline.importers.live import Unit, catch_up, import_unit
from threadline.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
FIXTURE = ROOT / "tests" / "fixtures" / "claude_code" / "-home-dev-shop" / "sess-1.jsonl"
TICKS = os.sysconf("SC_CLK_TCK")
THREADLINE = (sys.executable, "-m", "threadline")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _watch(
    db: Path, folder: Path, log: Path, *more: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [*THREADLINE, "--db", str(db), "watch", "--claude-code", str(folder), *more]
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
    while "watching" not in log.read_text():
        if process.poll() is not None:
            raise SystemExit(log.read_text())
        time.sleep(0.05)
    return process


def _user_line(session: str, n: int) -> bytes:
    record = {
        "type": "user",
        "uuid": f"{session}-line-{n}",
        "parentUuid": None,
        "sessionId": session,
        "timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
        "cwd": "/home/dev/bench",
        "message": {"role": "user", "content": f"line {n}: please check the login handler"},
    }
    return json.dumps(record).encode() + b"\n"


async def _visible(db: Path, thread_id: str, count: int) -> float:
    async with await ThreadStore.open(db) as store:
        start = time.perf_counter()
        while time.perf_counter() - start < 10.0:
            head = await store.recorder.head(thread_id)
            if head is not None and head.message_count >= count:
                return time.perf_counter()
            await asyncio.sleep(0.005)
    raise SystemExit(f"line {count} never became visible")


def latency(lines: int) -> None:
    heading(1, "line appended to a watched session → visible in the local store")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "projects"
        project = folder / "bench"
        project.mkdir(parents=True)
        session = project / "bench-session.jsonl"
        session.write_bytes(FIXTURE.read_bytes().replace(b'"sess-1"', b'"bench-session"'))
        db = Path(tmp) / "threads.db"
        watcher = _watch(db, folder, Path(tmp) / "watch.log")
        delays: list[float] = []
        try:
            base = asyncio.run(_count(db, "bench-session"))
            for n in range(lines):
                with session.open("ab") as out:
                    written = time.perf_counter()
                    out.write(_user_line("bench-session", n))
                seen = asyncio.run(_visible(db, "bench-session", base + n + 1))
                delays.append(seen - written)
                time.sleep(0.3)
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=30)
        direct = asyncio.run(_direct_import(project, Path(tmp) / "direct.db", rounds=lines))
    p50, p99 = statistics.median(delays), percentile(delays, 0.99)
    line("p50 (target ≤ 200 ms)", f"{p50 * 1e3:.0f} ms")
    line("p99 (target ≤ 1 s)", f"{p99 * 1e3:.0f} ms")
    line("baseline: a direct import of the folder, p50", f"{direct * 1e3:.0f} ms")
    line("ratio p50 / direct import", f"{p50 / direct:.2f}")


async def _count(db: Path, thread_id: str) -> int:
    async with await ThreadStore.open(db) as store:
        head = await store.recorder.head(thread_id)
        return 0 if head is None else head.message_count


async def _direct_import(project: Path, db: Path, rounds: int) -> float:
    times = []
    async with await ThreadStore.open(db) as store:
        for _ in range(rounds):
            start = time.perf_counter()
            await import_unit(store, Unit("claude-code", project))
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def server_latency(lines: int) -> None:
    heading(1, "line appended to a watched session → on the server (watch --sync)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "server-home"
        env = {**os.environ, "THREADLINE_HOME": str(home)}
        made = subprocess.run(
            [*THREADLINE, "token", "create", "--user", "bench", "--workspace", "bench", "--json"],
            env=env,
            capture_output=True,
            check=True,
        )
        token = json.loads(made.stdout)["token"]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "threadline", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        folder = Path(tmp) / "projects"
        project = folder / "bench"
        project.mkdir(parents=True)
        session = project / "bench-session.jsonl"
        session.write_bytes(FIXTURE.read_bytes().replace(b'"sess-1"', b'"bench-session"'))
        delays: list[float] = []
        watcher = None
        try:
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            client_env = {
                **os.environ,
                "THREADLINE_HOME": str(Path(tmp) / "client-home"),
                "THREADLINE_REMOTE": url,
                "THREADLINE_TOKEN": token,
            }
            watcher = _watch(
                Path(tmp) / "threads.db", folder, Path(tmp) / "w.log", "--sync", env=client_env
            )
            base = _server_count(http, "bench-session", at_least=1)
            for n in range(lines):
                with session.open("ab") as out:
                    written = time.perf_counter()
                    out.write(_user_line("bench-session", n))
                _server_count(http, "bench-session", at_least=base + n + 1)
                delays.append(time.perf_counter() - written)
                time.sleep(0.3)
        finally:
            if watcher is not None:
                watcher.send_signal(signal.SIGTERM)
                watcher.wait(timeout=60)
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            http.close()
    line("p50 (target ≤ 2 s)", f"{statistics.median(delays) * 1e3:.0f} ms")
    line("p99", f"{percentile(delays, 0.99) * 1e3:.0f} ms")


def _server_count(http: httpx.Client, thread_id: str, at_least: int) -> int:
    start = time.perf_counter()
    while time.perf_counter() - start < 30:
        answer = http.get(f"/v1/threads/{thread_id}", params={"limit": 0})
        if answer.status_code == 200:
            count = int(answer.json()["head"]["message_count"])
            if count >= at_least:
                return count
        time.sleep(0.005)
    raise SystemExit(f"the server never showed {at_least} messages of {thread_id}")


def idle(files: int, seconds: float) -> None:
    heading(2, f"CPU of a watcher over an idle tree of {files:,} session files")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "projects"
        data = FIXTURE.read_bytes()
        for n in range(files):
            project = folder / f"p{n // 20}"
            project.mkdir(parents=True, exist_ok=True)
            (project / f"s{n}.jsonl").write_bytes(data.replace(b'"sess-1"', f'"s{n}"'.encode()))
        watcher = _watch(Path(tmp) / "threads.db", folder, Path(tmp) / "watch.log")
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        try:
            time.sleep(1.0)
            before = _cpu_seconds(watcher.pid), _cpu_seconds(sleeper.pid)
            time.sleep(seconds)
            after = _cpu_seconds(watcher.pid), _cpu_seconds(sleeper.pid)
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=60)
            sleeper.kill()
            sleeper.wait()
    share = (after[0] - before[0]) / seconds * 100
    baseline = (after[1] - before[1]) / seconds * 100
    line("watcher, % of one core (target ≤ 1 %)", f"{share:.2f} %")
    line("baseline: an idle python process", f"{baseline:.2f} %")
    line("clock tick (resolution of the figures)", f"{100 / TICKS / seconds:.2f} %")


def _fresh_copies(source: Path, target: Path, copies: int) -> int:
    """Every .jsonl under ``source`` ``copies`` times under ``target``, each copy's
    ids (uuid-like strings and session ids) made its own; the number of bytes."""
    ids = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    total = 0
    for copy in range(copies):
        suffix = f"{copy:04x}".encode()

        def own(found: re.Match[bytes], suffix: bytes = suffix) -> bytes:
            return found.group(0)[:-4] + suffix

        for path in source.rglob("*.jsonl"):
            data = ids.sub(own, path.read_bytes())
            out = target / f"copy{copy}" / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            total += len(data)
    return total


def catch_up_cpu(copies: int) -> None:
    heading(3, "catch-up of a folder of sessions: CPU against reading + json.loads")
    with tempfile.TemporaryDirectory() as tmp:
        claude, codex = Path(tmp) / "claude", Path(tmp) / "codex"
        size = _fresh_copies(SAMPLES / "claude-code", claude, copies)
        size += _fresh_copies(SAMPLES / "codex", codex, copies)
        start = time.process_time()
        for path in [*claude.rglob("*.jsonl"), *codex.rglob("*.jsonl")]:
            with path.open("rb") as handle:
                for raw in handle:
                    with contextlib.suppress(ValueError):
                        json.loads(raw)
        baseline = time.process_time() - start

        async def run() -> float:
            async with await ThreadStore.open(Path(tmp) / "threads.db") as store:
                begin = time.process_time()
                await catch_up(store, {"claude-code": [claude], "codex": [codex]})
                return time.process_time() - begin

        spent = asyncio.run(run())
    line("folder", f"{size / 1e6:.1f} MB ({copies} copies of the samples)")
    line("catch_up CPU", f"{spent:.2f} s")
    line("baseline: read + json.loads every line", f"{baseline:.2f} s")
    line("ratio (target ≤ 3)", f"{spent / baseline:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--idle-files", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args()
    latency(args.lines)
    server_latency(args.lines)
    idle(args.idle_files, args.idle_seconds)
    if SAMPLES.exists():
        catch_up_cpu(args.copies)
    else:
        print(f"\n[3] skipped: no samples at {SAMPLES}")


if __name__ == "__main__":
    main()
