"""The benchmarks of file change tracking and rollback (issue #6).

Run: ``.venv/bin/python bench/files.py [--quick]``

A 100 KB source file is modified 1,000 times, each modification a tool
operation of its own (an edit replacing a few lines somewhere in the file),
recorded with ``record_file_change`` before the file is written. Then the
1,000 operations are rolled back. The baseline, measured in the same run on
the same machine, is the naive durable tracker: a full copy of the file as it
was, one row per change, INSERT + COMMIT in SQLite (WAL, ``synchronous=FULL``,
like the store), and for a rollback, reading that copy back and writing the
file atomically (temporary file, fsync, rename). Subject and baseline take
turns in rounds, so that a noisy neighbour slows both.

1. storage after 1,000 modifications vs 1,000 full copies (and vs 1,000
   zstd-compressed copies, what content addressing without deltas would keep)
2. time per ``record_file_change`` vs the naive INSERT of a full copy
3. rolling back the 1,000 operations one by one, newest first, vs naive restores
4. rewinding all 1,000 in one ``rollback_to`` vs one naive restore
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

from _common import (
    Outcome,
    Stopwatch,
    Timings,
    heading,
    human_bytes,
    line,
    ms,
    store_bytes,
    summary,
)
from threadline import Message, ThreadStore
from threadline.files.workdir import write_file
from threadline.recorders.roles import file_log
from threadline.recorders.sqlite import SqliteRecorder

FILE_SIZE = 100_000
_WORDS = [
    "def",
    "return",
    "self",
    "value",
    "import",
    "class",
    "if",
    "else",
    "for",
    "while",
    "try",
    "except",
    "raise",
    "with",
    "user",
    "session",
    "token",
    "request",
    "response",
    "handler",
    "route",
    "config",
    "query",
    "index",
    "result",
    "path",
    "module",
    "package",
    "version",
    "build",
    "test",
    "check",
    "update",
    "remove",
    "add",
    "fix",
]


def source_text(rng: random.Random, size: int) -> bytes:
    """Python-looking lines of varied length."""
    lines: list[str] = []
    length = 0
    while length < size:
        indent = "    " * rng.randint(0, 3)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 12)))
        text = f"{indent}{words}\n"
        lines.append(text)
        length += len(text)
    return "".join(lines).encode()[:size]


def edit(rng: random.Random, content: bytes) -> bytes:
    """Replace a few lines somewhere with a few new ones, keeping about the size."""
    at = rng.randrange(0, len(content) - 400)
    cut = rng.randint(40, 300)
    new = source_text(rng, cut + rng.randint(-20, 20))
    return (content[:at] + new + content[at + cut :])[: FILE_SIZE + 2_000]


class NaiveTracker:
    """The baseline: one full copy per change in SQLite, committed each time."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        assert self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute(
            "CREATE TABLE copies (id INTEGER PRIMARY KEY, path TEXT NOT NULL, body BLOB NOT NULL)"
        )

    def record(self, path: Path) -> int:
        """Keep the file as it is now (before the tool writes it); returns the row id."""
        body = path.read_bytes()
        self.conn.execute("BEGIN IMMEDIATE")
        row = self.conn.execute(
            "INSERT INTO copies (path, body) VALUES (?, ?)", (str(path), body)
        ).lastrowid
        self.conn.execute("COMMIT")
        assert row is not None
        return row

    def restore(self, row: int, path: Path) -> None:
        (body,) = self.conn.execute("SELECT body FROM copies WHERE id = ?", (row,)).fetchone()
        write_file(path, body, 0o644)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Config:
    modifications: int
    rounds: int


@dataclass
class Results:
    record: Timings
    naive_record: Timings
    rollback: Timings
    naive_restore: Timings
    rewind: float
    naive_rewind: float
    stored_bytes: int
    contents: int
    full_copies: int
    zstd_copies: int
    db_growth: int
    naive_db: int


async def checkpoint(store: ThreadStore) -> None:
    """Fold the WAL into the database file, so that its size is the data's."""
    assert isinstance(store.recorder, SqliteRecorder)
    await store.recorder.checkpoint()


async def run(config: Config, workdir: Path) -> Results:
    rng = random.Random(6)
    project = workdir / "project"
    project.mkdir()
    subject = project / "service.py"
    subject.write_bytes(source_text(rng, FILE_SIZE))
    naive_project = workdir / "naive"
    naive_project.mkdir()
    naive_subject = naive_project / "service.py"
    naive_subject.write_bytes(subject.read_bytes())
    versions = [subject.read_bytes()]
    for _ in range(config.modifications):
        versions.append(edit(rng, versions[-1]))
    full_copies = sum(len(v) for v in versions[:-1])
    compressor = zstandard.ZstdCompressor(level=3)
    zstd_copies = sum(len(compressor.compress(v)) for v in versions)

    db = workdir / "threads.db"
    naive = NaiveTracker(workdir / "naive.db")
    store = await ThreadStore.open(db)
    try:
        thread = await store.create_thread(env={"cwd": str(project)}, capture_environment=False)
        first = Message(role="user", content="refactor the service")
        await store.append_message(thread.id, first)
        await checkpoint(store)
        db_before = store_bytes(db)
        record, naive_record = Timings.empty(), Timings.empty()
        rows: list[int] = []
        per_round = config.modifications // config.rounds
        clock = time.perf_counter
        for round_number in range(config.rounds):
            numbers = range(round_number * per_round + 1, (round_number + 1) * per_round + 1)
            latencies: list[float] = []
            with Stopwatch() as watch:
                for n in numbers:
                    began = clock()
                    await store.record_file_change(
                        thread.id,
                        f"call-{n}",
                        path="service.py",
                        type="modify",
                        new_content=versions[n],
                    )
                    latencies.append(clock() - began)
                    subject.write_bytes(versions[n])  # the tool's write, not timed
            record.add(Timings(latencies, watch.elapsed, len(numbers)))
            latencies = []
            with Stopwatch() as watch:
                for n in numbers:
                    began = clock()
                    rows.append(naive.record(naive_subject))
                    latencies.append(clock() - began)
                    naive_subject.write_bytes(versions[n])
            naive_record.add(Timings(latencies, watch.elapsed, len(numbers)))
        usage = await file_log(store.recorder).content_usage()
        await checkpoint(store)
        db_growth = store_bytes(db) - db_before

        # Rewind all of them in one call, then undo the rewind (not timed).
        with Stopwatch() as watch:
            report = await store.rollback_to(thread.id, first.id)
        rewind = watch.elapsed
        assert report.ok
        assert subject.read_bytes() == versions[0]
        with Stopwatch() as watch:
            naive.restore(rows[0], naive_subject)
        naive_rewind = watch.elapsed
        assert report.operation_id is not None
        assert (await store.rollback_operation(thread.id, report.operation_id)).ok
        assert subject.read_bytes() == versions[-1]
        naive_subject.write_bytes(versions[-1])

        # Roll back every operation, newest first, one call each.
        rollback, naive_restore = Timings.empty(), Timings.empty()
        newest = config.modifications
        for _ in range(config.rounds):
            numbers = range(newest, newest - per_round, -1)
            latencies = []
            with Stopwatch() as watch:
                for n in numbers:
                    began = clock()
                    done = await store.rollback_operation(thread.id, f"call-{n}")
                    latencies.append(clock() - began)
                    assert done.ok
            rollback.add(Timings(latencies, watch.elapsed, len(numbers)))
            latencies = []
            with Stopwatch() as watch:
                for n in numbers:
                    began = clock()
                    naive.restore(rows[n - 1], naive_subject)
                    latencies.append(clock() - began)
            naive_restore.add(Timings(latencies, watch.elapsed, len(numbers)))
            newest -= per_round
        assert subject.read_bytes() == versions[0]
        assert naive_subject.read_bytes() == versions[0]
    finally:
        await store.close()
        naive.close()
    return Results(
        record=record,
        naive_record=naive_record,
        rollback=rollback,
        naive_restore=naive_restore,
        rewind=rewind,
        naive_rewind=naive_rewind,
        stored_bytes=usage.stored_bytes,
        contents=usage.contents,
        full_copies=full_copies,
        zstd_copies=zstd_copies,
        db_growth=db_growth,
        naive_db=store_bytes(workdir / "naive.db"),
    )


def report(config: Config, r: Results) -> list[Outcome]:
    n = config.modifications
    heading(1, f"Storage after {n:,} modifications of a {FILE_SIZE // 1000} KB file")
    line("stored contents (threadline)", f"{r.contents:,} contents, {human_bytes(r.stored_bytes)}")
    line(f"{n:,} full copies (baseline)", human_bytes(r.full_copies))
    line(f"{n:,} zstd copies, no deltas", human_bytes(r.zstd_copies))
    line("database growth, changes included", human_bytes(r.db_growth))
    line("naive tracker's database", human_bytes(r.naive_db))
    line("full copies / stored contents", f"{r.full_copies / r.stored_bytes:,.0f}x")
    line("zstd copies / stored contents", f"{r.zstd_copies / r.stored_bytes:,.1f}x")

    heading(2, "Time per record_file_change (100 KB file, durable)")
    line("threadline median / p99", f"{ms(r.record.median)} / {ms(r.record.p99)}")
    line(
        "naive full-copy INSERT+COMMIT median / p99",
        f"{ms(r.naive_record.median)} / {ms(r.naive_record.p99)}",
    )
    line("ratio of medians (threadline / naive)", f"{r.record.median / r.naive_record.median:.2f}")

    heading(3, f"Rolling back {n:,} operations, newest first, one call each")
    line("threadline median / p99", f"{ms(r.rollback.median)} / {ms(r.rollback.p99)}")
    line("threadline total", f"{r.rollback.wall:.2f} s")
    line(
        "naive restore median / p99",
        f"{ms(r.naive_restore.median)} / {ms(r.naive_restore.p99)}",
    )
    line("naive total", f"{r.naive_restore.wall:.2f} s")
    ratio = r.rollback.median / r.naive_restore.median
    line("ratio of medians (threadline / naive)", f"{ratio:.2f}")

    heading(4, f"Rewinding all {n:,} operations in one rollback_to")
    line("threadline", ms(r.rewind))
    line("naive restore of the first copy", ms(r.naive_rewind))
    line("ratio", f"{r.rewind / r.naive_rewind:.1f}")

    return [
        Outcome(
            1,
            f"storage, {n:,} edits",
            human_bytes(r.stored_bytes),
            human_bytes(r.full_copies),
            r.stored_bytes / r.full_copies,
            "< 0.1",
            r.stored_bytes / r.full_copies < 0.1,
        ),
        Outcome(
            2,
            "record_file_change median",
            ms(r.record.median),
            ms(r.naive_record.median),
            r.record.median / r.naive_record.median,
            "-",
            None,
        ),
        Outcome(
            3,
            "rollback_operation median",
            ms(r.rollback.median),
            ms(r.naive_restore.median),
            r.rollback.median / r.naive_restore.median,
            "-",
            None,
        ),
        Outcome(
            4,
            f"rollback_to, all {n:,}",
            ms(r.rewind),
            ms(r.naive_rewind),
            r.rewind / r.naive_rewind,
            "-",
            None,
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 modifications instead of 1,000")
    args = parser.parse_args(argv)
    config = Config(modifications=100, rounds=2) if args.quick else Config(1_000, 10)
    print(f"threadline file tracking benchmark: {config.modifications:,} modifications")
    with tempfile.TemporaryDirectory(prefix="threadline-bench-files-") as name:
        results = asyncio.run(run(config, Path(name)))
    outcomes = report(config, results)
    summary(outcomes)
    return 0 if all(o.passed is not False for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
