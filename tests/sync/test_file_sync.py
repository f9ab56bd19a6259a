"""File changes travel with their thread: pushed with the contents the server
lacks, pulled by another replica, readable there (issue 14 item 4)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.contract.filelog_suite import ONE, THREE, TWO, change, state
from tests.sync.conftest import FakeClock, Server, replica
from threadline.deltas import MessageDelta, ThreadCreate
from threadline.files.contents import decode_chain
from threadline.files.log import UNKNOWN, NewFileChange
from threadline.model import Message
from threadline.sync.client import RemoteRecorder
from threadline.tiered import TieredStore


class Counting(httpx.AsyncBaseTransport):
    """Loopback HTTP that keeps the method and path of every request."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[str] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        self.bodies.append(request.read())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Pair:
    """Two replicas of one workspace (A's requests counted) and the server's view."""

    a: TieredStore
    b: TieredStore
    server: RemoteRecorder
    transport: Counting


@pytest.fixture
async def pair(sync_server: Server) -> AsyncIterator[Pair]:
    token = await sync_server.token()
    transport = Counting()
    a = replica(
        sync_server.url, token, clock=FakeClock(), rng=random.Random(1), transport=transport
    )
    b = replica(sync_server.url, token, clock=FakeClock(), rng=random.Random(2))
    server = RemoteRecorder(sync_server.url, token)
    try:
        yield Pair(a, b, server, transport)
    finally:
        await server.close()
        await a.close()
        await b.close()


async def test_file_changes_travel_with_their_thread_and_only_missing_contents_are_sent(
    pair: Pair,
) -> None:
    a, b, server, transport = pair.a, pair.b, pair.server, pair.transport
    assert a.sync is not None
    assert b.sync is not None
    await a.append("T", 0, [ThreadCreate(id="T", created=0)])
    await a.record_file_changes(
        "T",
        [change("op-1", "a.txt", None, ONE), change("op-1", "b.txt", None, THREE)],
        [
            ONE,
            THREE,
        ],
    )
    report = await a.sync.sync_once()
    assert (report.files_pushed, report.failed) == (2, {})
    assert [c.seq for c in (await server.read_file_log("T")).changes] == [1, 2]
    # A second change: only its new content (a delta of ONE) travels.
    await a.append("T", 1, [MessageDelta.of(Message(id="M-1", role="user", content="go"))])
    await a.record_file_changes("T", [change("op-2", "a.txt", ONE, TWO)], [TWO])
    transport.bodies.clear()
    transport.requests.clear()
    report = await a.sync.sync_once()
    assert report.files_pushed == 1
    pushed = transport.bodies[transport.requests.index("POST /v1/threads/T/files")]
    sent = orjson.loads(pushed)
    assert [c["seq"] for c in sent["changes"]] == [3]
    # ONE (its base, the file before) is on the server already: only TWO is sent.
    assert [(c["hash"], c["base"]) for c in sent["contents"]] == [(TWO.hash, ONE.hash)]
    assert (await a.sync.sync_once()).files_pushed == 0

    report = await b.sync.sync_once()
    assert (report.files_pulled, report.failed) == (3, {})
    assert await b.file_changes("T") == await a.file_changes("T")
    chain = await b.content_chain(TWO.hash)
    assert decode_chain(chain, {}) == b"one\n" * 99 + b"two\n"
    assert (await b.sync_states(["T"]))["T"].files_synced == 3


async def test_changes_with_contents_not_recorded_travel_without_them(pair: Pair) -> None:
    """An import's edits of files its transcript never showed are pushed with
    their sides marked unknown and only the contents that are known; the
    server keeps them as they are and another replica pulls the same log."""
    a, b, server, transport = pair.a, pair.b, pair.server, pair.transport
    assert a.sync is not None
    assert b.sync is not None
    await a.append("T", 0, [ThreadCreate(id="T", created=0)])
    await a.record_file_changes(
        "T",
        [
            NewFileChange("t-over", "a.txt", UNKNOWN, state(ONE)),
            NewFileChange("t-blind", "b.txt", UNKNOWN, UNKNOWN),
            NewFileChange("c-1", "c.txt", UNKNOWN, None),
        ],
        [ONE],
    )
    report = await a.sync.sync_once()
    assert (report.files_pushed, report.failed) == (3, {})
    pushed = orjson.loads(transport.bodies[transport.requests.index("POST /v1/threads/T/files")])
    assert [(c["before"], c["after"] is None) for c in pushed["changes"]] == [
        ({"unknown": True}, False),
        ({"unknown": True}, False),
        ({"unknown": True}, True),
    ]
    assert [c["hash"] for c in pushed["contents"]] == [ONE.hash]
    assert (await server.read_file_log("T")).changes == await a.file_changes("T")

    report = await b.sync.sync_once()
    assert (report.files_pulled, report.failed) == (3, {})
    pulled = await b.file_changes("T")
    assert pulled == await a.file_changes("T")
    assert [(c.before_unknown, c.after_unknown) for c in pulled] == [
        (True, False),
        (True, True),
        (True, False),
    ]
    assert decode_chain(await b.content_chain(ONE.hash), {}) == b"one\n" * 100


async def test_a_content_query_names_content_hashes_only(sync_server: Server) -> None:
    """Only a content hash can be asked about: any other string (which no backend
    could hold, e.g. one with a NUL) is refused as invalid, not looked up."""
    token = await sync_server.token()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=sync_server.url, headers=headers) as http:
        refused = await http.post("/v1/contents/missing", json={"hashes": ["a\u0000b"]})
        assert refused.status_code == 422
        asked = await http.post("/v1/contents/missing", json={"hashes": [ONE.hash]})
        assert asked.json() == {"missing": [ONE.hash]}
