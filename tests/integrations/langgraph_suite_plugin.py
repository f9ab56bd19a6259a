"""A pytest plugin that runs LangGraph's own tests on the threadline savers.

LangGraph's ``tests/conftest.py`` gives its tests a checkpointer through two
fixtures, ``sync_checkpointer`` and ``async_checkpointer``, parametrized over
its savers. This plugin puts fixtures of the same names in their place whose
parameters are SQLite's savers (``sqlite``, ``sqlite_aio``, made by LangGraph's
own factories in ``tests/conftest_checkpointer.py``) and threadline's
(``threadline``: :class:`ThreadlineSaver`, ``threadline_aio``:
:class:`AsyncThreadlineSaver`, each on a fresh SQLite file), so both run in
the same session. Only the tests that take a checkpointer are kept; the
terminal summary ends with one line per checkpointer::

    checkpointer sqlite: 386 passed, 0 failed, 0 error, 0 skipped

Nothing of LangGraph is copied here; the tests come from its sdist (see
docs/langgraph.md for the command)::

    pip download --no-binary :all: --no-deps langgraph==1.2.24
    tar xzf langgraph-1.2.24.tar.gz && cd langgraph-1.2.24
    NO_DOCKER=true PYTHONPATH=<threadline>/tests/integrations python -m pytest \\
        -p no:asyncio -p langgraph_suite_plugin -o addopts= tests
"""

from __future__ import annotations

import importlib
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from threadline.integrations.langgraph import AsyncThreadlineSaver, ThreadlineSaver

# LangGraph's, run from its sdist (not threadline's own tests package).
langgraph_conftest = importlib.import_module("tests.conftest")
langgraph_factories = importlib.import_module("tests.conftest_checkpointer")


@contextmanager
def threadline_saver() -> Iterator[ThreadlineSaver]:
    with (
        tempfile.TemporaryDirectory() as where,
        ThreadlineSaver.from_path(Path(where) / "threads.db") as saver,
    ):
        yield saver


@asynccontextmanager
async def threadline_async_saver() -> AsyncIterator[AsyncThreadlineSaver]:
    with tempfile.TemporaryDirectory() as where:
        async with AsyncThreadlineSaver.from_path(Path(where) / "threads.db") as saver:
            yield saver


SYNC: dict[str, Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]] = {
    "sqlite": langgraph_factories._checkpointer_sqlite,
    "threadline": threadline_saver,
}
ASYNC: dict[str, Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]]] = {
    "sqlite_aio": langgraph_factories._checkpointer_sqlite_aio,
    "threadline_aio": threadline_async_saver,
}
FIXTURES = ("sync_checkpointer", "async_checkpointer")


@pytest.fixture(params=list(SYNC))
def sync_checkpointer(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    with SYNC[request.param]() as saver:
        yield saver


@pytest.fixture(params=list(ASYNC))
async def async_checkpointer(
    request: pytest.FixtureRequest,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    async with ASYNC[request.param]() as saver:
        yield saver


# pytest reads the conftest module already imported above: these replace its fixtures.
vars(langgraph_conftest).update(
    sync_checkpointer=sync_checkpointer, async_checkpointer=async_checkpointer
)


def checkpointer_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    params: dict[str, Any] = callspec.params if callspec is not None else {}
    return next((params[name] for name in FIXTURES if name in params), None)


checkpointers: dict[str, str] = {}  # node id -> checkpointer id
outcomes: Counter[tuple[str, str]] = Counter()  # (checkpointer id, outcome) -> tests


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the tests that take a checkpointer."""
    checkpointers.update(
        (item.nodeid, checkpointer)
        for item in items
        if (checkpointer := checkpointer_of(item)) is not None
    )
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in checkpointers])
    items[:] = [item for item in items if item.nodeid in checkpointers]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes as pytest's summary does: a test's call passed, failed or
    skipped; a failed setup or teardown is an error; a skip in setup is a skip."""
    checkpointer = checkpointers.get(report.nodeid)
    if checkpointer is None:
        return
    if report.when == "call":
        outcomes[checkpointer, report.outcome] += 1
    elif report.failed:
        outcomes[checkpointer, "error"] += 1
    elif report.skipped:
        outcomes[checkpointer, "skipped"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for checkpointer in [*SYNC, *ASYNC]:
        counts = ", ".join(
            f"{outcomes[checkpointer, outcome]} {outcome}"
            for outcome in ("passed", "failed", "error", "skipped")
        )
        terminalreporter.write_line(f"checkpointer {checkpointer}: {counts}")
