"""``threadline serve`` and ``threadline token create``: the sync server's commands.

Thin like every command: parse, call the library, print. The server's own
modules (FastAPI, uvicorn, asyncpg) are imported only when these commands
run, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from threadline.cli.commands import json_option, print_json


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


COMMANDS = (serve, token)
