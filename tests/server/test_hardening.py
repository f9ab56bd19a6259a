"""Issue 16 over real HTTP, on SQLite and PostgreSQL: what the API accepts stays
readable by every read route; what it cannot show is refused with a 4xx."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.server.served import Served
from threadline.viewer.session import COOKIE

READ_ROUTES = (
    "/v1/threads/{id}",
    "/v1/threads/{id}/messages",
    "/v1/threads/{id}/deltas",
    "/v1/threads/{id}/related",
    "/v1/threads/{id}/subtree",
    "/v1/threads/{id}/ancestry",
    "/v1/threads",
    "/v1/usage",
    "/v1/usage?thread_id={id}",
    "/v1/search?q=hello",
    "/v1/changes",
)


async def assert_readable(served: Served, thread_id: str) -> None:
    """Every read route answers 200 for the workspace and ``thread_id``."""
    for route in READ_ROUTES:
        response = await served.http.get(route.format(id=thread_id))
        assert response.status_code == 200, (route, response.status_code, response.text[:300])


def message(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"M-{n}", "role": "assistant", "content": f"hello {n}", **fields}


async def create(served: Served, thread_id: str, *messages: dict[str, Any]) -> int:
    body = {"id": thread_id, "title": "t", "messages": list(messages)}
    response = await served.http.post("/v1/threads", json=body)
    return response.status_code


def raw(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


async def test_non_finite_or_huge_costs_are_refused_and_sums_stay_finite(served: Served) -> None:
    over = '{"id": "T-1", "messages": [{"role": "assistant", "usage": {"cost_usd": 1e309}}]}'
    assert (await served.http.post("/v1/threads", **raw(over))).status_code == 422
    big = message(1, usage={"cost_usd": 1e308})
    assert await create(served, "T-2", big) == 422
    at_most = message(1, usage={"cost_usd": 1e9, "input_tokens": 2**31 - 1})
    again = message(2, usage={"cost_usd": 1e9, "input_tokens": 2**31 - 1})
    assert await create(served, "T-3", at_most, again) == 201
    await assert_readable(served, "T-3")
    head = (await served.http.get("/v1/threads/T-3")).json()["head"]
    assert head["totals"]["cost_usd"] == 2e9
    assert head["totals"]["input_tokens"] == 2 * (2**31 - 1)


async def test_token_counts_beyond_the_bound_are_refused(served: Served) -> None:
    for tokens in (2**31, 2**53):
        assert await create(served, "T-1", message(1, usage={"output_tokens": tokens})) == 422
    assert await create(served, "T-1", message(1, usage={"output_tokens": 2**31 - 1})) == 201
    await assert_readable(served, "T-1")


async def test_nan_and_infinity_in_metadata_or_tool_input_are_refused(served: Served) -> None:
    for body in (
        '{"id": "T-1", "metadata": {"a": NaN}}',
        '{"id": "T-1", "env": {"a": [Infinity]}}',
        '{"id": "T-1", "messages": [{"role": "user", "metadata": {"x": {"y": -Infinity}}}]}',
        '{"id": "T-1", "messages": [{"role": "assistant", '
        '"tool_calls": [{"id": "c", "name": "n", "input": {"v": 1e999}}]}]}',
    ):
        response = await served.http.post("/v1/threads", **raw(body))
        assert response.status_code == 422, body
    assert (await served.http.get("/v1/threads/T-1")).status_code == 404
    assert await create(served, "T-1") == 201
    push = {"base_version": 1, "deltas": [{"type": "metadata", "patch": {"a": 1.5}}]}
    first = await served.http.post("/v1/threads/T-1/deltas", json=push)
    replay = await served.http.post("/v1/threads/T-1/deltas", json=push)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json()["replayed"] is True
    nan = (
        orjson.dumps(push)
        .decode()
        .replace("1.5", "NaN")
        .replace('"base_version":1', '"base_version":2')
    )
    assert (await served.http.post("/v1/threads/T-1/deltas", **raw(nan))).status_code == 422


async def test_timestamps_beyond_year_9999_are_refused(served: Served) -> None:
    end = 253_402_300_799_999
    assert await create(served, "T-1", message(1, timestamp=end + 1)) == 422
    response = await served.http.post("/v1/threads", json={"id": "T-2", "created": end + 1})
    assert response.status_code == 422
    push = {"base_version": 0, "deltas": [{"type": "thread:create", "id": "T-3", "created": 2**60}]}
    assert (await served.http.post("/v1/threads/T-3/deltas", json=push)).status_code == 422
    response = await served.http.post("/v1/threads", json={"id": "T-4", "created": end})
    assert response.status_code == 201
    assert await create(served, "T-5", message(1, timestamp=end)) == 201
    await assert_readable(served, "T-4")
    await assert_readable(served, "T-5")
    assert (await served.http.get("/")).status_code in (200, 303)


async def test_thread_ids_dot_and_dot_dot_are_refused(served: Served) -> None:
    for thread_id in (".", ".."):
        assert await create(served, thread_id) == 422
        push = {"base_version": 0, "deltas": [{"type": "thread:create", "id": thread_id}]}
        encoded = thread_id.replace(".", "%2E")
        response = await served.http.post(f"/v1/threads/{encoded}/deltas", json=push)
        assert response.status_code in (404, 422), thread_id
    for thread_id in ("...", ".a", "a.", "..b"):
        assert await create(served, thread_id) == 201, thread_id
    listed = (await served.http.get("/v1/threads")).json()["threads"]
    assert sorted(t["id"] for t in listed) == ["...", "..b", ".a", "a."]


async def test_a_malformed_list_cursor_is_a_422(served: Served) -> None:
    assert await create(served, "T-1") == 201
    for cursor in (f"{2**63}:T-1", "9" * 40 + ":T-1", "1:", ":T-1", "x:T-1", "\u0661:T-1"):
        response = await served.http.get("/v1/threads", params={"cursor": cursor})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor"), cursor
    edge = await served.http.get("/v1/threads", params={"cursor": f"{2**63 - 1}:T-1"})
    assert [t["id"] for t in edge.json()["threads"]] == ["T-1"]


async def test_a_message_with_one_very_long_word_is_accepted_and_search_works(
    served: Served,
) -> None:
    letters = random.Random(16).choices(string.ascii_letters + string.digits, k=6000)
    long_word = "".join(letters)  # incompressible, as an index entry must hold it
    assert await create(served, "T-1", message(1, content=f"needle {long_word} haystack")) == 201
    assert await create(served, "T-2", message(2, content="x" * 20_000)) == 201
    await assert_readable(served, "T-1")
    for query in ("needle", "haystack"):
        hits = (await served.http.get("/v1/search", params={"q": query})).json()["hits"]
        assert [h["thread_id"] for h in hits] == ["T-1"], query
    # Past the characters the index keeps, the match is still exact.
    found = await served.http.get("/v1/search", params={"q": long_word[:900] + "*"})
    assert [h["thread_id"] for h in found.json()["hits"]] == ["T-1"]
    other = long_word[:899] + ("a" if long_word[899] != "a" else "b")
    for query in (other + "*", long_word[:900]):
        assert (await served.http.get("/v1/search", params={"q": query})).json()["hits"] == []


async def test_every_member_of_a_multi_member_gzip_body_is_decoded(served: Served) -> None:
    body = orjson.dumps({"id": "T-1", "title": "whole", "messages": [message(1), message(2)]})
    half = len(body) // 2
    two_members = gzip.compress(body[:half]) + gzip.compress(body[half:])
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    response = await served.http.post("/v1/threads", content=two_members, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["head"]["message_count"] == 2
    garbage = gzip.compress(body) + b"not gzip"
    refused = await served.http.post("/v1/threads", content=garbage, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_encoding")
    assert (await served.http.get("/v1/threads")).json()["threads"][0]["title"] == "whole"


async def test_a_server_failure_names_an_error_id_and_no_server_path(served: Served) -> None:
    if served.backend.name != "sqlite":
        pytest.skip("a damaged workspace file is an embedded-SQLite failure")
    damaged = Path(served.backend.db) / "workspaces" / f"{served.workspace}.db"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"this is not a database" * 1000)
    response = await served.http.get("/v1/threads")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"code", "message", "error_id"}
    assert served.backend.db not in response.text
    assert "workspaces" not in response.text


def _threadline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_revoked_token_is_refused_within_a_second(served: Served) -> None:
    db = served.backend.db
    other = await served.backend.token(served.workspace, "mallory")
    token_id = other[3:15]
    headers = {"Authorization": f"Bearer {other}"}
    assert (await served.http.get("/v1/threads", headers=headers)).status_code == 200
    listed = json.loads(_threadline("token", "list", "--db", db, "--json").stdout)["tokens"]
    mine = [t for t in listed if t["workspace"] == served.workspace]
    assert sorted(t["user"] for t in mine) == ["mallory", "tester"]
    assert {t["id"] for t in mine} >= {token_id}
    assert "secret" not in json.dumps(listed)

    revoked = _threadline("token", "revoke", token_id, "--db", db, "--json")
    assert (revoked.returncode, json.loads(revoked.stdout)) == (
        0,
        {"id": token_id, "revoked": True},
    )
    await asyncio.sleep(1.0)
    refused = await served.http.get("/v1/threads", headers=headers)
    assert refused.status_code == 401
    assert (await served.http.get("/v1/threads")).status_code == 200  # the other token
    again = _threadline("token", "revoke", token_id, "--db", db)
    assert again.returncode == 1
    assert f"No token {token_id}" in again.stderr
    listed = json.loads(_threadline("token", "list", "--db", db, "--json").stdout)["tokens"]
    assert token_id not in {t["id"] for t in listed}


async def test_a_get_with_the_viewer_cookie_never_restores_an_archived_thread(
    served: Served,
) -> None:
    if served.backend.name != "sqlite":
        pytest.skip("the PostgreSQL test server has no cold storage configured")
    assert await create(served, "T-1", message(1), message(2)) == 201
    archived = await served.http.post("/v1/archive", json={"thread_ids": ["T-1"]})
    assert archived.json()["thread_ids"] == ["T-1"]
    token = served.http.headers["Authorization"].removeprefix("Bearer ")
    cookie = {"Cookie": f"{COOKIE}={token}"}
    async with httpx.AsyncClient(base_url=served.backend.url, headers=cookie) as browser:
        for url in ("/v1/threads/T-1/messages", "/v1/threads/T-1/deltas"):
            response = await browser.get(url)
            assert (response.status_code, response.json()["code"]) == (409, "thread_archived")
        assert (await browser.get("/v1/threads/T-1")).json()["archived"] is True
        # Writes never take the cookie: restoring needs the bearer token.
        assert (await browser.post("/v1/threads/T-1/restore")).status_code == 401
    assert (await served.http.get("/v1/threads/T-1")).json()["archived"] is True
    assert (await served.http.post("/v1/threads/T-1/restore")).json() == {"thread_ids": ["T-1"]}
    page = (await served.http.get("/v1/threads/T-1/messages")).json()
    assert [m["id"] for m in page["messages"]] == ["M-1", "M-2"]
