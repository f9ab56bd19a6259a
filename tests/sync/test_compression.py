"""Compressed request bodies on the wire: what the client sends, what the server
accepts and refuses."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import zstandard

from threadline.auth import create_token
from threadline.deltas import ThreadCreate
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.compression import MIN_COMPRESSED_BYTES, decode_body, encode_body
from threadline.sync.server import ServerLimits, create_app


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    storage = SqliteWorkspaces(tmp_path / "server")
    app = create_app(storage, limits=ServerLimits(max_body_bytes=100_000))
    token = await create_token(storage, "tester", "team")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http
    await storage.close()


def push_body(thread_id: str, title: str = "") -> bytes:
    create = ThreadCreate(id=thread_id, created=1, title=title).model_dump(mode="json")
    return orjson.dumps({"base_version": 0, "deltas": [create]})


def test_small_bodies_go_as_they_are_and_large_ones_compressed() -> None:
    small = b'{"a": 1}'
    assert encode_body(small) == (small, {})
    packed, headers = encode_body(small * 200)
    assert headers == {"Content-Encoding": "zstd"}
    assert len(packed) < MIN_COMPRESSED_BYTES
    assert decode_body(packed, "zstd", max_bytes=10_000) == small * 200
    forced, headers = encode_body(b"x" * 100, force=True)
    assert (headers, decode_body(forced, "zstd", max_bytes=100)) == (
        {"Content-Encoding": "zstd"},
        b"x" * 100,
    )


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [("zstd", zstandard.ZstdCompressor().compress), ("gzip", gzip.compress)],
)
async def test_the_server_takes_zstd_and_gzip_bodies(
    client: httpx.AsyncClient, encoding: str, pack: object
) -> None:
    assert callable(pack)
    body = pack(push_body("T-1", "x" * 5000))
    response = await client.post(
        "/v1/threads/T-1/deltas",
        content=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["head"]["title"] == "x" * 5000


async def test_the_server_refuses_unknown_corrupt_and_oversized_bodies(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ("br", b"whatever", 415, "unsupported_encoding"),
        ("zstd", b"not zstd at all", 400, "invalid_encoding"),
        ("gzip", gzip.compress(push_body("T-2"))[:-8], 400, "invalid_encoding"),
        ("zstd", zstandard.ZstdCompressor().compress(b" " * 200_000), 413, "body_too_large"),
    ]
    for encoding, body, status, code in cases:
        response = await client.post(
            "/v1/threads/T-2/deltas", content=body, headers={"Content-Encoding": encoding}
        )
        assert (response.status_code, response.json()["code"]) == (status, code), encoding


async def test_large_answers_come_back_gzipped(client: httpx.AsyncClient) -> None:
    pushed = await client.post(
        "/v1/threads/T-3/deltas",
        content=push_body("T-3", "y" * 10_000),
        headers={"Content-Type": "application/json"},
    )
    assert pushed.status_code == 200, pushed.text
    response = await client.get("/v1/threads/T-3/deltas", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["deltas"][0]["delta"]["title"] == "y" * 10_000
