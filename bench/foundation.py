"""The five benchmarks of the foundation issue (#2).

Run: ``.venv/bin/python bench/foundation.py [--quick]``

Every figure is printed next to a baseline measured in the same run, on the
same machine, and the ratio between them is what the targets are about:
absolute rates on a shared laptop or CI box mean little. Where the baseline and
the subject can take turns, they alternate in rounds, so that a noisy
neighbour slows both. Databases live in a temporary directory that is removed
at the end.

1. durable single-writer append rate vs raw single-row INSERT+COMMIT
2. 32 concurrent writers vs the single writer (and the raw 64-rows-per-commit ceiling)
3. ``load_thread(limit=50)`` of a 100,000-message thread vs a 100-message one
4. bytes on disk per message vs the message's JSON
5. LangGraph's ``SqliteSaver`` with an ``add_messages`` state, same workload
6. CPU per append (event loop + writer thread), without the disk flush, vs the
   CPU of a raw single-row INSERT+COMMIT
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from _common import (
    GrowthRun,
    Outcome,
    RawSqlite,
    Stopwatch,
    Timings,
    heading,
    human_bytes,
    json_size,
    line,
    message_stream,
    ms,
    per_s,
    store_bytes,
    summary,
    take,
)
from threadline import Message, ThreadStore, ThreadWriter
from threadline.deltas import Delta, MessageDelta
from threadline.recorders.sqlite import SqliteRecorder

WRITERS = 32
RAW_BATCH = 64


@dataclass(frozen=True)
class Config:
    rounds: int
    block: int  # appends per round for a single writer (and raw single-row inserts)
    per_writer: int  # appends per writer per round with 32 writers
    warmup: int
    big_thread: int
    small_thread: int
    reads: int
    disk_messages: int
    langgraph_messages: int
    langgraph_budget: float
    langgraph_mode: str


def build_config(args: argparse.Namespace) -> Config:
    if args.quick:
        config = Config(
            rounds=3,
            block=150,
            per_writer=10,
            warmup=30,
            big_thread=20_000,
            small_thread=100,
            reads=200,
            disk_messages=2_000,
            langgraph_messages=200,
            langgraph_budget=args.langgraph_budget,
            langgraph_mode=args.langgraph_mode,
        )
    else:
        config = Config(
            rounds=10,
            block=200,
            per_writer=25,
            warmup=100,
            big_thread=100_000,
            small_thread=100,
            reads=1_000,
            disk_messages=5_000,
            langgraph_messages=2_000,
            langgraph_budget=args.langgraph_budget,
            langgraph_mode=args.langgraph_mode,
        )
    if args.langgraph_messages is not None:
        config = replace(config, langgraph_messages=args.langgraph_messages)
    return config


# -- timing loops --------------------------------------------------------------------


async def timed_appends(writer: ThreadWriter, messages: Sequence[Message]) -> Timings:
    """One ``append`` per message, each awaited (acknowledged = durable)."""
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for message in messages:
        began = clock()
        await writer.append(message)
        latencies.append(clock() - began)
    return Timings(latencies, clock() - start, len(messages))


def timed_raw_inserts(raw: RawSqlite, bodies: Sequence[bytes]) -> Timings:
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for body in bodies:
        began = clock()
        raw.insert_one(body)
        latencies.append(clock() - began)
    return Timings(latencies, clock() - start, len(bodies))


def timed_raw_batches(raw: RawSqlite, bodies: Sequence[bytes], size: int) -> Timings:
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for first in range(0, len(bodies), size):
        began = clock()
        raw.insert_many(list(bodies[first : first + size]))
        latencies.append(clock() - began)
    return Timings(latencies, clock() - start, len(bodies))


async def timed_concurrent(
    writers: Sequence[ThreadWriter], batches: list[list[Message]]
) -> Timings:
    """Every writer appends its messages one by one, all writers at once."""
    latencies: list[float] = []
    clock = time.perf_counter

    async def run(writer: ThreadWriter, messages: list[Message]) -> None:
        for message in messages:
            began = clock()
            await writer.append(message)
            latencies.append(clock() - began)

    start = clock()
    async with asyncio.TaskGroup() as group:
        for writer, messages in zip(writers, batches, strict=True):
            group.create_task(run(writer, messages))
    return Timings(latencies, clock() - start, sum(len(b) for b in batches))


def bodies_of(messages: Sequence[Message]) -> list[bytes]:
    return [m.model_dump_json().encode() for m in messages]


# -- 1. single writer -----------------------------------------------------------------


async def bench_single_writer(
    config: Config, tmp: Path, stream: Iterator[Message]
) -> tuple[Outcome, float]:
    heading(1, "Durable single-writer append rate vs raw single-row INSERT+COMMIT")
    store = await ThreadStore.open(tmp / "single.db", synchronous="FULL")
    raw = RawSqlite(tmp / "raw-single.db", synchronous="FULL")
    try:
        thread = await store.create_thread(title="bench 1")
        writer = await store.acquire_writer(thread.id)
        warm = take(stream, config.warmup)
        await timed_appends(writer, warm)
        timed_raw_inserts(raw, bodies_of(warm))
        subject, baseline = Timings.empty(), Timings.empty()
        sizes: list[int] = []
        for round_ in range(config.rounds):
            messages = take(stream, config.block)
            bodies = bodies_of(messages)
            sizes += [len(b) for b in bodies]
            if round_ % 2:
                subject.add(await timed_appends(writer, messages))
                baseline.add(timed_raw_inserts(raw, bodies))
            else:
                baseline.add(timed_raw_inserts(raw, bodies))
                subject.add(await timed_appends(writer, messages))
        await writer.dispose()
    finally:
        raw.close()
        await store.close()
    ratio = subject.rate / baseline.rate
    line("mode", "WAL, synchronous=FULL (both)")
    line("message JSON (mean)", f"{sum(sizes) / len(sizes):,.0f} B")
    line(
        "operations",
        f"{config.rounds} alternating rounds x {config.block} (+{config.warmup} warm-up)",
    )
    line(
        "raw INSERT+COMMIT",
        f"{per_s(baseline.rate)}  median {ms(baseline.median)}  p99 {ms(baseline.p99)}",
    )
    line(
        "ThreadWriter.append",
        f"{per_s(subject.rate)}  median {ms(subject.median)}  p99 {ms(subject.p99)}",
    )
    line("ratio (target >= 0.6)", f"{ratio:.2f}")
    outcome = Outcome(
        1,
        "single-writer append",
        per_s(subject.rate),
        per_s(baseline.rate) + " raw",
        ratio,
        ">= 0.6",
        ratio >= 0.6,
    )
    return outcome, subject.rate


# -- 2. 32 writers --------------------------------------------------------------------


async def bench_concurrent(
    config: Config, tmp: Path, stream: Iterator[Message], single_rate: float
) -> Outcome:
    heading(2, f"{WRITERS} writers appending concurrently (one writer per thread)")
    store = await ThreadStore.open(tmp / "concurrent.db", synchronous="FULL")
    raw = RawSqlite(tmp / "raw-concurrent.db", synchronous="FULL")
    try:
        solo = await store.acquire_writer((await store.create_thread(title="solo")).id)
        writers = [
            await store.acquire_writer((await store.create_thread(title=f"agent {i}")).id)
            for i in range(WRITERS)
        ]
        warm = [take(stream, 5) for _ in writers]
        await timed_concurrent(writers, warm)
        await timed_appends(solo, take(stream, config.warmup))
        timed_raw_batches(raw, bodies_of(take(stream, RAW_BATCH * 2)), RAW_BATCH)
        timed_raw_inserts(raw, bodies_of(take(stream, config.warmup)))
        single, many = Timings.empty(), Timings.empty()
        raw_one, raw_batched = Timings.empty(), Timings.empty()
        raw_rows = RAW_BATCH * max(1, config.per_writer * WRITERS // RAW_BATCH)
        for round_ in range(config.rounds):
            batches = [take(stream, config.per_writer) for _ in writers]
            solo_messages = take(stream, config.block)
            raw_single = bodies_of(take(stream, config.block))
            raw_many = bodies_of(take(stream, raw_rows))
            if round_ % 2 == 0:
                single.add(await timed_appends(solo, solo_messages))
                many.add(await timed_concurrent(writers, batches))
            else:
                many.add(await timed_concurrent(writers, batches))
                single.add(await timed_appends(solo, solo_messages))
            raw_one.add(timed_raw_inserts(raw, raw_single))
            raw_batched.add(timed_raw_batches(raw, raw_many, RAW_BATCH))
        for writer in [solo, *writers]:
            await writer.dispose()
    finally:
        raw.close()
        await store.close()
    ratio = many.rate / single.rate
    ceiling = raw_batched.rate / raw_one.rate
    line(
        "operations",
        f"{config.rounds} rounds: 1 writer x {config.block}, "
        f"{WRITERS} writers x {config.per_writer}",
    )
    line(
        "1 writer (interleaved with the 32)",
        f"{per_s(single.rate)}  median {ms(single.median)}  p99 {ms(single.p99)}",
    )
    line(
        f"{WRITERS} writers, total",
        f"{per_s(many.rate)}  median {ms(many.median)}  p99 {ms(many.p99)}",
    )
    line("ratio to 1 writer (target >= 5)", f"{ratio:.2f}")
    line("ratio to the rate of [1]", f"{many.rate / single_rate:.2f}")
    line("raw single-row INSERT+COMMIT", per_s(raw_one.rate))
    line(f"raw {RAW_BATCH} rows per commit", per_s(raw_batched.rate))
    line(f"raw ceiling ({RAW_BATCH}-row / single-row)", f"{ceiling:.2f}")
    return Outcome(
        2,
        f"{WRITERS} concurrent writers",
        per_s(many.rate),
        per_s(single.rate) + " 1 writer",
        ratio,
        ">= 5",
        ratio >= 5,
    )


# -- 3. paging -------------------------------------------------------------------------


async def grow_thread(
    store: ThreadStore, thread_id: str, stream: Iterator[Message], count: int, batch: int
) -> None:
    """Append ``count`` messages in atomic batches (one durable commit per batch)."""
    version = (await store.load_thread(thread_id, limit=0)).v
    left = count
    while left:
        deltas: list[Delta] = [MessageDelta.of(m) for m in take(stream, min(batch, left))]
        version = await store.append_deltas(thread_id, version, deltas)
        left -= len(deltas)


async def timed_page(store: ThreadStore, thread_id: str, expected_total: int) -> float:
    began = time.perf_counter()
    page = await store.load_thread(thread_id, limit=50)
    elapsed = time.perf_counter() - began
    assert len(page.messages) == 50, page.head
    assert page.total_messages == expected_total, page.head
    return elapsed


async def bench_paging(config: Config, tmp: Path, stream: Iterator[Message]) -> Outcome:
    heading(3, f"load_thread(limit=50): {config.big_thread:,}-message thread vs 100")
    batch = 1_000
    store = await ThreadStore.open(tmp / "paging.db", synchronous="FULL")
    try:
        big = await store.create_thread(title="big")
        small = await store.create_thread(title="small")
        with Stopwatch() as build:
            await grow_thread(store, big.id, stream, config.big_thread, batch)
        await grow_thread(store, small.id, stream, config.small_thread, batch)
        line(
            "build",
            f"{config.big_thread:,} messages in atomic batches of {batch:,} "
            f"(store.append_deltas, synchronous=FULL): {build.elapsed:.1f} s",
        )
        gc.collect()
        for _ in range(50):
            await timed_page(store, big.id, config.big_thread)
            await timed_page(store, small.id, config.small_thread)
        big_t, small_t = Timings.empty(), Timings.empty()
        for i in range(config.reads):
            order = [(big_t, big.id, config.big_thread), (small_t, small.id, config.small_thread)]
            for timings, thread_id, total in order if i % 2 else reversed(order):
                timings.latencies.append(await timed_page(store, thread_id, total))
    finally:
        await store.close()
    ratio = big_t.median / small_t.median
    line("reads", f"{config.reads} of each, alternating (+50 warm-up)")
    line(
        f"{config.small_thread}-message thread",
        f"median {ms(small_t.median)}  p99 {ms(small_t.p99)}",
    )
    line(
        f"{config.big_thread:,}-message thread",
        f"median {ms(big_t.median)}  p99 {ms(big_t.p99)}",
    )
    line("ratio of medians (target <= 1.5)", f"{ratio:.2f}")
    line("ratio of p99s", f"{big_t.p99 / small_t.p99:.2f}")
    line("median of the big thread (target <= 2 ms)", ms(big_t.median))
    return Outcome(
        3,
        f"load_thread newest 50 of {config.big_thread:,}",
        f"median {ms(big_t.median)}",
        f"{ms(small_t.median)} (100 msgs)",
        ratio,
        "<= 1.5, <= 2 ms",
        ratio <= 1.5 and big_t.median <= 0.002,
    )


# -- 4. bytes on disk ------------------------------------------------------------------


async def bench_disk(config: Config, tmp: Path, stream: Iterator[Message]) -> Outcome:
    heading(4, "Bytes on disk per message vs the message's JSON")
    path = tmp / "disk.db"
    threads = 10
    turn = 8
    store = await ThreadStore.open(path, synchronous="FULL")
    json_bytes = 0
    with_tools = with_usage = 0
    try:
        per_thread = config.disk_messages // threads
        for i in range(threads):
            writer = await store.acquire_writer((await store.create_thread(title=f"s{i}")).id)
            for first in range(0, per_thread, turn):
                messages = take(stream, min(turn, per_thread - first))
                json_bytes += sum(json_size(m) for m in messages)
                with_tools += sum(bool(m.tool_calls or m.tool_results) for m in messages)
                with_usage += sum(m.usage is not None for m in messages)
                await writer.extend(messages)
            await writer.dispose()
        recorder = store.recorder
        assert isinstance(recorder, SqliteRecorder)
        await recorder.checkpoint()
        disk = store_bytes(path)
        db_file = path.stat().st_size
    finally:
        await store.close()
    count = threads * per_thread
    raw_path = tmp / "raw-disk.db"
    raw = RawSqlite(raw_path, synchronous="FULL")
    raw.insert_many(bodies_of(take(message_stream(seed=4), count)))
    raw.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw_disk = store_bytes(raw_path)
    raw.close()
    ratio = disk / json_bytes
    line(
        "messages",
        f"{count:,} in {threads} threads, appended {turn} at a time; "
        f"{with_tools / count:.0%} with a tool call or result, {with_usage / count:.0%} with usage",
    )
    line("message JSON, mean", f"{json_bytes / count:,.0f} B")
    line(
        "store after checkpoint (db + wal)",
        f"{human_bytes(disk)} (wal {human_bytes(disk - db_file)})",
    )
    line("bytes on disk per message", f"{disk / count:,.0f} B")
    line("ratio (target <= 1.3)", f"{ratio:.2f}")
    line("for scale: raw table of the JSON, same files", f"{raw_disk / json_bytes:.2f} x JSON")
    return Outcome(
        4,
        "bytes on disk per message",
        f"{disk / count:,.0f} B",
        f"{json_bytes / count:,.0f} B JSON",
        ratio,
        "<= 1.3",
        ratio <= 1.3,
    )


# -- 5. LangGraph ----------------------------------------------------------------------


async def run_threadline(path: Path, messages: list[Message]) -> GrowthRun:
    store = await ThreadStore.open(path, synchronous="FULL")
    try:
        thread = await store.create_thread(title="bench 5")
        writer = await store.acquire_writer(thread.id)
        timings = await timed_appends(writer, messages)
        await writer.dispose()
        page = await store.load_thread(thread.id, limit=1)
        assert page.total_messages == len(messages)
        recorder = store.recorder
        assert isinstance(recorder, SqliteRecorder)
        await recorder.checkpoint()
        size = store_bytes(path)
    finally:
        await store.close()
    return GrowthRun(len(messages), timings.wall, size, timings.latencies)


async def bench_langgraph(config: Config, tmp: Path) -> list[Outcome]:
    heading(
        5,
        f"LangGraph SqliteSaver (add_messages state) vs threadline: one thread grown to "
        f"{config.langgraph_messages:,} messages, one message per step",
    )
    try:
        from _langgraph import grow_langgraph
    except ImportError:
        line("skipped", "install the extras: .venv/bin/pip install -e '.[bench]'")
        return []
    messages = take(message_stream(seed=5), config.langgraph_messages)
    lg_path = tmp / "langgraph.db"
    step = (
        "graph.update_state(one message)"
        if config.langgraph_mode == "update"
        else "graph.invoke(one message) through a no-op node"
    )
    line("LangGraph step", step)
    line("both", "WAL, synchronous=FULL, one durable commit per step or more")
    # threadline first: after LangGraph's gigabytes the disk is busy writing back
    # for a while, which would slow threadline's commits.
    tl = await run_threadline(tmp / "threadline-5.db", messages)
    lg = await asyncio.to_thread(
        grow_langgraph, lg_path, messages, config.langgraph_mode, config.langgraph_budget
    )
    if lg.messages < tl.messages:  # LangGraph ran out of time: compare at its size
        await asyncio.to_thread(os.sync)
        tl = await run_threadline(tmp / "threadline-5b.db", messages[: lg.messages])
    line(
        "messages",
        f"{lg.messages:,} (JSON {sum(json_size(m) for m in messages[: lg.messages]) / 1e6:.1f} MB)",
    )
    line(
        "threadline: time / db / last step",
        f"{tl.seconds:.2f} s / {human_bytes(tl.db_bytes)} / {ms(tl.last_step)} "
        f"(median of last 20: {ms(tl.last_steps_median)})",
    )
    line(
        "LangGraph:  time / db / last step",
        f"{lg.seconds:.2f} s / {human_bytes(lg.db_bytes)} / {ms(lg.last_step)} "
        f"(median of last 20: {ms(lg.last_steps_median)})",
    )
    time_ratio = lg.seconds / tl.seconds
    size_ratio = lg.db_bytes / tl.db_bytes
    step_ratio = lg.last_steps_median / tl.last_steps_median
    line("LangGraph / threadline: time", f"{time_ratio:.1f} x")
    line("LangGraph / threadline: bytes", f"{size_ratio:.1f} x")
    line("LangGraph / threadline: last-step latency", f"{step_ratio:.1f} x (medians of last 20)")
    name = f"vs LangGraph, {lg.messages:,} msgs"
    return [
        Outcome(
            5,
            name + ": time",
            f"{tl.seconds:.2f} s",
            f"{lg.seconds:.2f} s LG",
            1 / time_ratio,
            "-",
            None,
        ),
        Outcome(
            5,
            name + ": bytes",
            human_bytes(tl.db_bytes),
            human_bytes(lg.db_bytes) + " LG",
            1 / size_ratio,
            "-",
            None,
        ),
        Outcome(
            5,
            name + ": last step",
            ms(tl.last_steps_median),
            ms(lg.last_steps_median) + " LG",
            1 / step_ratio,
            "-",
            None,
        ),
    ]


# -- 6. CPU per append ----------------------------------------------------------------


@dataclass
class CpuSplit:
    """CPU seconds spent over some operations: the whole process, and the thread
    that ran the event loop (the rest is the recorder's writer thread)."""

    process: float = 0.0
    loop: float = 0.0
    operations: int = 0

    def per_op(self, seconds: float) -> float:
        return seconds / self.operations


async def cpu_of_appends(writers: Sequence[ThreadWriter], batches: list[list[Message]]) -> CpuSplit:
    process, loop = time.process_time(), time.thread_time()
    if len(writers) == 1:
        await timed_appends(writers[0], batches[0])
    else:
        await timed_concurrent(writers, batches)
    return CpuSplit(
        time.process_time() - process,
        time.thread_time() - loop,
        sum(len(b) for b in batches),
    )


def cpu_of_raw_inserts(raw: RawSqlite, bodies: Sequence[bytes]) -> CpuSplit:
    process, loop = time.process_time(), time.thread_time()
    timed_raw_inserts(raw, bodies)
    return CpuSplit(time.process_time() - process, time.thread_time() - loop, len(bodies))


def add_split(total: CpuSplit, part: CpuSplit) -> None:
    total.process += part.process
    total.loop += part.loop
    total.operations += part.operations


async def bench_cpu(config: Config, tmp: Path, stream: Iterator[Message]) -> Outcome:
    heading(6, "CPU per durable append (event loop + writer thread), without the disk flush")
    # synchronous=OFF runs the same code and the same statements as FULL, minus
    # the fsync (which costs wall time, hardly CPU): the process's CPU time over
    # N appends, divided by N, is the Python and SQLite work of one append.
    store = await ThreadStore.open(tmp / "cpu.db", synchronous="OFF")
    raw = RawSqlite(tmp / "raw-cpu.db", synchronous="OFF")
    try:
        solo = await store.acquire_writer((await store.create_thread(title="cpu")).id)
        writers = [
            await store.acquire_writer((await store.create_thread(title=f"cpu {i}")).id)
            for i in range(WRITERS)
        ]
        await timed_appends(solo, take(stream, config.warmup))
        await timed_concurrent(writers, [take(stream, 5) for _ in writers])
        timed_raw_inserts(raw, bodies_of(take(stream, config.warmup)))
        single, many, baseline = CpuSplit(), CpuSplit(), CpuSplit()
        for _ in range(config.rounds):
            add_split(single, await cpu_of_appends([solo], [take(stream, config.block)]))
            add_split(
                many,
                await cpu_of_appends(writers, [take(stream, config.per_writer) for _ in writers]),
            )
            add_split(baseline, cpu_of_raw_inserts(raw, bodies_of(take(stream, config.block))))
        for writer in [solo, *writers]:
            await writer.dispose()
    finally:
        raw.close()
        await store.close()
    line(
        "method",
        "time.process_time() over N appends at synchronous=OFF, / N; the event loop's",
    )
    line("", "share is time.thread_time() of its thread, the rest is the writer thread")
    line(
        "operations",
        f"{config.rounds} rounds x ({config.block} single + {WRITERS} x "
        f"{config.per_writer} concurrent + {config.block} raw)",
    )
    line("raw INSERT+COMMIT (one thread)", ms(baseline.per_op(baseline.process)))
    for name, split in (("1 writer", single), (f"{WRITERS} writers (group commit)", many)):
        line(
            f"{name}: CPU per append",
            f"{ms(split.per_op(split.process))}  (event loop {ms(split.per_op(split.loop))}, "
            f"writer thread {ms(split.per_op(split.process - split.loop))})",
        )
    figure = single.per_op(single.process)
    line("1 writer, target <= 0.25 ms", ms(figure))
    return Outcome(
        6,
        "CPU per append, 1 writer",
        ms(figure),
        ms(baseline.per_op(baseline.process)) + " raw",
        figure / baseline.per_op(baseline.process),
        "<= 0.25 ms",
        figure <= 0.00025,
    )


# -- main ------------------------------------------------------------------------------


async def run(config: Config, only: set[int]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    stream = message_stream(seed=1)
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as name:
        tmp = Path(name)
        single_rate = 0.0
        if only & {1, 2}:
            outcome, single_rate = await bench_single_writer(config, tmp, stream)
            if 1 in only:
                outcomes.append(outcome)
        if 2 in only:
            outcomes.append(await bench_concurrent(config, tmp, stream, single_rate))
        if 3 in only:
            outcomes.append(await bench_paging(config, tmp, stream))
        if 4 in only:
            outcomes.append(await bench_disk(config, tmp, stream))
        if 5 in only:
            outcomes.extend(await bench_langgraph(config, tmp))
        if 6 in only:
            outcomes.append(await bench_cpu(config, tmp, stream))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--langgraph-messages",
        type=int,
        default=None,
        help="messages in the LangGraph comparison (default 2000; 200 with --quick)",
    )
    parser.add_argument(
        "--langgraph-budget",
        type=float,
        default=900.0,
        help="stop growing the LangGraph thread after this many seconds (default 900)",
    )
    parser.add_argument(
        "--langgraph-mode",
        choices=("update", "invoke"),
        default="update",
        help="one graph.update_state per message (one checkpoint, the default) "
        "or one graph.invoke through a no-op node (three checkpoints)",
    )
    parser.add_argument(
        "--only", type=int, nargs="+", choices=range(1, 7), help="run only these benchmarks"
    )
    args = parser.parse_args()
    config = build_config(args)
    only = set(args.only or range(1, 7))
    print(
        f"threadline foundation benchmarks ({'quick' if args.quick else 'full'}); "
        f"Python {sys.version.split()[0]}, SQLite {__import__('sqlite3').sqlite_version}"
    )
    with Stopwatch() as total:
        outcomes = asyncio.run(run(config, only))
    summary(outcomes)
    print("  ratio = threadline figure / baseline figure, both measured in this run")
    print(f"\nTotal {total.elapsed:.0f} s")


if __name__ == "__main__":
    main()
