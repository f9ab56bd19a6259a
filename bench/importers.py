"""Import throughput and search latency (issue #8).

Run: ``.venv/bin/python bench/importers.py [--messages N] [--rounds R]``

1. Import of the largest Claude Code sample session (``../shared/samples``),
   into a fresh SQLite store each round (durable, full-text index included),
   in MB/s and messages/s, against the baseline of merely reading the same
   file and parsing every line with orjson, in the same run.
2. The same for a ~12 MB session made from that sample by repeating its lines
   under fresh ids (users report minutes to *resume* such a session).
3. ``store.search`` over N messages (default 100,000) of realistic agent text
   in one SQLite store, p50 and p99 over a set of queries (common and rare
   words, two words, a phrase, a prefix), against a ``LIKE '%word%'`` scan of
   the same messages, the search one would write without an index.

Rounds of the subject and its baseline alternate, so a noisy neighbour slows
both; figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from _common import heading, line, message_stream, ms, percentile, take
from threadline import ThreadStore
from threadline.deltas import MessageDelta, ThreadCreate
from threadline.importers import import_claude_code
from threadline.recorders import sqlite_bodies

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "claude-code"
QUERIES = (
    "login",
    "password handler",
    '"return value"',
    "databa*",
    "inactive",
    "check_login",
    "merge branch commit",
    "LoginError",
    "nothingmatchesthis",
    "verify user",
)


def largest_session() -> Path:
    files = [p for p in SAMPLES.rglob("*.jsonl") if not p.name.startswith("agent-")]
    if not files:
        sys.exit(f"No Claude Code samples under {SAMPLES}")
    return max(files, key=lambda p: p.stat().st_size)


def grown_copy(source: Path, target: Path, size: int) -> None:
    """``source`` repeated until ``size`` bytes, each copy under fresh uuids and
    response ids (so nothing dedupes away)."""
    lines = source.read_bytes().splitlines()
    out: list[bytes] = []
    total = 0
    copy = 0
    while total < size:
        for raw in lines:
            record = orjson.loads(raw)
            for key in ("uuid", "parentUuid"):
                if isinstance(record.get(key), str):
                    record[key] = f"{record[key]}-{copy}"
            message = record.get("message")
            if isinstance(message, dict) and isinstance(message.get("id"), str):
                message["id"] = f"{message['id']}-{copy}"
            if isinstance(record.get("sessionId"), str):
                record["sessionId"] = "bench-12mb"
            encoded = orjson.dumps(record)
            out.append(encoded)
            total += len(encoded) + 1
        copy += 1
    target.write_bytes(b"\n".join(out) + b"\n")


def parse_only(path: Path) -> int:
    """The baseline: read the file and parse every line."""
    count = 0
    with path.open("rb") as handle:
        for raw in handle:
            orjson.loads(raw)
            count += 1
    return count


async def import_once(path: Path, db: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of every thread of the process, messages)."""
    async with await ThreadStore.open(db) as store:
        started, cpu = time.perf_counter(), time.process_time()
        report = await import_claude_code(store, [path])
        return time.perf_counter() - started, time.process_time() - cpu, report.messages


def bench_import(number: int, title: str, path: Path, work: Path, rounds: int) -> None:
    heading(number, title)
    size = path.stat().st_size
    imports: list[float] = []
    cpus: list[float] = []
    parses: list[float] = []
    messages = 0
    for _ in range(rounds):
        started = time.perf_counter()
        parse_only(path)
        parses.append(time.perf_counter() - started)
        (work / "import.db").unlink(missing_ok=True)
        seconds, cpu, messages = asyncio.run(import_once(path, work / "import.db"))
        imports.append(seconds)
        cpus.append(cpu)
    imported, parsed = statistics.median(imports), statistics.median(parses)
    mb = size / 1e6
    line("file", f"{path.name}, {mb:.2f} MB, {messages:,} messages")
    line(
        "import (SQLite, durable, indexed)",
        f"{imported:.3f} s ({statistics.median(cpus):.3f} s CPU)",
    )
    line("  throughput", f"{mb / imported:.2f} MB/s, {messages / imported:,.0f} messages/s")
    line("baseline: read + orjson.loads per line", f"{parsed:.3f} s, {mb / parsed:.1f} MB/s")
    line("ratio import / parse", f"{imported / parsed:.1f}x")


async def fill(db: Path, count: int, per_thread: int = 1000) -> None:
    stream = message_stream(seed=8)
    async with await ThreadStore.open(db, synchronous="OFF") as store:
        for number in range(0, count, per_thread):
            messages = take(stream, min(per_thread, count - number))
            thread_id = f"T-bench-{number // per_thread:05d}"
            create = ThreadCreate(id=thread_id, title=f"Bench thread {number}", created=1)
            await store.recorder.append(
                thread_id, 0, [create, *(MessageDelta.of(m) for m in messages)]
            )


def like_words(query: str) -> list[str]:
    return [w.strip('"*').lower() for w in query.split()]


def like_scan(conn: sqlite3.Connection, query: str) -> int:
    """Every current message whose JSON contains all the words (no ranking).
    Large bodies are stored compressed: the scan reads them as the store does."""
    words = like_words(query)
    where = " AND ".join("lower(threadline_delta_json(d.body)) LIKE ?" for _ in words)
    sql = f"SELECT count(*) FROM messages m JOIN deltas d ON d.seq = m.delta_seq WHERE {where}"
    return int(conn.execute(sql, [f"%{w}%" for w in words]).fetchone()[0])


def bench_search(number: int, count: int, work: Path, rounds: int) -> None:
    heading(number, f"search over {count:,} messages")
    db = work / "search.db"
    started = time.perf_counter()
    asyncio.run(fill(db, count))
    line("built in", f"{time.perf_counter() - started:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")

    async def searches() -> tuple[list[float], dict[str, int]]:
        latencies: list[float] = []
        hits: dict[str, int] = {}
        async with await ThreadStore.open(db) as store:
            for query in QUERIES:  # warm the page cache and the reader threads
                hits[query] = len(await store.search(query, limit=20))
            for _ in range(rounds):
                for query in QUERIES:
                    started = time.perf_counter()
                    await store.search(query, limit=20)
                    latencies.append(time.perf_counter() - started)
        return latencies, hits

    fts, hits = asyncio.run(searches())
    conn = sqlite3.connect(db)
    sqlite_bodies.register_functions(conn)
    scans: list[float] = []
    for _ in range(max(1, rounds // 5)):
        for query in QUERIES:
            started = time.perf_counter()
            like_scan(conn, query)
            scans.append(time.perf_counter() - started)
    conn.close()
    line("queries", ", ".join(f"{q} ({hits[q]})" for q in QUERIES))
    line(
        "store.search (FTS5, BM25, top 20)",
        f"p50 {ms(statistics.median(fts))}, p99 {ms(percentile(fts, 0.99))}",
    )
    line(
        "baseline: LIKE scan of the same rows",
        f"p50 {ms(statistics.median(scans))}, p99 {ms(percentile(scans, 0.99))}",
    )
    line("ratio LIKE / FTS (p50)", f"{statistics.median(scans) / statistics.median(fts):,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages to search")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        work = Path(tmp)
        sample = largest_session()
        bench_import(1, "import the largest sample session", sample, work, args.rounds)
        big = work / "session-12mb.jsonl"
        grown_copy(sample, big, 12_000_000)
        bench_import(2, "import a 12 MB session", big, work, max(1, args.rounds // 2))
        bench_search(3, args.messages, work, args.rounds * 10)


if __name__ == "__main__":
    main()
