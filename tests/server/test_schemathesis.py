"""schemathesis over /openapi.json, every operation: no 5xx, every response as
documented. Each case is also replayed with another workspace's token when it
addresses one thread: that answers 404 and leaks nothing. It runs in-process
on embedded SQLite, and over real HTTP on a server on PostgreSQL."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.pg import ServerThread, make_token, new_workspace
from threadline.auth import create_token
from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.model import Message
from threadline.recorders.postgres import PostgresRecorder
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.sync.server import ServerLimits, StreamSettings, create_app

SEEDED = "T-example"  # the thread id the schema's examples use
SEED: list[Delta] = [
    ThreadCreate(id=SEEDED, title="secret title A"),
    MessageDelta.of(Message(role="user", content="secret content A")),
]
CROSS_FIELD_RULES = {
    "POST /v1/threads/{thread_id}/deltas",
    "POST /v1/sync/batch",
    "POST /v1/threads",
    "POST /v1/threads/{thread_id}/files",
}


# The app must exist when the module is collected (schemathesis reads its schema
# then); its storage is a temporary directory, filled and closed by `served`.
_DIRECTORY = Path(tempfile.mkdtemp(prefix="threadline-schemathesis-"))
atexit.register(shutil.rmtree, _DIRECTORY, ignore_errors=True)
_STORAGE = SqliteWorkspaces(_DIRECTORY)
_LIMITS = ServerLimits(max_page_size=100, max_deltas_per_push=50)
_STREAMS = StreamSettings(max_seconds=0.05, poll_seconds=0.02)
_APP = create_app(_STORAGE, limits=_LIMITS, streams=_STREAMS)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
# The same schema, called over real HTTP at a base URL given per call (a server
# on the session's PostgreSQL, which starts after collection).
on_postgres = schemathesis.openapi.from_dict(_APP.openapi())


@dataclass
class Served:
    token_a: str
    token_b: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """Tokens of two workspaces; workspace A holds one thread, B nothing."""

    async def setup() -> tuple[str, str]:
        a = await create_token(_STORAGE, "alice", "team-a")
        b = await create_token(_STORAGE, "bob", "team-b")
        await (await _STORAGE.recorder("team-a")).append(SEEDED, 0, SEED)
        return a, b

    token_a, token_b = asyncio.run(setup())
    yield Served(token_a, token_b)
    asyncio.run(_STORAGE.close())


@pytest.fixture(scope="module")
def postgres_served(
    postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Served]]:
    """A server on PostgreSQL (cold storage in a folder) over real HTTP, and
    tokens as :func:`served`'s."""
    team_a, team_b = new_workspace(), new_workspace()

    async def setup() -> tuple[str, str]:
        recorder = await PostgresRecorder.connect(postgres_dsn, workspace=team_a, max_size=1)
        try:
            await recorder.append(SEEDED, 0, SEED)
        finally:
            await recorder.close()
        return await make_token(postgres_dsn, team_a), await make_token(postgres_dsn, team_b)

    tokens = asyncio.run(setup())
    archive = str(tmp_path_factory.mktemp("schemathesis-archive"))
    server = ServerThread(
        create_app(db_url=postgres_dsn, limits=_LIMITS, streams=_STREAMS, archive_url=archive)
    )
    server.start()
    yield server.url, Served(*tokens)
    server.stop()


CHECKED = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@CHECKED
def test_api_conforms_to_its_schema(case: Case[Any], served: Served) -> None:
    status = call_as_documented(case, served)
    assert status < 500
    assert_other_workspace_sees_nothing(case, served, status)


@on_postgres.parametrize()
@CHECKED
def test_api_on_postgres_conforms_to_its_schema(
    case: Case[Any], postgres_served: tuple[str, Served]
) -> None:
    url, served = postgres_served
    status = call_as_documented(case, served, url)
    assert status < 500
    assert_other_workspace_sees_nothing(case, served, status, url)


def call_as_documented(case: Case[Any], served: Served, base_url: str | None = None) -> int:
    """Call ``case`` with workspace A's token and check the answer is as the
    schema documents it (schemathesis' checks, but the two below); its status."""
    # Not checked: pydantic coerces some off-schema values (false -> 0.0) instead
    # of refusing them (lax validation at the edge, on purpose). Valid data must be
    # accepted (positive_data_acceptance: the schema states the limits the server
    # enforces) except where a rule relates a body to the path or the thread's
    # state, which no JSON schema can say: a push on version 0 must start with the
    # thread:create of the path's id, a truncate must not pass the end, a file change
    # must name contents the server stores or that come with it; and free-form
    # JSON (metadata, env, tool input and output: schema `{}`) must hold integers
    # within ±2^53 and nest at most 64 deep, which the schema does not state yet.
    excluded: list[CheckFunction] = [negative_data_rejection]
    if case.operation.label in CROSS_FIELD_RULES:
        excluded.append(positive_data_acceptance)
    response = case.call_and_validate(
        base_url, headers={"Authorization": f"Bearer {served.token_a}"}, excluded_checks=excluded
    )
    return response.status_code


def assert_other_workspace_sees_nothing(
    case: Case[Any], served: Served, status: int, base_url: str | None = None
) -> None:
    """A read or delete of one thread that A's token could make answers 404,
    and leaks nothing, with B's."""
    if "{thread_id}" not in case.path or case.method.upper() not in ("GET", "DELETE"):
        return
    if status >= 300:
        return
    replay = case.call(base_url, headers={"Authorization": f"Bearer {served.token_b}"})
    assert replay.status_code == 404, (case.method, case.formatted_path, replay.text)
    assert "secret" not in replay.text
    assert replay.json()["code"] == "not_found"
