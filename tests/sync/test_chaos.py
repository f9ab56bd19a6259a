"""Seeded chaos: three replicas and a real server over loopback HTTP.

Each seed runs random appends, title changes and truncates on random
replicas, syncs them in random order, and drops random requests (never
sent) and responses (the server committed, the client never heard). Then
the faults stop and the replicas sync until quiet. Every replica and the
server must then hold the same log for every thread, versions 1..v without
a gap, and every acknowledged message exactly once, unless a truncate that
saw it removed it. Each seed prints its operations and the conflicts merged.

``THREADLINE_CHAOS_SEEDS`` runs more seeds (default 100).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from tests.sync.conftest import FakeClock, FaultyTransport, Server, replica
from threadline.deltas import Delta, MessageDelta, ThreadCreate, TitleDelta, TruncateDelta
from threadline.errors import RemoteUnavailable
from threadline.model import Message
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore

SEEDS = range(int(os.environ.get("THREADLINE_CHAOS_SEEDS", "100")))
OPERATIONS = 36
THREADS = ("T-a", "T-b")


@dataclass
class Ledger:
    """What the replicas were told: acknowledged messages, and the ones a
    truncate saw and removed."""

    acknowledged: list[str] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    operations: dict[str, int] = field(default_factory=dict)
    merged: int = 0

    def count(self, name: str) -> None:
        self.operations[name] = self.operations.get(name, 0) + 1


async def operate(
    rng: random.Random, step: int, replicas: list[TieredStore], ledger: dict[str, Ledger]
) -> str:
    """One random operation on a random replica; returns what it was."""
    index = rng.randrange(len(replicas))
    store = replicas[index]
    kind = rng.choices(["append", "title", "truncate", "sync"], weights=[50, 12, 10, 28])[0]
    if kind == "sync":
        assert store.sync is not None
        report = await store.sync.sync_once()
        for thread_id in report.merged:
            ledger[thread_id].merged += 1
        return f"r{index} sync"
    here: list[str] = []
    for thread_id in THREADS:
        try:  # a thread this replica lacks is read through from the server
            if await store.head(thread_id) is not None:
                here.append(thread_id)
        except RemoteUnavailable:
            pass
    if not here:
        return f"r{index} idle"
    thread_id = rng.choice(here)
    thread = await store.load(thread_id)
    assert thread is not None
    if kind == "append":
        message = Message(
            id=f"M-{step:03d}-r{index}",
            role=rng.choice(["user", "assistant"]),
            content=f"step {step} on replica {index}",
            timestamp=rng.randrange(1_000),
        )
        await store.append(thread_id, thread.v, [MessageDelta.of(message)])
        ledger[thread_id].acknowledged.append(message.id)
    elif kind == "title":
        await store.append(thread_id, thread.v, [TitleDelta(value=f"title {step}")])
    else:
        cut = rng.randint(0, len(thread.messages))
        await store.append(thread_id, thread.v, [TruncateDelta(from_index=cut)])
        ledger[thread_id].removed |= {m.id for m in thread.messages[cut:]}
    ledger[thread_id].count(kind)
    return f"r{index} {kind} {thread_id}"


@pytest.mark.parametrize("seed", SEEDS)
async def test_replicas_converge_despite_dropped_requests_and_responses(
    sync_server: Server, seed: int
) -> None:
    rng = random.Random(seed)
    token = await sync_server.token()
    clock = FakeClock()
    transports = [FaultyTransport(random.Random(seed * 10 + i)) for i in range(3)]
    replicas = [
        replica(
            sync_server.url,
            token,
            clock=clock,
            rng=random.Random(seed * 100 + i),
            transport=transport,
        )
        for i, transport in enumerate(transports)
    ]
    ledger = {thread_id: Ledger() for thread_id in THREADS}
    steps: list[str] = []
    try:
        for thread_id, store in zip(THREADS, replicas, strict=False):
            await store.append(thread_id, 0, [ThreadCreate(id=thread_id, created=0)])
        for transport in transports:
            transport.drop_request = rng.uniform(0.0, 0.3)
            transport.drop_response = rng.uniform(0.0, 0.3)
        for step in range(OPERATIONS):
            clock.advance(rng.uniform(0, 20))
            steps.append(await operate(rng, step, replicas, ledger))
        for transport in transports:
            transport.drop_request = transport.drop_response = 0.0
        await settle(replicas, clock, ledger)

        server = RemoteRecorder(sync_server.url, token)
        try:
            for thread_id, seen in ledger.items():
                expected = [(r.v, r.delta) for r in await server.deltas(thread_id)]
                context = f"seed {seed}, thread {thread_id}, steps {steps}"
                assert [v for v, _ in expected] == list(range(1, len(expected) + 1)), context
                for store in replicas:
                    log = [(r.v, r.delta) for r in await store.deltas(thread_id)]
                    assert log == expected, context
                    state = (await store.sync_states([thread_id]))[thread_id]
                    assert state.status in ("synced", "conflict-merged"), context
                threads = [await store.load(thread_id) for store in replicas]
                assert threads[0] is not None
                assert threads.count(threads[0]) == 3, context
                assert threads[0] == await server.load(thread_id), context
                ids = [m.id for m in threads[0].messages]
                wanted = set(seen.acknowledged) - seen.removed
                assert sorted(ids) == sorted(wanted), (  # each exactly once
                    f"{context}: messages {ids}, acknowledged {seen.acknowledged}, "
                    f"removed {sorted(seen.removed)}, log {[describe(d) for _, d in expected]}"
                )
        finally:
            await server.close()
    finally:
        for store in replicas:
            await store.close()
    dropped = sum(t.dropped_requests for t in transports)
    lost = sum(t.dropped_responses for t in transports)
    summary = ", ".join(
        f"{t}: {sum(s.operations.values())} ops {s.operations} merged {s.merged}"
        for t, s in ledger.items()
    )
    print(
        f"seed {seed}: {len(steps)} steps; dropped {dropped} requests and {lost} responses; "
        + summary
    )


def describe(delta: Delta) -> str:
    if isinstance(delta, MessageDelta):
        return delta.message.id
    if isinstance(delta, TruncateDelta):
        return f"truncate {delta.from_index}"
    return delta.type


async def settle(replicas: list[TieredStore], clock: FakeClock, ledger: dict[str, Ledger]) -> None:
    """Sync every replica in turn until two passes in a row move nothing."""
    quiet = 0
    for _ in range(30):
        moved = False
        for store in replicas:
            clock.advance(86_400)  # past every back-off
            assert store.sync is not None
            report = await store.sync.sync_once()
            assert not report.failed, report.failed
            assert report.pull_error is None
            for thread_id in report.merged:
                ledger[thread_id].merged += 1
            moved = moved or report.changed
        quiet = 0 if moved else quiet + 1
        if quiet == 2:
            return
    raise AssertionError("the replicas did not settle in 30 passes")
