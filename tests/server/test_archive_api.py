"""The server side of archiving: a workspace archived to the server's object store
still answers ``GET /v1/threads/{id}`` with its metadata and ``archived: true``."""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import Api
from tests.server.test_api import create_body, push_body
from threadline.deltas import ChildLinkDelta
from threadline.lifecycle.archive import ColdStorage, Lifecycle


async def test_an_archived_thread_answers_with_its_metadata_and_archived_true(
    api: Api, tmp_path: Path
) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1", messages=3))).status_code == 201
    active = (await api.a.get("/v1/threads/T-1")).json()
    assert active["archived"] is False
    lifecycle = Lifecycle(
        await api.storage.recorder("team-a"), ColdStorage.local(tmp_path / "cold")
    )

    assert await lifecycle.archive("T-1") == ["T-1"]

    response = await api.a.get("/v1/threads/T-1")
    assert response.status_code == 200
    archived = response.json()
    assert (archived["archived"], archived["messages"], archived["has_more"]) == (True, [], False)
    head = archived["head"]
    assert head["archived_at"] > 0
    assert {k: v for k, v in head.items() if k != "archived_at"} == active["head"]
    assert (await api.b.get("/v1/threads/T-1")).status_code == 404  # other workspace

    assert await lifecycle.restore("T-1") == ["T-1"]
    assert (await api.a.get("/v1/threads/T-1")).json() == active


async def test_the_embedded_server_archives_to_a_folder_beside_its_files(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1", messages=2))).status_code == 201

    archived = await api.a.post("/v1/archive", json={"thread_ids": ["T-1"]})

    assert archived.json() == {"thread_ids": ["T-1"], "dry_run": False}
    folder = api.storage.directory / "archive" / "team-a" / "threads" / "T-1"
    assert [p.suffixes for p in folder.iterdir()] == [[".json", ".zst"]]
    restored = await api.a.post("/v1/threads/T-1/restore")
    assert restored.json() == {"thread_ids": ["T-1"]}
    assert list(folder.iterdir()) == []


async def test_a_missing_archive_object_is_a_clear_error_that_loses_nothing(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1", messages=2))).status_code == 201
    await api.a.post("/v1/archive", json={"thread_ids": ["T-1"]})
    kept = (await api.a.get("/v1/threads/T-1")).json()
    [stored] = (api.storage.directory / "archive" / "team-a").rglob("*.json.zst")
    stored.unlink()

    for response in (await api.a.post("/v1/threads/T-1/restore"),):
        assert response.status_code == 500
        error = response.json()
        assert error["code"] == "archive_missing"
        assert "T-1" in error["message"]
        assert stored.name in error["message"]
    assert (await api.a.get("/v1/threads/T-1")).json() == kept


async def test_the_subagents_of_a_thread_are_listed_archived_or_not(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-p"))).status_code == 201
    for version, child in enumerate(("T-c1", "T-c2"), start=1):
        body = {**create_body(child), "parent_thread_id": "T-p"}
        assert (await api.a.post("/v1/threads", json=body)).status_code == 201
        link = push_body(version, ChildLinkDelta(thread_id=child))
        assert (await api.a.post("/v1/threads/T-p/deltas", json=link)).status_code == 200
    await api.a.post("/v1/archive", json={"thread_ids": ["T-c1"]})

    listed = (await api.a.get("/v1/threads", params={"parent": "T-p"})).json()["threads"]
    assert sorted((t["id"], t["archived"]) for t in listed) == [
        ("T-c1", True),
        ("T-c2", False),
    ]
    active = await api.a.get("/v1/threads", params={"parent": "T-p", "archived": "false"})
    assert [t["id"] for t in active.json()["threads"]] == ["T-c2"]
