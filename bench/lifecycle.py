"""Archive and restore throughput, compression and the active database's size (#7).

Run: ``.venv/bin/python bench/lifecycle.py [--quick] [--threads N] [--messages M]``

A SQLite store (``synchronous=FULL``, as by default) gets ``--threads`` threads
of ``--messages`` realistic agent messages (default 1,000 x 200), all older
than 30 days; a local folder is the cold storage. Then, timed:

1. ``archive_inactive_threads(older_than=30 days)``: threads/s and MB/s of
   log (the uncompressed JSON), the compression ratio, and the active database
   before and after. SQLite does not give pages back to the file system by
   itself: the size after is given twice, as the pages still in use
   (``page_count - freelist_count``: freelist accounting, what the next writes
   reuse) and as the file size after ``VACUUM``.
2. ``restore_thread`` of every thread (4 at a time): threads/s and MB/s; the
   restored logs are checked equal to the originals (versions, deltas, commit
   times) for a sample of threads.

Baselines measured in the same run on the same bytes: zstd alone (compress the
same logs at the same level, and decompress them), a plain copy of the same
objects from folder to folder, and reading the same logs' rows with raw
``sqlite3``. The ratios say how much of the time the lifecycle spends beyond
those floors (leases, JSON encoding and decoding, checksums, read-back
verification, the transactions).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

from _common import Stopwatch, heading, human_bytes, line, message_stream, take
from threadline import ThreadStore
from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.lifecycle.archive import ColdStorage, compress, decompress
from threadline.recorders import RecordedDelta
from threadline.recorders.sqlite import SqliteRecorder

MB = 1024 * 1024
SAMPLE = 20
RESTORE_CONCURRENCY = 4


def database_pages(path: Path) -> tuple[int, int, int]:
    """(file bytes, bytes of pages in use, bytes of free pages) of a SQLite file."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return path.stat().st_size, (count - free) * size, free * size


def vacuum(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


async def build(db: Path, threads: int, messages: int) -> list[str]:
    """``threads`` threads of ``messages`` messages each, written in batches."""
    recorder = SqliteRecorder(db, synchronous="OFF")
    ids: list[str] = []
    try:
        for start in range(0, threads, 50):
            batch: list[tuple[str, list[Delta]]] = []
            for number in range(start, min(threads, start + 50)):
                thread_id = f"T-bench-{number:05d}"
                created = 1_700_000_000_000 + number
                log: list[Delta] = [
                    ThreadCreate(id=thread_id, title=f"bench thread {number}", created=created)
                ]
                log += [MessageDelta.of(m) for m in take(message_stream(number), messages)]
                batch.append((thread_id, log))
            await asyncio.gather(*(recorder.append(t, 0, log) for t, log in batch))
            ids += [t for t, _ in batch]
    finally:
        await recorder.close()
    return ids


def raw_read_rows(db: Path) -> tuple[float, int]:
    """Seconds to read every delta row with raw sqlite3, and the bytes read."""
    with sqlite3.connect(db) as conn, Stopwatch() as watch:
        total = sum(
            len(body) for (body,) in conn.execute("SELECT body FROM deltas ORDER BY tid, v")
        )
    return watch.elapsed, total


async def run(threads: int, messages: int, folder: Path) -> None:
    db = folder / "threads.db"
    cold_folder = folder / "cold"
    print(f"threadline lifecycle benchmark: {threads} threads x {messages} messages", flush=True)
    with Stopwatch() as watch:
        ids = await build(db, threads, messages)
    line("built the store in", f"{watch.elapsed:.1f} s")
    raw_seconds, raw_bytes = raw_read_rows(db)
    before_file, before_used, _ = database_pages(db)

    store = ThreadStore(SqliteRecorder(db), cold_storage=ColdStorage.local(cold_folder))
    sample = random.Random(7).sample(ids, min(SAMPLE, len(ids)))
    originals: dict[str, list[RecordedDelta]] = {t: await store.history(t) for t in sample}

    heading(1, "archive_inactive_threads(older_than=30 days)")
    with Stopwatch() as archiving:
        archived = await store.archive_inactive_threads(older_than=timedelta(days=30))
    assert sorted(archived) == sorted(ids), "every thread is archived"
    entries = [await store.archived_thread(t) for t in ids]
    raw_size = sum(e.object.raw_size for e in entries if e is not None)
    packed_size = sum(e.object.size for e in entries if e is not None)
    after_file, after_used, after_free = database_pages(db)
    line("threads archived", f"{len(archived):,} in {archiving.elapsed:.2f} s")
    line("archive throughput", f"{len(archived) / archiving.elapsed:,.0f} threads/s")
    line(
        "archive throughput (uncompressed log)",
        f"{raw_size / MB / archiving.elapsed:,.1f} MB/s of {human_bytes(raw_size)}",
    )
    line("objects written", f"{human_bytes(packed_size)} ({len(entries):,} objects)")
    line("compression ratio (log / object)", f"{raw_size / packed_size:.2f}x")
    line(
        "rows read by raw sqlite3 (delta bodies)",
        f"{human_bytes(raw_bytes)} in {raw_seconds:.2f} s",
    )
    line("active database before: file", human_bytes(before_file))
    line("active database before: pages in use", human_bytes(before_used))
    line("after: file (SQLite keeps freed pages)", human_bytes(after_file))
    line(
        "after: pages in use (freelist accounting)",
        f"{human_bytes(after_used)} ({after_used / before_used:.1%} of before;"
        f" {human_bytes(after_free)} free)",
    )

    # Baselines on the very same bytes: zstd alone and a plain copy of the objects.
    objects = sorted(cold_folder.rglob("*.json.zst"))
    blobs = [path.read_bytes() for path in objects]
    logs = [decompress(blob) for blob in blobs]
    with Stopwatch() as zstd_out:
        for raw in logs:
            compress(raw)
    with Stopwatch() as zstd_in:
        for blob in blobs:
            decompress(blob)
    copy_folder = folder / "copy"
    copy_folder.mkdir()
    with Stopwatch() as copying:
        for number, path in enumerate(objects):
            shutil.copyfile(path, copy_folder / f"{number}.zst")
    shutil.rmtree(copy_folder)
    del blobs, logs

    heading(2, f"restore_thread of every thread ({RESTORE_CONCURRENCY} at a time)")
    gate = asyncio.Semaphore(RESTORE_CONCURRENCY)

    async def restore(thread_id: str) -> list[str]:
        async with gate:
            return await store.restore_thread(thread_id)

    with Stopwatch() as restoring:
        restored = await asyncio.gather(*(restore(t) for t in ids))
    assert sorted(t for r in restored for t in r) == sorted(ids), "every thread is restored"
    for thread_id, log in originals.items():
        assert await store.history(thread_id) == log, f"{thread_id} restored differently"
    await store.close()
    _, end_used, _ = database_pages(db)
    line("threads restored", f"{len(ids):,} in {restoring.elapsed:.2f} s")
    line("restore throughput", f"{len(ids) / restoring.elapsed:,.0f} threads/s")
    line(
        "restore throughput (uncompressed log)",
        f"{raw_size / MB / restoring.elapsed:,.1f} MB/s",
    )
    line(f"restored logs equal to the originals ({len(originals)} sampled)", "yes")
    line("active database after restore: pages in use", human_bytes(end_used))
    line("objects left in cold storage", str(len(list(cold_folder.rglob("*.json.zst")))))
    line("VACUUM of the restored database: file", human_bytes(vacuum(db)))

    heading(3, "baselines on the same bytes (same run)")
    zstd_rate = raw_size / MB / zstd_out.elapsed
    unzstd_rate = raw_size / MB / zstd_in.elapsed
    copy_rate = len(objects) / copying.elapsed
    line("zstd compress alone (same level)", f"{zstd_rate:,.1f} MB/s")
    line("zstd decompress alone", f"{unzstd_rate:,.1f} MB/s")
    line("plain copy of the objects", f"{copy_rate:,.0f} objects/s")
    line("raw sqlite3 read of the delta rows", f"{raw_bytes / MB / raw_seconds:,.1f} MB/s")

    print("\nSummary")
    archive_rate = raw_size / MB / archiving.elapsed
    restore_rate = raw_size / MB / restoring.elapsed
    rows = [
        ("archive", f"{len(ids) / archiving.elapsed:,.0f} threads/s", f"{archive_rate:,.1f} MB/s"),
        ("restore", f"{len(ids) / restoring.elapsed:,.0f} threads/s", f"{restore_rate:,.1f} MB/s"),
    ]
    for name, threads_rate, bytes_rate in rows:
        print(f"  {name:<8} {threads_rate:>16} {bytes_rate:>14}")
    print(f"  archive / zstd-compress-alone MB/s      {archive_rate / zstd_rate:.3f}")
    print(f"  restore / zstd-decompress-alone MB/s    {restore_rate / unzstd_rate:.3f}")
    print(
        f"  archive / plain-copy objects/s          {len(ids) / archiving.elapsed / copy_rate:.3f}"
    )
    print(f"  compression ratio                       {raw_size / packed_size:.2f}x")
    print(
        f"  active DB pages in use after/before     {after_used / before_used:.3f}"
        " (freelist accounting; see VACUUM line for the file)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 threads x 50 messages")
    parser.add_argument("--threads", type=int, default=1_000, help="threads (default 1000)")
    parser.add_argument("--messages", type=int, default=200, help="messages per thread")
    args = parser.parse_args()
    threads, messages = (100, 50) if args.quick else (args.threads, args.messages)
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as folder:
        asyncio.run(run(threads, messages, Path(folder)))


if __name__ == "__main__":
    main()
