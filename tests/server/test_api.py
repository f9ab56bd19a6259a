"""The HTTP API, route by route, in-process on embedded SQLite: status codes, JSON
shapes, 409 with the missing deltas, idempotent pushes, batches, limits, auth,
tenancy and the live stream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.server.conftest import Api
from threadline.deltas import MessageDelta, ThreadCreate, TitleDelta
from threadline.model import Message


def message(n: int, size: int = 10) -> dict[str, Any]:
    return {"id": f"M-{n}", "role": "user", "content": "x" * size, "timestamp": 1000 + n}


def create_body(thread_id: str, messages: int = 0) -> dict[str, Any]:
    return {"id": thread_id, "title": "t", "messages": [message(i) for i in range(messages)]}


def push_body(base: int, *deltas: Any) -> dict[str, Any]:
    return {"base_version": base, "deltas": [orjson.loads(d.model_dump_json()) for d in deltas]}


def msg_delta(n: int) -> MessageDelta:
    return MessageDelta.of(Message.model_validate(message(n)))


async def test_healthz_needs_no_token(api: Api) -> None:
    response = await api.anonymous.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_every_v1_route_needs_a_valid_token(api: Api) -> None:
    for method, url in (
        ("GET", "/v1/threads"),
        ("POST", "/v1/threads"),
        ("GET", "/v1/threads/T-1"),
        ("GET", "/v1/changes"),
        ("GET", "/v1/changes/stream"),
        ("POST", "/v1/sync/batch"),
    ):
        response = await api.anonymous.request(method, url, json={})
        assert response.status_code == 401, (method, url)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    forged = await api.anonymous.get(
        "/v1/threads", headers={"Authorization": "Bearer tl_000000000000_" + "A" * 43}
    )
    assert forged.status_code == 401


async def test_create_read_page_and_delete(api: Api) -> None:
    created = await api.a.post("/v1/threads", json=create_body("T-1", messages=5))
    assert created.status_code == 201
    assert (created.json()["version"], created.json()["head"]["message_count"]) == (6, 5)
    again = await api.a.post("/v1/threads", json=create_body("T-1"))
    assert (again.status_code, again.json()["code"]) == (409, "thread_exists")
    newest = (await api.a.get("/v1/threads/T-1", params={"limit": 2})).json()
    assert [m["id"] for m in newest["messages"]] == ["M-3", "M-4"]
    assert (newest["first_index"], newest["has_more"]) == (3, True)
    older = (await api.a.get("/v1/threads/T-1/messages", params={"limit": 2, "before": 3})).json()
    assert [m["id"] for m in older["messages"]] == ["M-1", "M-2"]
    listed = (await api.a.get("/v1/threads")).json()
    assert [t["id"] for t in listed["threads"]] == ["T-1"]
    assert (await api.a.delete("/v1/threads/T-1")).status_code == 204
    assert (await api.a.get("/v1/threads/T-1")).status_code == 404
    assert (await api.a.delete("/v1/threads/T-1")).status_code == 404


async def test_stale_push_gets_409_with_the_version_and_missing_deltas(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1", messages=2))
    ours = await api.a.post("/v1/threads/T-1/deltas", json=push_body(3, TitleDelta(value="a")))
    assert (ours.status_code, ours.json()["version"]) == (200, 4)
    theirs = await api.a.post("/v1/threads/T-1/deltas", json=push_body(2, TitleDelta(value="b")))
    assert theirs.status_code == 409
    body = theirs.json()
    assert (body["code"], body["version"]) == ("version_conflict", 4)
    assert [(d["v"], d["delta"]["type"]) for d in body["missing"]] == [
        (3, "user:message"),
        (4, "title"),
    ]
    log = (await api.a.get("/v1/threads/T-1/deltas", params={"since": 2})).json()
    assert [d["v"] for d in log["deltas"]] == [3, 4]
    assert (log["version"], log["has_more"]) == (4, False)


async def test_repeated_push_is_accepted_once(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1"))
    body = push_body(1, msg_delta(7), TitleDelta(value="x"))
    first = await api.a.post("/v1/threads/T-1/deltas", json=body)
    retry = await api.a.post("/v1/threads/T-1/deltas", json=body)
    assert (first.status_code, first.json()["replayed"]) == (200, False)
    assert (retry.status_code, retry.json()["replayed"], retry.json()["version"]) == (200, True, 3)
    log = (await api.a.get("/v1/threads/T-1/deltas")).json()
    assert [d["v"] for d in log["deltas"]] == [1, 2, 3]
    create = push_body(0, ThreadCreate(id="T-2", created=5))
    assert (await api.a.post("/v1/threads/T-2/deltas", json=create)).status_code == 200
    assert (await api.a.post("/v1/threads/T-2/deltas", json=create)).json()["replayed"] is True


async def test_push_to_unknown_thread_is_404_and_bad_create_422(api: Api) -> None:
    unknown = await api.a.post("/v1/threads/T-9/deltas", json=push_body(1, TitleDelta(value="x")))
    assert unknown.status_code == 404
    wrong = await api.a.post("/v1/threads/T-9/deltas", json=push_body(0, TitleDelta(value="x")))
    assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_delta")
    empty = await api.a.post("/v1/threads/T-9/deltas", json={"base_version": 0, "deltas": []})
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_request")


async def test_batch_results_each_push_alone(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1"))
    pushes = [
        {"thread_id": "T-1", **push_body(1, TitleDelta(value="ok"))},
        {"thread_id": "T-1", **push_body(1, TitleDelta(value="stale"))},
        {"thread_id": "T-2", **push_body(0, ThreadCreate(id="T-2"))},
        {"thread_id": "T-3", **push_body(4, TitleDelta(value="none"))},
    ]
    results = (await api.a.post("/v1/sync/batch", json={"pushes": pushes})).json()["results"]
    assert [r["status"] for r in results] == [200, 409, 200, 404]
    assert results[1]["conflict"]["version"] == 2
    too_many = [
        {"thread_id": f"T-{i}", **push_body(0, ThreadCreate(id=f"T-{i}"))} for i in range(51)
    ]
    refused = await api.a.post("/v1/sync/batch", json={"pushes": too_many})
    assert refused.status_code == 422


async def test_atomic_batch_applies_all_or_nothing(api: Api) -> None:
    pushes = [
        {"thread_id": "T-5", **push_body(0, ThreadCreate(id="T-5"))},
        {"thread_id": "T-6", **push_body(3, TitleDelta(value="x"))},
    ]
    results = (await api.a.post("/v1/sync/batch", json={"pushes": pushes, "atomic": True})).json()[
        "results"
    ]
    assert [r["status"] for r in results] == [424, 404]
    assert (await api.a.get("/v1/threads/T-5")).status_code == 404


async def test_limits_answer_413_and_422(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1"))
    huge = MessageDelta.of(Message.model_validate(message(1, size=60_000)))
    big = await api.a.post("/v1/threads/T-1/deltas", json=push_body(1, huge))
    assert (big.status_code, big.json()["code"]) == (413, "message_too_large")
    body = await api.a.post(
        "/v1/threads/T-1/deltas",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert (body.status_code, body.json()["code"]) == (413, "body_too_large")
    many = await api.a.post(
        "/v1/threads/T-1/deltas", json=push_body(1, *(msg_delta(i) for i in range(21)))
    )
    assert (many.status_code, many.json()["code"]) == (422, "too_many_deltas")
    page = await api.a.get("/v1/threads/T-1/messages", params={"limit": 101})
    assert (page.status_code, page.json()["code"]) == (422, "invalid_request")
    assert (await api.a.get("/v1/threads/T-1")).json()["head"]["v"] == 1


async def test_another_workspace_sees_nothing(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1", messages=1))
    for method, url, body in (
        ("GET", "/v1/threads/T-1", None),
        ("GET", "/v1/threads/T-1/messages", None),
        ("GET", "/v1/threads/T-1/deltas", None),
        ("GET", "/v1/threads/T-1/related", None),
        ("DELETE", "/v1/threads/T-1", None),
        ("POST", "/v1/threads/T-1/deltas", push_body(2, TitleDelta(value="x"))),
    ):
        response = await api.b.request(method, url, json=body)
        assert response.status_code == 404, (method, url)
        assert response.json() == {"code": "not_found", "message": "Thread T-1 not found"}
    assert (await api.b.get("/v1/threads")).json()["threads"] == []
    assert (await api.b.get("/v1/changes")).json()["changes"] == []
    # The same id is free in B's workspace, and A's thread is untouched.
    assert (await api.b.post("/v1/threads", json=create_body("T-1"))).status_code == 201
    assert (await api.a.get("/v1/threads/T-1")).json()["head"]["message_count"] == 1


async def test_related_and_filters(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-p"))
    for child in ("T-c1", "T-c2"):
        body = {**create_body(child), "parent_thread_id": "T-p"}
        await api.a.post("/v1/threads", json=body)
    await api.a.post("/v1/threads", json={**create_body("T-s"), "origin_thread_id": "T-p"})
    family = (await api.a.get("/v1/threads/T-p/related")).json()
    assert sorted(t["id"] for t in family["children"]) == ["T-c1", "T-c2"]
    assert [t["id"] for t in family["summaries"]] == ["T-s"]
    assert family["parent"] is None
    assert (await api.a.get("/v1/threads/T-c1/related")).json()["parent"]["id"] == "T-p"
    children = (await api.a.get("/v1/threads", params={"parent": "T-p"})).json()
    assert sorted(t["id"] for t in children["threads"]) == ["T-c1", "T-c2"]
    summaries = (await api.a.get("/v1/threads", params={"origin": "T-p"})).json()
    assert [t["id"] for t in summaries["threads"]] == ["T-s"]


async def test_changes_feed_pages_and_tombstones(api: Api) -> None:
    for i in range(3):
        await api.a.post("/v1/threads", json=create_body(f"T-{i}"))
    await api.a.delete("/v1/threads/T-0")
    first = (await api.a.get("/v1/changes", params={"limit": 2})).json()
    assert [(c["thread_id"], c["deleted"]) for c in first["changes"]] == [
        ("T-1", False),
        ("T-2", False),
    ]
    assert first["has_more"] is True
    rest = (await api.a.get("/v1/changes", params={"since": first["cursor"]})).json()
    assert [(c["thread_id"], c["v"], c["deleted"]) for c in rest["changes"]] == [("T-0", 1, True)]
    assert rest["has_more"] is False


def parse_events(text: str) -> list[tuple[int, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "change":
            events.append((int(fields["id"]), orjson.loads(fields["data"])))
    return events


async def test_stream_sends_live_changes_and_resumes(api: Api) -> None:
    await api.a.post("/v1/threads", json=create_body("T-1"))

    async def write_later() -> None:
        await asyncio.sleep(0.2)
        await api.a.post("/v1/threads/T-1/deltas", json=push_body(1, TitleDelta(value="live")))

    writer = asyncio.create_task(write_later())
    response = await api.a.get("/v1/changes/stream")  # ends after max_seconds (1 s)
    await writer
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    assert [(e["thread_id"], e["v"]) for _, e in events] == [("T-1", 1), ("T-1", 2)]
    assert events[0][0] < events[1][0]
    resumed = await api.a.get("/v1/changes/stream", headers={"Last-Event-ID": str(events[0][0])})
    assert [(e["thread_id"], e["v"]) for _, e in parse_events(resumed.text)] == [("T-1", 2)]
    others = await api.b.get("/v1/changes/stream")
    assert parse_events(others.text) == []


async def test_openapi_documents_every_route(api: Api) -> None:
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert set(schema["paths"]) >= {
        "/healthz",
        "/v1/threads",
        "/v1/threads/{thread_id}",
        "/v1/threads/{thread_id}/messages",
        "/v1/threads/{thread_id}/deltas",
        "/v1/threads/{thread_id}/related",
        "/v1/sync/batch",
        "/v1/changes",
        "/v1/changes/stream",
    }
    push = schema["paths"]["/v1/threads/{thread_id}/deltas"]["post"]["responses"]
    assert {"200", "401", "404", "409", "413", "422"} <= set(push)


async def test_an_unknown_method_answers_405_with_every_method_of_the_path(api: Api) -> None:
    for url, allowed in (
        ("/v1/threads/T-1", "DELETE, GET"),
        ("/v1/threads", "GET, POST"),
        ("/v1/threads/T-1/deltas", "GET, POST"),
    ):
        response = await api.a.put(url, json={})
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
        assert response.headers["allow"] == allowed
