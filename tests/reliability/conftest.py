"""Fixtures of the reliability tests: one store per backend the issue names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import ThreadStore
from threadline.recorders import MemoryRecorder, SqliteRecorder, ThreadRecorder

BACKENDS = ("memory", "sqlite-file", "sqlite-memory")


def make_recorder(backend: str, tmp_path: Path) -> ThreadRecorder:
    if backend == "memory":
        return MemoryRecorder()
    if backend == "sqlite-file":
        return SqliteRecorder(tmp_path / "t.db")
    if backend == "sqlite-memory":
        return SqliteRecorder(":memory:")
    raise ValueError(f"unknown backend {backend!r}")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThreadStore]:
    """A fresh store on each backend: in-memory, SQLite file, SQLite ``:memory:``."""
    async with ThreadStore(make_recorder(request.param, tmp_path)) as opened:
        yield opened
