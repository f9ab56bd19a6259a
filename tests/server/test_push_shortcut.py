"""The push route answers its common case without FastAPI's parameter machinery
(``PushRoute.shortcut``, for speed): every push must get the same answer as
through FastAPI. A body sent as ``application/json; charset=utf-8`` takes
FastAPI's way, one sent as ``application/json`` the shortcut."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.server.conftest import LIMITS, Api
from tests.server.test_api import create_body, msg_delta, push_body
from threadline.deltas import ThreadCreate

SHORTCUT = {"Content-Type": "application/json"}
FASTAPI = {"Content-Type": "application/json; charset=utf-8"}


async def both_ways(
    client: httpx.AsyncClient, url: str, body: bytes, **headers: str
) -> tuple[httpx.Response, httpx.Response]:
    fast = await client.post(url, content=body, headers={**SHORTCUT, **headers})
    slow = await client.post(url, content=body, headers={**FASTAPI, **headers})
    return fast, slow


def same(fast: httpx.Response, slow: httpx.Response) -> Any:
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
    return fast.status_code, fast.json()


async def test_refused_pushes_get_the_same_answer_both_ways(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1", messages=2))).status_code == 201
    url = "/v1/threads/T-1/deltas"
    huge = push_body(3, msg_delta(9))
    huge["deltas"][0]["message"]["metadata"] = {"n": 2**60}  # timestamps have a lower bound now
    too_large = push_body(3, msg_delta(8))
    too_large["deltas"][0]["message"]["content"] = "x" * LIMITS.max_message_bytes
    cases = {
        "stale": orjson.dumps(push_body(1, msg_delta(5))),
        "no deltas": orjson.dumps({"base_version": 3, "deltas": []}),
        "not json": b"{not json",
        "empty": b"",
        "huge number": orjson.dumps(huge),
        "too many": orjson.dumps(push_body(3, *(msg_delta(n) for n in range(30, 51)))),
        "too large": orjson.dumps(too_large),
        "extra field": orjson.dumps({**push_body(3, msg_delta(6)), "more": 1}),
    }
    answers = {name: same(*await both_ways(api.a, url, body)) for name, body in cases.items()}
    assert answers["stale"][0] == 409
    assert [d["v"] for d in answers["stale"][1]["missing"]] == [2, 3]
    assert answers["no deltas"][0] == answers["not json"][0] == 422
    assert answers["huge number"][1]["code"] == "invalid_delta"
    assert answers["too many"][1]["code"] == "too_many_deltas"
    assert answers["too large"] == (413, answers["too large"][1])
    assert answers["too large"][1]["code"] == "message_too_large"
    assert answers["extra field"][0] == 422

    body = orjson.dumps(push_body(3, msg_delta(6)))
    unknown = same(*await both_ways(api.a, "/v1/threads/T-9/deltas", body))
    assert unknown[0] == 404
    newline = same(*await both_ways(api.a, "/v1/threads/T-1%0A/deltas", body))
    assert newline[0] == 422
    creates = orjson.dumps(push_body(0, ThreadCreate(id="T-other", created=1)))
    assert same(*await both_ways(api.a, "/v1/threads/T-2/deltas", creates))[0] == 422
    forged = "Bearer tl_000000000000_" + "A" * 43
    assert same(*await both_ways(api.anonymous, url, body, Authorization=forged))[0] == 401
    assert same(*await both_ways(api.anonymous, url, body))[0] == 401
    # Another workspace's thread is unknown there, both ways.
    assert same(*await both_ways(api.b, url, body))[0] == 404


async def test_accepted_pushes_answer_alike_both_ways(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1"))).status_code == 201
    url = "/v1/threads/T-1/deltas"
    fast = await api.a.post(url, content=orjson.dumps(push_body(1, msg_delta(1))), headers=SHORTCUT)
    slow = await api.a.post(url, content=orjson.dumps(push_body(2, msg_delta(2))), headers=FASTAPI)
    assert (fast.status_code, slow.status_code) == (200, 200)
    assert (fast.json()["version"], slow.json()["version"]) == (2, 3)
    assert fast.json().keys() == slow.json().keys()
    assert fast.json()["head"].keys() == slow.json()["head"].keys()
    # A repeated push is accepted once, whichever way each copy came.
    again = await api.a.post(url, content=orjson.dumps(push_body(1, msg_delta(1))), headers=FASTAPI)
    assert (again.status_code, again.json()["replayed"], again.json()["version"]) == (200, True, 3)
    page = await api.a.get("/v1/threads/T-1")
    assert [m["id"] for m in page.json()["messages"]] == ["M-1", "M-2"]


async def test_batches_get_the_same_answer_both_ways(api: Api) -> None:
    assert (await api.a.post("/v1/threads", json=create_body("T-1", messages=2))).status_code == 201

    def batch(*pushes: tuple[str, int, int], atomic: bool = False) -> bytes:
        return orjson.dumps(
            {
                "pushes": [
                    {"thread_id": t, **push_body(base, msg_delta(n))} for t, base, n in pushes
                ],
                "atomic": atomic,
            }
        )

    url = "/v1/sync/batch"
    stale = same(*await both_ways(api.a, url, batch(("T-1", 1, 5), ("T-9", 3, 6))))
    assert [r["status"] for r in stale[1]["results"]] == [409, 404]
    atomic = same(*await both_ways(api.a, url, batch(("T-1", 1, 5), atomic=True)))
    assert [r["status"] for r in atomic[1]["results"]] == [409]
    too_many = batch(*(("T-1", 3, n) for n in range(51)))
    assert same(*await both_ways(api.a, url, too_many))[0] == 422
    assert same(*await both_ways(api.a, url, b"[]"))[0] == 422
    assert same(*await both_ways(api.anonymous, url, batch(("T-1", 3, 7))))[0] == 401
    fast = await api.a.post(url, content=batch(("T-1", 3, 7)), headers=SHORTCUT)
    slow = await api.a.post(url, content=batch(("T-1", 4, 8)), headers=FASTAPI)
    assert [r["accepted"]["version"] for r in fast.json()["results"]] == [4]
    assert [r["accepted"]["version"] for r in slow.json()["results"]] == [5]
