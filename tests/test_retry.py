"""with_retry: only retryable errors, exponential backoff, every retry logged (issue 3)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from threadline import Message, StoreBusy, ThreadStore, VersionConflict
from threadline.errors import (
    StoreCorrupt,
    ThreadlineError,
    ThreadNotFound,
    WriterBusy,
    is_retryable,
)
from threadline.retry import with_retry


class Sleeps:
    """Records the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Failing:
    """An operation that raises each of ``errors`` in turn, then returns ``done``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def busy() -> StoreBusy:
    return StoreBusy("/tmp/t.db", "database is locked")


def test_which_errors_are_retryable() -> None:
    assert is_retryable(busy())
    assert is_retryable(TimeoutError())
    assert is_retryable(ConnectionResetError())
    assert not is_retryable(VersionConflict("T-1", 1, 2))
    assert not is_retryable(ThreadNotFound("T-1"))
    assert not is_retryable(WriterBusy("T-1"))
    assert not is_retryable(StoreCorrupt("/tmp/t.db", "bad"))
    assert not is_retryable(ValueError("x"))
    assert ThreadlineError.retryable is False
    assert StoreBusy.retryable is True


async def test_retries_busy_with_doubling_backoff_and_logs_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    operation = Failing(busy(), busy())
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="threadline.retry"):
        assert await with_retry(operation, sleep=sleeps) == "done"
    assert operation.calls == 3
    assert sleeps.delays == [1.0, 2.0]
    records = [r for r in caplog.records if r.name == "threadline.retry"]
    assert [(r.attempt, r.delay) for r in records] == [(1, 1.0), (2, 2.0)]  # type: ignore[attr-defined]
    assert "Attempt 1" in records[0].getMessage()
    assert "retrying in 1.00 s" in records[0].getMessage()


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    last = busy()
    operation = Failing(busy(), busy(), busy(), last)
    sleeps = Sleeps()
    with pytest.raises(StoreBusy) as raised:
        await with_retry(operation, max_attempts=4, backoff=0.5, sleep=sleeps)
    assert raised.value is last
    assert operation.calls == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]


async def test_other_errors_are_raised_at_once() -> None:
    for error in (VersionConflict("T-1", 1, 2), ValueError("bug")):
        operation = Failing(error)
        sleeps = Sleeps()
        with pytest.raises(type(error)):
            await with_retry(operation, sleep=sleeps)
        assert operation.calls == 1
        assert sleeps.delays == []


async def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        await with_retry(Failing(), max_attempts=0)


async def test_a_locked_database_is_retried_until_it_is_free(tmp_path: Path) -> None:
    """A real lock held by another connection: the first attempt fails with
    StoreBusy, the lock is released while "sleeping", the retry succeeds."""
    path = tmp_path / "t.db"
    async with await ThreadStore.open(path, busy_timeout_ms=20) as store:
        thread = await store.create_thread(capture_environment=False)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        released: list[float] = []

        async def release(delay: float) -> None:
            released.append(delay)
            blocker.execute("ROLLBACK")

        version = await with_retry(
            lambda: store.append_message(thread.id, Message(role="user", content="hi")),
            sleep=release,
        )
        blocker.close()
        assert (version, released) == (2, [1.0])
