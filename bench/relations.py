"""The two benchmarks of issue 3: batch reads and the tree query.

Run: ``.venv/bin/python bench/relations.py [--quick]``

1. ``store.batch_read`` of 1,000 threads (one query) vs 1,000 ``get_thread``
   calls, one after the other; with threads of 1 message, where the round
   trips dominate, and of 10, where turning message JSON into objects (the
   same work on both sides) takes most of the time.
2. ``store.get_thread_tree`` of a 1,000-node sub-agent tree (one recursive
   query) vs walking the same tree with one head read per node.

Both run on a SQLite file with the default durability (WAL, ``FULL``); the
subject and its baseline alternate in rounds, so a noisy neighbour slows both,
and the figures are medians over the rounds. Each also prints how many SQL
statements one run issued (counted with ``sqlite3``'s trace callback).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Outcome, heading, line, message_stream, ms, summary, take
from threadline import ThreadStore
from threadline.deltas import ChildLinkDelta, Delta, MessageDelta, ThreadCreate
from threadline.recorders.base import Append
from threadline.recorders.sqlite import SqliteRecorder

THREADS = 1_000
NODES = 1_000


class Counter:
    """Counts the SQL statements a recorder runs (from any of its threads)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, statement: str) -> None:
        with self._lock:
            self.count += 1


async def statements_of(recorder: SqliteRecorder, work: Callable[[], Awaitable[object]]) -> int:
    counter = Counter()
    recorder.set_statement_trace(counter)
    try:
        await work()
    finally:
        recorder.set_statement_trace(None)
    return counter.count


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def alternate(
    rounds: int, subject: Callable[[], Awaitable[object]], baseline: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """Median seconds of ``subject`` and ``baseline``, taking turns each round.

    The data made beforehand is frozen out of the garbage collector's reach
    (``gc.freeze``), so that neither side pays for collecting the setup's
    objects; each still pays for collecting its own.
    """
    mine: list[float] = []
    theirs: list[float] = []
    await subject()  # warm the connections and caches of both
    await baseline()
    gc.collect()
    gc.freeze()
    for _ in range(rounds):
        mine.append(await timed(subject))
        theirs.append(await timed(baseline))
    gc.unfreeze()
    return statistics.median(mine), statistics.median(theirs)


# -- 1. batch_read -------------------------------------------------------------------


async def make_threads(recorder: SqliteRecorder, count: int, messages: int) -> list[str]:
    stream = message_stream(seed=3)
    ids = [f"T-bench-{n:05d}" for n in range(count)]
    appends: list[Append] = []
    for thread_id in ids:
        log: list[Delta] = [ThreadCreate(id=thread_id, title=thread_id)]
        log += [MessageDelta.of(m) for m in take(stream, messages)]
        appends.append((thread_id, 0, log))
    for result in await recorder.append_each(appends):
        if isinstance(result, Exception):
            raise result
    return ids


async def bench_batch_read(store: ThreadStore, rounds: int, messages: int) -> Outcome:
    recorder = store.recorder
    assert isinstance(recorder, SqliteRecorder)
    heading(1, f"batch_read of {THREADS:,} threads of {messages} message(s) vs single reads")
    ids = await make_threads(recorder, THREADS, messages)

    async def batch() -> None:
        found = await store.batch_read(ids)
        assert len(found) == THREADS

    async def singles() -> None:
        for thread_id in ids:
            await store.get_thread(thread_id)

    batched, single = await alternate(rounds, batch, singles)
    line("rounds", str(rounds))
    line("batch_read (median)", ms(batched))
    line("single reads (median)", ms(single))
    line("SQL statements: batch_read", str(await statements_of(recorder, batch)))
    line("SQL statements: single reads", f"{await statements_of(recorder, singles):,}")
    line("single reads / batch_read", f"{single / batched:.1f}x")
    name = f"batch_read 1,000 x {messages} msg"
    return Outcome(1, name, ms(batched), ms(single) + " (singles)", single / batched, "-", None)


# -- 2. the tree query ---------------------------------------------------------------


async def make_tree(recorder: SqliteRecorder, nodes: int) -> str:
    """A random sub-agent tree (each thread spawned by a random earlier one),
    linked on both ends as ``spawn_subagent_thread`` links them."""
    rng = random.Random(5)
    ids = [f"T-node-{n:05d}" for n in range(nodes)]
    parents = [rng.randrange(n) for n in range(1, nodes)]
    creates: list[Append] = [(ids[0], 0, [ThreadCreate(id=ids[0], title="root")])]
    children: dict[str, list[str]] = {}
    for n, parent in enumerate(parents, start=1):
        creates.append(
            (ids[n], 0, [ThreadCreate(id=ids[n], title=f"Task {n}", parent_thread_id=ids[parent])])
        )
        children.setdefault(ids[parent], []).append(ids[n])
    links: list[Append] = [
        (parent, 1, [ChildLinkDelta(thread_id=child) for child in kids])
        for parent, kids in children.items()
    ]
    for result in await recorder.append_each(creates) + await recorder.append_each(links):
        if isinstance(result, Exception):
            raise result
    return ids[0]


async def walk_per_node(store: ThreadStore, root_id: str) -> int:
    """The baseline: read each node's head, then its children's, one query each."""
    seen = 0
    frontier = [root_id]
    while frontier:
        following: list[str] = []
        for thread_id in frontier:
            head = await store.recorder.head(thread_id)
            if head is None:
                continue
            seen += 1
            following.extend(head.child_thread_ids)
            following.extend(head.summary_thread_ids)
        frontier = following
    return seen


async def bench_tree(store: ThreadStore, rounds: int) -> Outcome:
    recorder = store.recorder
    assert isinstance(recorder, SqliteRecorder)
    heading(2, f"tree of a {NODES:,}-node sub-agent tree: one query vs one per node")
    root_id = await make_tree(recorder, NODES)
    tree = await store.get_thread_tree(root_id)
    assert len(tree.nodes) == NODES
    assert await walk_per_node(store, root_id) == NODES

    async def one_query() -> None:
        await store.get_thread_tree(root_id)

    async def per_node() -> None:
        await walk_per_node(store, root_id)

    whole, naive = await alternate(rounds, one_query, per_node)
    line("nodes, depth, rounds", f"{NODES:,}, {max(n.depth for n in tree.nodes)}, {rounds}")
    line("get_thread_tree (median)", ms(whole))
    line("one head read per node (median)", ms(naive))
    line("SQL statements: get_thread_tree", str(await statements_of(recorder, one_query)))
    line("SQL statements: per node", f"{await statements_of(recorder, per_node):,}")
    line("per node / get_thread_tree", f"{naive / whole:.1f}x")
    return Outcome(
        2, "tree of 1,000 nodes", ms(whole), ms(naive) + " (per node)", naive / whole, "-", None
    )


async def run(rounds: int, sizes: tuple[int, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as folder:
        outcomes = []
        for messages in sizes:  # parsing messages is the same work either way
            async with ThreadStore(SqliteRecorder(Path(folder) / f"reads{messages}.db")) as store:
                outcomes.append(await bench_batch_read(store, rounds, messages))
        async with ThreadStore(SqliteRecorder(Path(folder) / "tree.db")) as store:
            outcomes.append(await bench_tree(store, rounds))
        summary(outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter threads")
    args = parser.parse_args()
    rounds, sizes = (3, (1, 4)) if args.quick else (7, (1, 10))
    print(f"threadline relations benchmarks ({'quick' if args.quick else 'full'})", flush=True)
    asyncio.run(run(rounds, sizes))


if __name__ == "__main__":
    main()
