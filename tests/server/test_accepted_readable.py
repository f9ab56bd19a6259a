"""Accepted means readable (issue 16), as a property over the whole input space.

Requests are generated across what the schemas allow and beyond — extreme and
non-finite numbers, any unicode, long strings, deep JSON, odd ids and
timestamps — and sent over real HTTP to a server on SQLite and on PostgreSQL.
Each is either refused with a 4xx (never a 5xx) or, if accepted, every read
route and viewer page still answers 200 for the workspace and the thread. The
same holds for the library and the CLI read commands on a local store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.pg import new_workspace
from tests.server.served import Backend
from threadline import Message, ThreadStore
from threadline.cli import main as cli_main

_NUMBERS = (
    st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, 253_402_300_799_999])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, 1e309, -1e309, math.nan, 5e-324])
)
_TEXT = st.text(max_size=30) | st.sampled_from(["", ".", "..", "a/b", "\x00", "x" * 5000])
_LONG_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=3000, max_size=6000)
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBERS | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": [value]}
    return value


_OBJECTS = st.dictionaries(_TEXT, _JSON, max_size=3) | st.integers(1, 200).map(
    lambda d: {"deep": _deep(d)}
)
_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "model": st.none() | _TEXT,
        "input_tokens": _NUMBERS,
        "output_tokens": _NUMBERS,
        "cache_read_tokens": _NUMBERS,
        "cache_write_tokens": _NUMBERS,
        "cost_usd": st.none() | _NUMBERS,
    },
)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"])},
    optional={
        "content": _TEXT | _LONG_WORD,
        "timestamp": _NUMBERS,
        "usage": _USAGE,
        "metadata": _OBJECTS,
        "tool_calls": st.lists(
            st.fixed_dictionaries({"id": _TEXT, "name": _TEXT, "input": _OBJECTS}), max_size=2
        ),
        "tool_results": st.lists(
            st.fixed_dictionaries({"tool_call_id": _TEXT, "output": _JSON}), max_size=2
        ),
    },
)
_CREATE = st.fixed_dictionaries(
    {},
    optional={
        "id": _TEXT,
        "title": st.none() | _TEXT,
        "created": _NUMBERS,
        "env": _OBJECTS,
        "metadata": _OBJECTS,
        "messages": st.lists(_MESSAGE, max_size=3),
    },
)


def _dumps(value: Any) -> bytes:
    """JSON with NaN and Infinity spelt as JavaScript does (what a sloppy client
    sends), and integers of any size."""
    return json.dumps(value, allow_nan=True).encode()


READS = (
    "/v1/threads",
    "/v1/threads?archived=false",
    "/v1/usage",
    "/v1/changes",
    "/v1/search?q=a",
    "/",
    "/?status=active",
)
THREAD_READS = (
    "/v1/threads/{id}",
    "/v1/threads/{id}/messages",
    "/v1/threads/{id}/deltas",
    "/v1/threads/{id}/related",
    "/v1/threads/{id}/subtree",
    "/v1/threads/{id}/ancestry",
    "/v1/usage?thread_id={id}",
    "/threads/{id}",
    "/threads/{id}/costs",
    "/threads/{id}/history",
)


def _assert_readable(http: httpx.Client, thread_id: str | None) -> None:
    for url in READS:
        response = http.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    if thread_id is None:
        return
    for url in THREAD_READS:
        filled = url.format(id=quote(thread_id, safe=""))
        response = http.get(filled)
        assert response.status_code == 200, (filled, response.status_code, response.text[:300])
    listed = http.get("/v1/threads", params={"limit": 1})
    cursor = listed.json()["next_cursor"]
    if cursor is not None:
        assert http.get("/v1/threads", params={"cursor": cursor}).status_code == 200


@pytest.fixture(scope="module")
def http(backend: Backend) -> Any:
    token = asyncio.run(backend.token(new_workspace()))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=backend.url, headers=headers, timeout=60) as client:
        yield client


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_CREATE, patch=_OBJECTS)
def test_what_the_api_accepts_every_read_route_can_show(
    http: httpx.Client, body: dict[str, Any], patch: dict[str, Any]
) -> None:
    created = http.post(
        "/v1/threads", content=_dumps(body), headers={"content-type": "application/json"}
    )
    assert created.status_code < 500, created.text[:500]
    event(f"create answered {created.status_code}")
    if created.status_code != 201:
        assert 400 <= created.status_code < 500
        _assert_readable(http, None)
        return
    answer = created.json()
    thread_id = answer["head"]["id"]
    push = {"base_version": answer["version"], "deltas": [{"type": "metadata", "patch": patch}]}
    pushed = http.post(
        f"/v1/threads/{quote(thread_id, safe='')}/deltas",
        content=_dumps(push),
        headers={"content-type": "application/json"},
    )
    assert pushed.status_code < 500, pushed.text[:500]
    _assert_readable(http, thread_id)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("accepted-readable-home")


def _cli(home: Path, *args: str) -> int:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli_main(["--db", str(home / "threads.db"), *args])
    out.flush()
    assert status == 0, (args, out.buffer.getvalue()[-500:])
    return status


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(message=_MESSAGE)
def test_what_the_library_accepts_every_cli_read_command_can_show(
    home: Path, message: dict[str, Any]
) -> None:
    try:
        accepted = Message.model_validate_json(_dumps(message))
    except ValidationError:
        event("refused by the model")
        return
    event("accepted by the model")

    async def append() -> str:
        async with await ThreadStore.open(home / "threads.db") as store:
            thread = await store.create_thread(title="t", capture_environment=False)
            await store.append_message(thread.id, accepted)
            return thread.id

    thread_id = asyncio.run(append())
    for args in (
        ("list", "--json"),
        ("list",),
        ("show", thread_id),
        ("show", thread_id, "--json"),
        ("log", thread_id),
        ("cost",),
        ("cost", thread_id, "--json"),
        ("search", "a"),
        ("export", thread_id),
        ("tree", thread_id),
        ("doctor",),
    ):
        _cli(home, *args)
