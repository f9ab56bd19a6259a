"""The OpenAI Agents SDK's own session tests, run on ThreadlineSession (issue 15).

The tests come from the SDK's sdist of the installed version (downloaded from
PyPI, as CI installs everything else); ``agents_sdk_plugin`` puts a
``SQLiteSession`` backed by threadline in the SDK's place. The tests that
inspect ``SQLiteSession``'s own internals — its per-thread connection pool
(``_connections``, ``_get_connection``), its per-file lock registry
(``_lock``, ``_file_lock_counts``) or its table layout through raw SQL
(``agent_sessions`` / ``agent_messages``, corrupt rows written by hand) — do
not apply and are deselected; every other test must pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.sdist import unpacked_sdist

pytest.importorskip("agents")

HERE = Path(__file__).resolve().parent
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "agents_sdk_plugin")
FILES = ("tests/memory/test_session.py", "tests/memory/test_session_limit.py")
INTERNALS = (
    "close_closes_worker_thread_connections",  # _connections
    "reaps_connections_from_exited_worker_threads",  # _connections
    "closes_retired_connections_before_the_next_allocation",  # _connections
    "keeps_connections_of_live_worker_threads",  # _connections
    "pop_item_skips_corrupt_most_recent",  # raw INSERT into agent_messages
    "pop_item_returns_none_after_dropping_only_corrupt_rows",  # raw INSERT
    "get_items_limit_skips_corrupt_newest_rows",  # raw INSERT
    "get_items_session_settings_limit_skips_corrupt_rows",  # raw INSERT
    "file_lock_is_shared_across_instances",  # _lock, _file_lock_counts
    "failed_add_items_releases_write_lock",  # raw SQL on agent_sessions
    "failed_clear_session_rolls_back",  # _connections
    "failed_pop_item_releases_write_lock",  # _get_connection
    "rollback_failure_evicts_connection",  # _get_connection
    "close_retries_quarantined_connection",  # _quarantined_connections
    "post_commit_cancellation_propagates_after_known_outcome",  # _get_connection
)


@pytest.fixture(scope="module")
def sdk_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpacked_sdist("openai-agents", tmp_path_factory.mktemp("agents-sdist"))


def test_the_sdks_session_tests_pass_on_threadline(sdk_sources: Path) -> None:
    not_internals = " and ".join(f"not {name}" for name in INTERNALS)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [*PYTEST, "-o", "addopts=", "-k", not_internals, *FILES],
        cwd=sdk_sources,
        env={**environment, "PYTHONPATH": str(HERE)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "failed" not in summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 50, summary
