"""The server side of archiving: a workspace archived to the server's object store
still answers ``GET /v1/threads/{id}`` with its metadata and ``archived: true``."""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import Api
from tests.server.test_api import create_body
from threadline.archive import ColdStorage, Lifecycle


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
