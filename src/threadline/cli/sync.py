"""``threadline sync``: push local changes to a sync server, pull everyone else's.

Thin like every command: resolve the server (flags, environment, config file:
:class:`threadline.sync.status.SyncConfig`), run the library's
:class:`~threadline.sync.service.SyncService` on the local store, print what
each round did.
"""

from __future__ import annotations

import asyncio

import click

from threadline.cli.commands import Settings, console, json_option, print_json
from threadline.recorders.sqlite import SqliteRecorder
from threadline.store import default_db_path
from threadline.sync.client import RemoteRecorder
from threadline.sync.service import SyncReport, SyncService, SyncSettings
from threadline.sync.status import SyncConfig, config_path
from threadline.tiered import sync_kinds


def _summary(report: SyncReport) -> str:
    parts = [
        f"pushed {report.pushed} thread(s) ({report.deltas_pushed} deltas)",
        f"pulled {report.pulled} thread(s) ({report.deltas_pulled} deltas)",
        f"merged {len(report.merged)}",
    ]
    if report.deleted:
        parts.append(f"deleted {report.deleted} on the server")
    if report.conflicts:
        parts.append(f"{len(report.conflicts)} conflict(s) kept (see the sync status)")
    if report.waiting:
        parts.append(f"{report.waiting} waiting to retry")
    if report.failed:
        parts.append(f"{len(report.failed)} failing")
    return ", ".join(parts).capitalize()


def _report_json(report: SyncReport) -> dict[str, object]:
    return {
        "pushed": report.pushed,
        "deltas_pushed": report.deltas_pushed,
        "pulled": report.pulled,
        "deltas_pulled": report.deltas_pulled,
        "merged": report.merged,
        "files_pushed": report.files_pushed,
        "files_pulled": report.files_pulled,
        "deleted": report.deleted,
        "conflicts": report.conflicts,
        "failed": report.failed,
        "waiting": report.waiting,
        "pull_error": report.pull_error,
    }


def resolve_server(
    remote: str | None, token: str | None, *, wanted_by: str | None = None
) -> SyncConfig:
    """The sync server and token: the options, else $THREADLINE_REMOTE /
    $THREADLINE_TOKEN, else the config file; a usage error naming what is
    missing (``wanted_by``: the option that needs a server, for a command
    without --remote/--token)."""
    try:
        config = SyncConfig.resolve(remote, token)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.remote is None or config.token is None:
        name = "remote" if config.remote is None else "token"
        missing = (
            f"Missing --{name}: give it," if wanted_by is None else f"{wanted_by} needs a {name}:"
        )
        raise click.UsageError(
            f"{missing} set $THREADLINE_{name.upper()}, or put it in {config_path()}"
        )
    return config


def sync_service(local: SqliteRecorder, config: SyncConfig, interval: float) -> SyncService:
    """The sync service of the local store ``local`` with the server of ``config``
    (resolved by :func:`resolve_server`), a round every ``interval`` seconds."""
    assert config.remote is not None
    assert config.token is not None
    return SyncService(
        local,
        RemoteRecorder(config.remote, config.token),
        kinds=sync_kinds(config.policies()),
        settings=SyncSettings(interval=interval),
    )


@click.command("sync")
@click.option("--remote", metavar="URL", help="The sync server. Also $THREADLINE_REMOTE.")
@click.option("--token", metavar="TOKEN", help="Its access token. Also $THREADLINE_TOKEN.")
@click.option("--once", is_flag=True, help="One round (push, pull, merge), then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between rounds without --once.",
)
@json_option
@click.pass_obj
def sync(
    settings: Settings,
    remote: str | None,
    token: str | None,
    once: bool,
    interval: float,
    as_json: bool,
) -> int:
    """Sync the local store with a sync server: push local changes, pull the
    other machines', merge conflicting changes (nothing acknowledged is lost).

    Runs a round every --interval seconds until interrupted, printing the rounds
    that moved something; with --once, one round. The server and token come from
    the options, else $THREADLINE_REMOTE / $THREADLINE_TOKEN, else
    $THREADLINE_HOME/sync.toml (keys remote and token). Exit status 1 if a
    thread failed to sync. `threadline list` shows each thread's sync status.
    """
    config = resolve_server(remote, token)
    out = console()

    async def session() -> int:
        local = await asyncio.to_thread(SqliteRecorder, settings.db or default_db_path())
        service = sync_service(local, config, interval)
        try:
            while True:
                report = await service.sync_once()
                failed = bool(report.failed) or report.pull_error is not None
                if as_json:
                    print_json(_report_json(report))
                elif once or report.changed or report.failed:
                    out.print(_summary(report), soft_wrap=True)
                    for thread_id, reason in report.failed.items():
                        out.print(f"  {thread_id} failing: {reason}", soft_wrap=True)
                    if report.pull_error is not None:
                        out.print(f"  Pull failed: {report.pull_error}", soft_wrap=True)
                if once:
                    return 1 if failed else 0
                await asyncio.sleep(interval)
        finally:
            await service.remote.close()
            await local.close()

    return asyncio.run(session())


COMMANDS = (sync,)
