"""LangGraph's checkpointer conformance suite (``langgraph-checkpoint-conformance``)
on the threadline savers: every capability group, base and extended, must pass,
on a SQLite store, on PostgreSQL, and through the sync saver's async methods."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport

from tests.pg import new_workspace
from threadline import ThreadStore
from threadline.integrations.langgraph import (
    AsyncThreadlineSaver,
    ThreadlineSaver,
)
from threadline.recorders.postgres import PostgresRecorder

ALL_GROUPS = {
    "put",
    "put_writes",
    "get_tuple",
    "list",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
}


def assert_all_groups_pass(report: CapabilityReport) -> None:
    failures = {name: result.failures for name, result in report.results.items() if result.failures}
    assert failures == {}
    passed = {
        name
        for name, result in report.results.items()
        if result.passed is True and result.tests_passed > 0 and result.tests_failed == 0
    }
    assert passed == ALL_GROUPS
    # 0.0.2 has 81 checks: put 17, put_writes 10, get_tuple 10, list 16,
    # delete_thread 5, delete_for_runs 7, copy_thread 8, prune 8
    assert sum(result.tests_passed for result in report.results.values()) == 81


async def test_async_saver_on_sqlite_passes_every_group(tmp_path: Path) -> None:
    counter = iter(range(1000))

    @checkpointer_test(name="AsyncThreadlineSaver[sqlite]")
    async def saver() -> AsyncIterator[AsyncThreadlineSaver]:
        async with AsyncThreadlineSaver.from_path(tmp_path / f"{next(counter)}.db") as made:
            yield made

    assert_all_groups_pass(await validate(saver))


async def test_async_saver_on_postgres_passes_every_group(postgres_dsn: str) -> None:
    @checkpointer_test(name="AsyncThreadlineSaver[postgres]")
    async def saver() -> AsyncIterator[AsyncThreadlineSaver]:
        recorder = await PostgresRecorder.connect(
            postgres_dsn, workspace=new_workspace(), max_size=4
        )
        async with ThreadStore(recorder) as store:
            yield AsyncThreadlineSaver(store)

    assert_all_groups_pass(await validate(saver))


async def test_sync_saver_passes_every_group(tmp_path: Path) -> None:
    counter = iter(range(1000))
    opened: list[Callable[[], Any]] = []

    @checkpointer_test(name="ThreadlineSaver[sqlite]")
    async def saver() -> AsyncIterator[ThreadlineSaver]:
        with ThreadlineSaver.from_path(tmp_path / f"{next(counter)}.db") as made:
            yield made
        opened.append(made.close)

    assert_all_groups_pass(await validate(saver))
    assert len(opened) == len(ALL_GROUPS)
