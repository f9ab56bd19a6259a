"""LangGraph's own tests, run on the threadline savers (issue 15).

The tests come from LangGraph's sdist of the installed version (downloaded from
PyPI, as CI installs everything else). ``langgraph_suite_plugin`` gives
LangGraph's ``sync_checkpointer`` / ``async_checkpointer`` fixtures its SQLite
savers (``sqlite``, ``sqlite_aio``) and threadline's (``threadline``,
``threadline_aio``), so one run compares them, and keeps the tests that take a
checkpointer, from the files that use one. ``NO_DOCKER`` leaves out the
PostgreSQL and Redis variants of LangGraph's other fixtures. No test is
excluded: threadline must pass every test SQLite passes, and SQLite must fail
none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.sdist import unpacked_sdist

pytest.importorskip("langgraph")

HERE = Path(__file__).resolve().parent
PYTEST = (
    *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
    *("-p", "no:asyncio", "-p", "langgraph_suite_plugin", "-o", "addopts="),
)
TAKES_A_CHECKPOINTER = re.compile(r"\b(sync|async)_checkpointer\b")
COUNTS = re.compile(r"^checkpointer (\w+): (\d+) passed, (\d+) failed, (\d+) error, (\d+) skipped$")


@pytest.fixture(scope="module")
def langgraph_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpacked_sdist("langgraph", tmp_path_factory.mktemp("langgraph-sdist"))


def checkpointer_test_files(sources: Path) -> list[str]:
    """LangGraph's test files that take a checkpointer fixture."""
    return sorted(
        str(path.relative_to(sources))
        for path in (sources / "tests").glob("test_*.py")
        if TAKES_A_CHECKPOINTER.search(path.read_text())
    )


def test_langgraphs_tests_pass_on_threadline_as_on_sqlite(langgraph_sources: Path) -> None:
    files = checkpointer_test_files(langgraph_sources)
    assert len(files) >= 10, files
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [*PYTEST, *files],
        cwd=langgraph_sources,
        env={**environment, "PYTHONPATH": str(HERE), "NO_DOCKER": "true"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, output
    counts = {
        match[1]: tuple(int(n) for n in match.groups()[1:])
        for line in run.stdout.splitlines()
        if (match := COUNTS.match(line))
    }
    # (passed, failed, error, skipped) for each checkpointer
    sync_passed, async_passed = counts["sqlite"][0], counts["sqlite_aio"][0]
    assert sync_passed > 100, output
    assert async_passed > 100, output
    assert counts == {
        "sqlite": (sync_passed, 0, 0, 0),
        "threadline": (sync_passed, 0, 0, 0),
        "sqlite_aio": (async_passed, 0, 0, 0),
        "threadline_aio": (async_passed, 0, 0, 0),
    }, output
