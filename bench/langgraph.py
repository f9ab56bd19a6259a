"""LangGraph checkpointers (issue 15): one graph on LangGraph's savers and on threadline's.

Run: ``.venv/bin/python bench/langgraph.py [--messages N] [--mode update|invoke]
[--no-postgres]`` (needs the ``langgraph`` and ``bench`` extras; the
PostgreSQL pair also needs the ``postgresql`` package and
``langgraph-checkpoint-postgres``).

The same ``StateGraph`` (state ``messages: Annotated[list, add_messages]``)
is grown to N messages (default 2,000), one message per step — by default
one ``graph.update_state`` per message, the least LangGraph writes per
message; ``--mode invoke`` runs one ``graph.invoke`` through a no-op node
instead (three checkpoints per message). The messages are the benchmarks'
realistic mix (prose, code, tool calls and results, usage). Each saver gets
a fresh database:

- ``SqliteSaver`` and ``AsyncSqliteSaver`` (``from_conn_string``: WAL, SQLite's
  default ``synchronous=FULL``), the baseline;
- ``ThreadlineSaver`` and ``AsyncThreadlineSaver`` (``from_path``);
- ``PostgresSaver`` and ``AsyncThreadlineSaver`` over a PostgreSQL store,
  each in its own database of one durable cluster (fsync on).

Figures per saver: bytes on disk once the saver is closed (SQLite: the file
and its WAL; PostgreSQL: tables, indexes and TOAST of its database), total
time, the last step's latency (and the median of the last 20 steps), and the
time of ``get_state_history`` for the newest 10 snapshots and for all of
them. Ratios are against ``SqliteSaver`` in the same run. Goal: threadline
at least 100 times smaller and 10 times faster than ``SqliteSaver``, and no figure worse
than the other savers'.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import GrowthRun, human_bytes, load_langgraph, message_stream, ms, store_bytes, take

load_langgraph()  # this file's name shadows the package: see load_langgraph

from langchain_core.messages import BaseMessage  # noqa: E402
from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

from _langgraph import State, to_langchain  # noqa: E402
from threadline import ThreadStore  # noqa: E402
from threadline.integrations.langgraph import AsyncThreadlineSaver, ThreadlineSaver  # noqa: E402
from threadline.recorders.postgres import PostgresRecorder  # noqa: E402

CONFIG: Any = {"configurable": {"thread_id": "bench-langgraph"}}


@dataclass
class Result(GrowthRun):
    """One saver's run: the thread's growth, and its history read back."""

    name: str
    history_10: float
    history_all: float
    snapshots: int

    @classmethod
    def of(cls, name: str, db_bytes: int, figures: Figures) -> Result:
        seconds, latencies, history_10, history_all, snapshots = figures
        return cls(
            len(latencies), seconds, db_bytes, latencies, name, history_10, history_all, snapshots
        )


# seconds, step latencies, history of 10, history of all, snapshots in it
Figures = tuple[float, list[float], float, float, int]


def graph_on(saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(State)
    builder.add_node("agent", lambda state: {})  # the message arrives as the step's input
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=saver)


def progress(name: str, done: int, start: float) -> None:
    if done % 500 == 0:
        print(f"    {name}: {done:,} messages, {time.perf_counter() - start:.0f} s", flush=True)


def grow_sync(
    name: str, saver: BaseCheckpointSaver[Any], messages: list[BaseMessage], mode: str
) -> Figures:
    """Grow the thread one message per step, then read its history."""
    graph = graph_on(saver)
    clock = time.perf_counter
    latencies: list[float] = []
    start = clock()
    for message in messages:
        began = clock()
        if mode == "invoke":
            graph.invoke({"messages": [message]}, CONFIG)
        else:
            graph.update_state(CONFIG, {"messages": [message]}, as_node="agent")
        latencies.append(clock() - began)
        progress(name, len(latencies), start)
    seconds = clock() - start
    assert len(graph.get_state(CONFIG).values["messages"]) == len(messages)
    began = clock()
    newest = list(itertools.islice(graph.get_state_history(CONFIG), 10))
    history_10 = clock() - began
    began = clock()
    snapshots = sum(1 for _ in graph.get_state_history(CONFIG))
    history_all = clock() - began
    assert len(newest) == 10
    assert len(newest[0].values["messages"]) == len(messages)
    return seconds, latencies, history_10, history_all, snapshots


async def grow_async(
    name: str, saver: BaseCheckpointSaver[Any], messages: list[BaseMessage], mode: str
) -> Figures:
    """:func:`grow_sync` through the graph's async methods."""
    graph = graph_on(saver)
    clock = time.perf_counter
    latencies: list[float] = []
    start = clock()
    for message in messages:
        began = clock()
        if mode == "invoke":
            await graph.ainvoke({"messages": [message]}, CONFIG)
        else:
            await graph.aupdate_state(CONFIG, {"messages": [message]}, as_node="agent")
        latencies.append(clock() - began)
        progress(name, len(latencies), start)
    seconds = clock() - start
    assert len((await graph.aget_state(CONFIG)).values["messages"]) == len(messages)
    began = clock()
    newest = []
    async for snapshot in graph.aget_state_history(CONFIG, limit=10):
        newest.append(snapshot)
    history_10 = clock() - began
    began = clock()
    snapshots = 0
    async for _ in graph.aget_state_history(CONFIG):
        snapshots += 1
    history_all = clock() - began
    assert len(newest) == 10
    assert len(newest[0].values["messages"]) == len(messages)
    return seconds, latencies, history_10, history_all, snapshots


def run_sync(
    name: str,
    opened: Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]],
    size: Callable[[], int],
    messages: list[BaseMessage],
    mode: str,
) -> Result:
    with opened() as saver:
        figures = grow_sync(name, saver, messages, mode)
    return Result.of(name, size(), figures)


async def run_async(
    name: str,
    opened: Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]],
    size: Callable[[], Any],
    messages: list[BaseMessage],
    mode: str,
) -> Result:
    async with opened() as saver:
        figures = await grow_async(name, saver, messages, mode)
    db_bytes = size()
    if asyncio.iscoroutine(db_bytes):
        db_bytes = await db_bytes
    return Result.of(name, db_bytes, figures)


# -- PostgreSQL ------------------------------------------------------------------


def database_dsn(cluster_dsn: str, name: str) -> str:
    return cluster_dsn.rsplit("/", 1)[0] + "/" + name


async def create_database(cluster_dsn: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(cluster_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_dsn(cluster_dsn, name)


async def database_bytes(dsn: str) -> int:
    """Tables, their indexes and TOAST in the database's own schemas."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
        total = await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    return int(total)


@asynccontextmanager
async def threadline_on_postgres(dsn: str) -> AsyncIterator[AsyncThreadlineSaver]:
    recorder = await PostgresRecorder.connect(dsn, workspace="bench", max_size=4)
    async with ThreadStore(recorder) as store:
        yield AsyncThreadlineSaver(store)


async def postgres_pair(messages: list[BaseMessage], mode: str, cluster_dsn: str) -> list[Result]:
    tl_dsn = await create_database(cluster_dsn, "threadline")
    results = [
        await run_async(
            "AsyncThreadlineSaver (PostgreSQL)",
            lambda: threadline_on_postgres(tl_dsn),
            lambda: database_bytes(tl_dsn),
            messages,
            mode,
        )
    ]
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError:
        print("  PostgresSaver: skipped (pip install -e '.[bench]')")
        return results
    lg_dsn = await create_database(cluster_dsn, "langgraph")

    @contextmanager
    def opened() -> Iterator[Any]:
        with PostgresSaver.from_conn_string(lg_dsn) as saver:
            saver.setup()
            yield saver

    result = await asyncio.to_thread(run_sync, "PostgresSaver", opened, lambda: 0, messages, mode)
    result.db_bytes = await database_bytes(lg_dsn)
    results.append(result)
    return results


# -- report ----------------------------------------------------------------------


def report(results: list[Result]) -> None:
    base = results[0]
    print()
    header = (
        f"  {'saver':<36} {'db':>10} {'time':>9} {'last step':>11} {'last 20 p50':>11} "
        f"{'history 10':>11} {'history all':>12}"
    )
    print(header)
    for r in results:
        print(
            f"  {r.name:<36} {human_bytes(r.db_bytes):>10} {r.seconds:>8.2f}s "
            f"{ms(r.last_step):>11} {ms(r.last_steps_median):>11} {ms(r.history_10):>11} "
            f"{r.history_all:>11.2f}s"
        )
    print()
    print(f"  against {base.name} in the same run (how many times smaller / faster):")
    for r in results[1:]:
        print(
            f"  {r.name:<36} bytes {base.db_bytes / max(r.db_bytes, 1):>8.1f}x  "
            f"time {base.seconds / r.seconds:>6.1f}x  "
            f"last step {base.last_steps_median / r.last_steps_median:>6.1f}x  "
            f"history 10 {base.history_10 / r.history_10:>6.1f}x  "
            f"history all {base.history_all / r.history_all:>6.1f}x"
        )
    print(f"  snapshots in the history: {', '.join(f'{r.name} {r.snapshots:,}' for r in results)}")


async def main(count: int, mode: str, postgres: bool) -> None:
    messages = [to_langchain(m) for m in take(message_stream(seed=15), count)]
    print(f"LangGraph savers: one thread grown to {count:,} messages, mode {mode}")
    print(
        f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results: list[Result] = []

        def sqlite_saver() -> Any:
            return SqliteSaver.from_conn_string(str(root / "sqlite.db"))

        results.append(
            await asyncio.to_thread(
                run_sync,
                "SqliteSaver",
                sqlite_saver,
                lambda: store_bytes(root / "sqlite.db"),
                messages,
                mode,
            )
        )
        results.append(
            await asyncio.to_thread(
                run_sync,
                "ThreadlineSaver",
                lambda: ThreadlineSaver.from_path(root / "threadline.db"),
                lambda: store_bytes(root / "threadline.db"),
                messages,
                mode,
            )
        )
        results.append(
            await run_async(
                "AsyncSqliteSaver",
                lambda: AsyncSqliteSaver.from_conn_string(str(root / "aio.db")),
                lambda: store_bytes(root / "aio.db"),
                messages,
                mode,
            )
        )
        results.append(
            await run_async(
                "AsyncThreadlineSaver",
                lambda: AsyncThreadlineSaver.from_path(root / "threadline-aio.db"),
                lambda: store_bytes(root / "threadline-aio.db"),
                messages,
                mode,
            )
        )
        if postgres:
            from threadline.testing import PostgresUnavailable, TemporaryPostgres

            try:
                with TemporaryPostgres(durable=True) as cluster:
                    results.extend(await postgres_pair(messages, mode, cluster.dsn))
            except PostgresUnavailable as error:
                print(f"  PostgreSQL: skipped ({error})")
        report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2_000, help="messages (default 2,000)")
    parser.add_argument("--quick", action="store_true", help="200 messages")
    parser.add_argument(
        "--mode",
        choices=("update", "invoke"),
        default="update",
        help="one graph.update_state per message (default) or one graph.invoke",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite savers only")
    args = parser.parse_args()
    asyncio.run(main(200 if args.quick else args.messages, args.mode, not args.no_postgres))
