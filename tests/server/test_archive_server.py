"""Archiving on the sync server, on PostgreSQL over real HTTP: the server moves a
workspace's threads to its own cold storage folder (one prefix per workspace),
keeps them listed, restores them when they are pushed to or read, and never
lets another workspace reach them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg import ServerThread, make_token, new_workspace
from tests.server.test_api import create_body, msg_delta, push_body
from threadline.deltas import ChildLinkDelta
from threadline.lifecycle.archive import decode_log, decompress
from threadline.recorders.postgres import PostgresRecorder
from threadline.sync.server import create_app


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cold")


@pytest.fixture(scope="module")
def server_url(postgres_dsn: str, cold: Path) -> Iterator[str]:
    """A sync server on the session's PostgreSQL whose cold storage is ``cold``."""
    server = ServerThread(create_app(db_url=postgres_dsn, archive_url=str(cold)))
    server.start()
    yield server.url
    server.stop()


@dataclass
class Workspace:
    name: str
    token: str
    http: httpx.AsyncClient

    async def post(self, url: str, body: Any = None, **params: Any) -> Any:
        response = await self.http.post(url, json=body, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, url: str, **params: Any) -> Any:
        response = await self.http.get(url, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Team:
    """Two workspaces of the server, A and B, and the server's cold storage."""

    a: Workspace
    b: Workspace
    url: str
    cold: Path

    def objects(self, workspace: Workspace) -> list[str]:
        """The archive objects in the cold storage folder of ``workspace``."""
        root = self.cold / workspace.name
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def team(server_url: str, postgres_dsn: str, cold: Path) -> AsyncIterator[Team]:
    names = new_workspace(), new_workspace()
    tokens = [await make_token(postgres_dsn, name) for name in names]
    clients = [
        httpx.AsyncClient(base_url=server_url, headers={"Authorization": f"Bearer {token}"})
        for token in tokens
    ]
    async with clients[0], clients[1]:
        yield Team(
            Workspace(names[0], tokens[0], clients[0]),
            Workspace(names[1], tokens[1], clients[1]),
            server_url,
            cold,
        )


async def create(ws: Workspace, thread_id: str, messages: int = 0, **extra: Any) -> Any:
    """A thread created now, or long ago with ``created=1`` (its messages date
    from 1970 too)."""
    response = await ws.http.post("/v1/threads", json={**create_body(thread_id, messages), **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_archived_thread_is_in_cold_storage_and_still_listed_with_its_metadata(
    team: Team,
) -> None:
    a = team.a
    await create(a, "T-1", messages=3)
    await create(a, "T-2")
    active = await a.get("/v1/threads/T-1")
    log = await a.get("/v1/threads/T-1/deltas")
    cursor = (await a.get("/v1/changes"))["cursor"]

    archived = await a.post("/v1/archive", {"thread_ids": ["T-1"]})

    assert archived == {"thread_ids": ["T-1"], "dry_run": False}
    kept = await a.get("/v1/threads/T-1")
    assert (kept["archived"], kept["messages"], kept["has_more"]) == (True, [], False)
    assert kept["head"]["archived_at"] > 0
    assert {k: v for k, v in kept["head"].items() if k != "archived_at"} == active["head"]
    listed = (await a.get("/v1/threads"))["threads"]
    assert [(t["id"], t["archived"]) for t in listed] == [("T-2", False), ("T-1", True)]
    assert listed[1] == {**kept["head"], "archived": True}
    assert [t["id"] for t in (await a.get("/v1/threads", archived="false"))["threads"]] == ["T-2"]
    assert (await a.get("/v1/changes", since=cursor))["changes"] == []  # not a deletion
    [key] = team.objects(a)
    assert key.startswith("threads/T-1/")
    assert key.endswith(".json.zst")
    head, records = decode_log(decompress((team.cold / a.name / key).read_bytes()))
    assert head.model_dump(mode="json") == active["head"]
    assert [
        {"v": r.v, "at": r.at, "delta": r.delta.model_dump(mode="json")} for r in records
    ] == log["deltas"]


async def test_older_than_days_archives_the_inactive_threads_and_a_dry_run_moves_none(
    team: Team,
) -> None:
    a = team.a
    await create(a, "T-old", messages=2, created=1)
    await create(a, "T-new")

    planned = await a.post("/v1/archive", {"older_than_days": 30, "dry_run": True})
    assert planned == {"thread_ids": ["T-old"], "dry_run": True}
    assert (await a.get("/v1/threads/T-old"))["archived"] is False
    assert team.objects(a) == []

    assert (await a.post("/v1/archive", {"older_than_days": 30}))["thread_ids"] == ["T-old"]
    assert (await a.get("/v1/threads/T-old"))["archived"] is True
    assert (await a.get("/v1/threads/T-new"))["archived"] is False
    assert (await a.post("/v1/archive", {"older_than_days": 30}))["thread_ids"] == []


async def test_a_push_to_an_archived_thread_restores_it_then_applies(team: Team) -> None:
    a = team.a
    await create(a, "T-1", messages=2)
    before = await a.get("/v1/threads/T-1/deltas")
    await a.post("/v1/archive", {"thread_ids": ["T-1"]})

    pushed = await a.post("/v1/threads/T-1/deltas", push_body(3, msg_delta(10)))

    assert (pushed["version"], pushed["replayed"]) == (4, False)
    thread = await a.get("/v1/threads/T-1")
    assert thread["archived"] is False
    assert [m["id"] for m in thread["messages"]] == ["M-0", "M-1", "M-10"]
    assert (await a.get("/v1/threads/T-1/deltas", limit=3))["deltas"] == before["deltas"]
    assert team.objects(a) == []  # the object goes once the thread is back


async def test_batches_restore_the_archived_threads_they_push_to(team: Team) -> None:
    a = team.a
    for thread_id in ("T-1", "T-2", "T-3"):
        await create(a, thread_id, messages=1)
    await a.post("/v1/archive", {"thread_ids": ["T-1", "T-2", "T-3"]})

    each = await a.post(
        "/v1/sync/batch",
        {
            "pushes": [
                {"thread_id": "T-1", **push_body(2, msg_delta(5))},
                {"thread_id": "T-2", **push_body(1, msg_delta(6))},  # stale
                {"thread_id": "T-9", **push_body(1, msg_delta(7))},  # unknown
            ]
        },
    )
    assert [r["status"] for r in each["results"]] == [200, 409, 404]
    assert each["results"][0]["accepted"]["version"] == 3
    assert [d["v"] for d in each["results"][1]["conflict"]["missing"]] == [2]
    atomic = await a.post(
        "/v1/sync/batch",
        {"pushes": [{"thread_id": "T-3", **push_body(2, msg_delta(8))}], "atomic": True},
    )
    assert [r["status"] for r in atomic["results"]] == [200]
    listed = (await a.get("/v1/threads"))["threads"]
    assert sorted((t["id"], t["archived"], t["v"]) for t in listed) == [
        ("T-1", False, 3),
        ("T-2", False, 2),
        ("T-3", False, 3),
    ]


async def test_reading_messages_or_deltas_of_an_archived_thread_never_restores_it(
    team: Team,
) -> None:
    """Issue 16: a GET changes nothing (the viewer's cookie authorises GETs, which
    another site can make a browser send); only POST .../restore restores."""
    a = team.a
    await create(a, "T-1", messages=3)
    await create(a, "T-2", messages=2)
    messages = await a.get("/v1/threads/T-1/messages", limit=2)
    deltas = await a.get("/v1/threads/T-2/deltas")
    await a.post("/v1/archive", {"thread_ids": ["T-1", "T-2"]})

    for url in ("/v1/threads/T-1/messages", "/v1/threads/T-2/deltas"):
        refused = await a.http.get(url)
        assert (refused.status_code, refused.json()["code"]) == (409, "thread_archived")
    assert [t["archived"] for t in (await a.get("/v1/threads"))["threads"]] == [True, True]
    await a.post("/v1/threads/T-1/restore")
    await a.post("/v1/threads/T-2/restore")
    assert await a.get("/v1/threads/T-1/messages", limit=2) == messages
    assert await a.get("/v1/threads/T-2/deltas") == deltas
    assert [t["archived"] for t in (await a.get("/v1/threads"))["threads"]] == [False, False]


async def test_the_restore_route_brings_a_thread_back_with_its_subagents(team: Team) -> None:
    a = team.a
    parent = await create(a, "T-p", messages=1)
    await create(a, "T-c", parent_thread_id="T-p")
    await a.post(
        "/v1/threads/T-p/deltas", push_body(parent["version"], ChildLinkDelta(thread_id="T-c"))
    )
    assert (await a.post("/v1/archive", {"thread_ids": ["T-p"]}))["thread_ids"] == ["T-p", "T-c"]
    assert len(team.objects(a)) == 2

    assert await a.post("/v1/threads/T-p/restore") == {"thread_ids": ["T-p", "T-c"]}
    assert await a.post("/v1/threads/T-p/restore") == {"thread_ids": []}
    assert team.objects(a) == []

    await a.post("/v1/archive", {"thread_ids": ["T-p"]})
    alone = await a.post("/v1/threads/T-p/restore", with_subagents="false")
    assert alone == {"thread_ids": ["T-p"]}
    assert (await a.get("/v1/threads/T-c"))["archived"] is True
    unknown = await a.http.post("/v1/threads/T-none/restore")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


async def test_an_unknown_id_archives_nothing_and_a_request_names_one_selection(
    team: Team,
) -> None:
    a = team.a
    await create(a, "T-1")
    unknown = await a.http.post("/v1/archive", json={"thread_ids": ["T-1", "T-none"]})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert "T-none" in unknown.json()["message"]
    assert (await a.get("/v1/threads/T-1"))["archived"] is False
    both = await a.http.post("/v1/archive", json={"thread_ids": ["T-1"], "older_than_days": 1})
    neither = await a.http.post("/v1/archive", json={"dry_run": True})
    assert (both.status_code, neither.status_code) == (422, 422)


async def test_a_thread_whose_writer_lease_is_held_elsewhere_stays_active(
    team: Team, postgres_dsn: str
) -> None:
    a = team.a
    await create(a, "T-1")
    elsewhere = await PostgresRecorder.connect(postgres_dsn, workspace=a.name, max_size=1)
    lease = elsewhere.acquire_lease("T-1")  # another server process archiving it, say
    try:
        busy = await a.http.post("/v1/archive", json={"thread_ids": ["T-1"]})
        assert (busy.status_code, busy.json()["code"]) == (409, "thread_busy")
        assert await a.post("/v1/archive", {"older_than_days": 0}) == {
            "thread_ids": [],
            "dry_run": False,
        }
        assert (await a.get("/v1/threads/T-1"))["archived"] is False
    finally:
        lease.release()
        await elsewhere.close()
    assert (await a.post("/v1/archive", {"thread_ids": ["T-1"]}))["thread_ids"] == ["T-1"]


async def test_another_workspace_can_neither_archive_nor_restore_nor_revive_a_thread(
    team: Team,
) -> None:
    a, b = team.a, team.b
    await create(a, "T-1", messages=3)
    await create(a, "T-2", messages=1)
    await a.post("/v1/archive", {"thread_ids": ["T-1"]})
    kept = await a.get("/v1/threads/T-1")

    for method, url, body in (
        ("POST", "/v1/archive", {"thread_ids": ["T-2"]}),
        ("POST", "/v1/threads/T-1/restore", None),
        ("POST", "/v1/threads/T-1/deltas", push_body(4, msg_delta(9))),
        ("GET", "/v1/threads/T-1", None),
        ("GET", "/v1/threads/T-1/messages", None),
        ("GET", "/v1/threads/T-1/deltas", None),
    ):
        response = await b.http.request(method, url, json=body)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), url
    assert await b.post("/v1/archive", {"older_than_days": 0}) == {
        "thread_ids": [],
        "dry_run": False,
    }
    assert (await b.get("/v1/threads"))["threads"] == []

    assert await a.get("/v1/threads/T-1") == kept
    assert (await a.get("/v1/threads/T-2"))["archived"] is False
    assert len(team.objects(a)) == 1
    assert not (team.cold / b.name / "threads").exists()


def threadline(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "THREADLINE_HOME": str(home), **env},
        check=False,
    )


async def test_the_archive_and_restore_commands_act_on_a_server(team: Team, tmp_path: Path) -> None:
    a = team.a
    await create(a, "T-1", messages=2, created=1)
    await create(a, "T-2")
    remote = ("--remote", team.url, "--token", a.token)

    planned = threadline(
        "archive", "--older-than", "30d", "--dry-run", "--json", *remote, home=tmp_path
    )
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout) == {
        "dry_run": True,
        "location": team.url,
        "thread_ids": ["T-1"],
    }
    moved = threadline("archive", "T-2", *remote, home=tmp_path)
    assert (moved.returncode, moved.stdout) == (0, "T-2\n"), moved.stderr
    assert f"Archived 1 thread(s) to {team.url}." in moved.stderr
    assert (await a.get("/v1/threads/T-2"))["archived"] is True

    by_env = {"THREADLINE_TOKEN": a.token}
    restored = threadline("restore", "T-2", "--json", "--remote", team.url, home=tmp_path, **by_env)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout) == {"thread_ids": ["T-2"]}
    assert (await a.get("/v1/threads/T-2"))["archived"] is False

    unknown = threadline("restore", "T-none", *remote, home=tmp_path)
    assert unknown.returncode == 1
    assert "T-none not found" in unknown.stderr
    tokenless = threadline("archive", "T-1", "--remote", team.url, home=tmp_path)
    assert tokenless.returncode == 2
    assert "--remote needs --token" in tokenless.stderr
    assert not (tmp_path / "threads.db").exists()  # nothing local was opened

    # $THREADLINE_REMOTE (threadline sync's setting) leaves the command local.
    local = threadline("archive", "T-1", home=tmp_path, THREADLINE_REMOTE=team.url, **by_env)
    assert local.returncode == 1
    assert "T-1 not found" in local.stderr
    assert (await a.get("/v1/threads/T-1"))["archived"] is False


async def test_a_server_without_cold_storage_says_how_to_give_it_one(
    live_server: str, postgres_dsn: str
) -> None:
    token = await make_token(postgres_dsn, new_workspace())
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server, headers=headers) as http:
        refused = await http.post("/v1/archive", json={"older_than_days": 30})
        assert (refused.status_code, refused.json()["code"]) == (503, "archive_unavailable")
        assert "--archive-url" in refused.json()["message"]
        unknown = await http.post("/v1/threads/T-1/deltas", json=push_body(1, msg_delta(1)))
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


async def test_an_archived_relative_is_reported_archived_not_deleted(team: Team) -> None:
    """Issue 14 item 8: on PostgreSQL and over HTTP, as on SQLite."""
    from threadline.store import ThreadStore
    from threadline.sync.client import RemoteRecorder

    a = team.a
    parent = await create(a, "T-p", messages=1)
    for child, v in (("T-kept", parent["version"]), ("T-gone", parent["version"] + 1)):
        await create(a, child, parent_thread_id="T-p")
        await a.post("/v1/threads/T-p/deltas", push_body(v, ChildLinkDelta(thread_id=child)))
    await a.post("/v1/archive", {"thread_ids": ["T-kept"]})
    assert (await a.http.delete("/v1/threads/T-gone")).status_code == 204
    graph = await a.get("/v1/threads/T-p/subtree")
    assert graph["archived"] == ["T-kept"]
    assert sorted(graph["heads"]) == ["T-p"]
    store = ThreadStore(RemoteRecorder(team.url, a.token))
    try:
        related = await store.get_related_threads("T-p")
        assert [(m.id, m.archived) for m in related.missing] == [
            ("T-kept", True),
            ("T-gone", False),
        ]
        tree = await store.get_thread_tree("T-p")
        assert [(n.id, n.archived) for n in tree.nodes] == [
            ("T-p", False),
            ("T-kept", True),
            ("T-gone", False),
        ]
    finally:
        await store.close()
