"""``threadline serve`` and ``threadline token create``: the sync server's commands.

Thin like every command: parse, call the library, print. The server's own
modules (FastAPI, uvicorn, asyncpg) are imported only when these commands
run, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from threadline.cli.commands import json_option, print_json

if TYPE_CHECKING:
    from threadline.auth import TokenRecord
    from threadline.recorders.workspaces import Workspaces

_T = TypeVar("_T")


def server_home() -> Path:
    """Where the embedded server keeps its SQLite files: ``$THREADLINE_HOME/server``."""
    return Path(os.environ.get("THREADLINE_HOME") or Path.home() / ".threadline") / "server"


_DB_HELP = (
    "PostgreSQL URL (postgresql://user:pass@host/db) or a directory for the embedded "
    "SQLite store. Default: $THREADLINE_HOME/server. Also $THREADLINE_DB."
)


_WORKERS_HELP = (
    "Server processes sharing the port (PostgreSQL only: they share the database, "
    "which decides versions, leases and the change feed). With the embedded SQLite "
    "store, only 1: one process owns its writer, so more is refused (exit code 2)."
)


@click.command("serve")
@click.option("--db", "db_url", metavar="URL", envvar="THREADLINE_DB", help=_DB_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--archive-url",
    metavar="URL",
    envvar="THREADLINE_ARCHIVE_URL",
    help="Cold storage of archived threads, one prefix per workspace: a folder, or an "
    "s3://, gs://, az:// URL. Default: the archive/ folder beside the SQLite files, or "
    "$THREADLINE_HOME/server/archive. Also $THREADLINE_ARCHIVE_URL.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 512),
    help=_WORKERS_HELP,
)
def serve(db_url: str | None, host: str, port: int, archive_url: str | None, workers: int) -> None:
    """Run the sync server (HTTP API, OpenAPI at /openapi.json) until interrupted.

    Every route but /healthz needs a token: make one with `threadline token create`.
    """
    import uvicorn

    from threadline.recorders.workspaces import is_postgres_url, masked_url
    from threadline.sync import server

    postgres = db_url is not None and is_postgres_url(db_url)
    if workers > 1 and not postgres:
        raise click.UsageError(
            f"--workers {workers} needs PostgreSQL (--db postgresql://...): the embedded "
            "SQLite store is written by one process. Run one worker, or use PostgreSQL."
        )
    where = masked_url(db_url) if db_url else str(server_home())
    plural = f", {workers} workers" if workers > 1 else ""
    click.echo(
        f"threadline sync server on http://{host}:{port} (storage: {where}{plural})", err=True
    )
    if workers == 1:
        app = server.create_app(db_url=db_url, default_dir=server_home(), archive_url=archive_url)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
        return
    # Each worker process builds its own app (and database pool) from the environment.
    os.environ[server.ENV_DB] = db_url or ""
    os.environ[server.ENV_SERVER_HOME] = str(server_home())
    os.environ[server.ENV_ARCHIVE_URL] = archive_url or ""
    uvicorn.run(
        f"{server.__name__}:{server.app_from_environment.__name__}",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
    )


@click.group("token")
def token() -> None:
    """Access tokens of the sync server."""


@token.command("create")
@click.option("--user", required=True, help="Who the token is for (a name or an email).")
@click.option("--workspace", required=True, help="The only workspace the token can use.")
@click.option("--db", "db_url", metavar="URL", envvar="THREADLINE_DB", help=_DB_HELP)
@json_option
def token_create(user: str, workspace: str, db_url: str | None, as_json: bool) -> None:
    """Make a token for USER in WORKSPACE and print it. It is shown only this once:
    the server keeps only its hash."""
    from threadline.auth import check_user, check_workspace, create_token
    from threadline.recorders.workspaces import open_workspaces

    try:
        check_user(user)
        check_workspace(workspace)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc

    async def make() -> str:
        storage = await open_workspaces(db_url, default_dir=server_home())
        try:
            return await create_token(storage, user, workspace)
        finally:
            await storage.close()

    made = asyncio.run(make())
    if as_json:
        print_json({"token": made, "user": user, "workspace": workspace})
    else:
        click.echo(made)


def _with_storage(db_url: str | None, work: Callable[[Workspaces], Awaitable[_T]]) -> _T:
    from threadline.recorders.workspaces import open_workspaces

    async def run() -> _T:
        storage = await open_workspaces(db_url, default_dir=server_home())
        try:
            return await work(storage)
        finally:
            await storage.close()

    return asyncio.run(run())


@token.command("list")
@click.option("--db", "db_url", metavar="URL", envvar="THREADLINE_DB", help=_DB_HELP)
@json_option
def token_list(db_url: str | None, as_json: bool) -> None:
    """List the server's tokens, oldest first: id, user, workspace, created (never
    a secret: the server does not keep them)."""

    async def read(storage: Workspaces) -> list[TokenRecord]:
        return await storage.list_tokens()

    records = _with_storage(db_url, read)
    rows = [
        {"id": r.token_id, "user": r.user, "workspace": r.workspace, "created": r.created}
        for r in records
    ]
    if as_json:
        print_json({"tokens": rows})
        return
    if not rows:
        click.echo("No tokens. Make one with `threadline token create`.")
    for row in rows:
        created = datetime.fromtimestamp(int(row["created"]) / 1000, UTC)  # type: ignore[call-overload]
        click.echo(
            f"{row['id']}  {row['workspace']}  {row['user']}  "
            f"{created.isoformat(timespec='seconds')}"
        )


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@click.option("--db", "db_url", metavar="URL", envvar="THREADLINE_DB", help=_DB_HELP)
@json_option
def token_revoke(token_id: str, db_url: str | None, as_json: bool) -> None:
    """Revoke token ID (the 12 hex digits after ``tl_``, as `token list` shows):
    every server process refuses it within a second. Exit 1 if there is no such token."""
    from threadline.auth import parse_token

    parsed = parse_token(token_id)
    wanted = parsed[0] if parsed is not None else token_id  # a whole token names its id too

    async def revoke(storage: Workspaces) -> bool:
        return await storage.revoke_token(wanted)

    revoked = _with_storage(db_url, revoke)
    if as_json:
        print_json({"id": wanted, "revoked": revoked})
    elif revoked:
        click.echo(f"Token {wanted} revoked")
    if not revoked and not as_json:
        raise click.ClickException(f"No token {wanted}; list them with `threadline token list`")
    if not revoked:
        raise SystemExit(1)


COMMANDS = (serve, token)
