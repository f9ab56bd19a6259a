"""``threadline archive``, ``restore`` and ``doctor``: thin mirrors of
``ThreadStore.archive_thread`` / ``archive_inactive_threads``,
``restore_thread`` and ``doctor``.

Progress bars go to stderr (and only to a terminal), so ``--json`` output on
stdout stays clean for scripts. The archive location is the store's default
(``<db>.archive/`` beside the database) unless ``$THREADLINE_ARCHIVE_URL``
names another (``file://``, ``s3://``, ``gs://``, ``az://`` ...).

With ``--remote URL`` (and ``--token T`` or ``$THREADLINE_TOKEN``),
``archive`` and ``restore`` act on the token's workspace on that sync server
instead, in the server's own cold storage: mirrors of
``RemoteRecorder.archive_on_server`` / ``restore_on_server``. Only the option
switches them to a server: ``$THREADLINE_REMOTE`` (which ``threadline sync``
reads) does not, so a machine set up to sync still archives its own store
unless asked, explicitly, to archive the team's threads.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from threadline.cli.commands import Settings, console, json_option, print_json, run
from threadline.cli.render import print_one_line_table
from threadline.lifecycle.doctor import DoctorReport
from threadline.store import ThreadStore
from threadline.sync.client import RemoteRecorder

_T = TypeVar("_T")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``: a :class:`timedelta`."""
    if value is None:
        return None
    found = _DURATION.fullmatch(value.strip())
    if found is None:
        raise click.BadParameter(f"{value!r} is not a duration like 30d, 12h, 90m, 2w or 45s")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


class _Bar:
    """A rich progress bar over threads, on stderr, for terminals only."""

    def __init__(self, label: str) -> None:
        err = Console(stderr=True)
        self._progress = Progress(
            TextColumn(f"[bold]{label}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("threads"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


def remote_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--remote URL`` and ``--token T``: act on a sync server's workspace."""
    command = click.option(
        "--token",
        metavar="TOKEN",
        envvar="THREADLINE_TOKEN",
        help="Token of the workspace on the --remote server. Also $THREADLINE_TOKEN.",
    )(command)
    return click.option(
        "--remote",
        metavar="URL",
        help="Act on this sync server (http://host:8787), in its cold storage, instead of "
        "the local store ($THREADLINE_REMOTE does not switch this command to a server).",
    )(command)


def run_remote(url: str, token: str | None, work: Callable[[RemoteRecorder], Awaitable[_T]]) -> _T:
    """Run ``work`` with a client of the server at ``url``; the server may take
    minutes to archive many threads, so only connecting is quick to time out."""
    if not token:
        raise click.UsageError("--remote needs --token (or $THREADLINE_TOKEN)")

    async def session() -> _T:
        remote = RemoteRecorder(url, token, timeout=httpx.Timeout(3600.0, connect=10.0))
        try:
            return await work(remote)
        finally:
            await remote.close()

    return asyncio.run(session())


def _with_location(
    work: Callable[[ThreadStore], Awaitable[list[str]]],
) -> Callable[[ThreadStore], Awaitable[tuple[list[str], str]]]:
    async def both(store: ThreadStore) -> tuple[list[str], str]:
        return await work(store), store.lifecycle.cold.url

    return both


@click.command(name="archive")
@click.argument("thread_id", metavar="[ID]", required=False)
@click.option(
    "--older-than",
    callback=parse_duration,
    metavar="AGE",
    help="Archive every thread inactive for AGE (30d, 12h, 2w...) instead of one ID.",
)
@click.option("--dry-run", is_flag=True, help="Only print which threads would be archived.")
@remote_options
@json_option
@click.pass_obj
def archive_command(
    settings: Settings,
    thread_id: str | None,
    older_than: timedelta | None,
    dry_run: bool,
    remote: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Move thread ID, or every thread inactive for --older-than, to cold storage.

    Sub-agent threads go with their parent. Archived threads stay listed
    (marked) and are restored on first read, or with `threadline restore`.
    With --remote, the server archives its workspace's threads to its own
    cold storage.
    """
    if (thread_id is None) == (older_than is None):
        raise click.UsageError("Give either a thread ID or --older-than AGE")
    if remote is not None:
        ids = run_remote(
            remote,
            token,
            lambda server: server.archive_on_server(
                older_than=older_than,
                thread_ids=None if thread_id is None else [thread_id],
                dry_run=dry_run,
            ),
        )
        _report_archived(thread_id, ids, remote, dry_run=dry_run, as_json=as_json)
        return
    with _Bar("Archiving") as bar:
        if older_than is not None:
            age = older_than
            ids, location = run(
                settings,
                _with_location(
                    lambda store: store.archive_inactive_threads(
                        older_than=age, dry_run=dry_run, progress=bar
                    )
                ),
            )
        else:
            assert thread_id is not None
            one = thread_id
            ids, location = run(
                settings, _with_location(lambda store: store.archive_thread(one, dry_run=dry_run))
            )
    _report_archived(thread_id, ids, location, dry_run=dry_run, as_json=as_json)


def _report_archived(
    thread_id: str | None, ids: list[str], location: str, *, dry_run: bool, as_json: bool
) -> None:
    if as_json:
        print_json({"dry_run": dry_run, "location": location, "thread_ids": ids})
        return
    for archived_id in ids:
        click.echo(archived_id)
    verb = "Would archive" if dry_run else "Archived"
    if thread_id is not None and not ids:
        click.echo(f"{thread_id} is already archived.", err=True)
    else:
        click.echo(f"{verb} {len(ids)} thread(s) to {location}.", err=True)


@click.command(name="restore")
@click.argument("thread_id", metavar="ID")
@click.option(
    "--without-subagents",
    is_flag=True,
    help="Restore ID alone, leaving its sub-agent threads archived.",
)
@remote_options
@json_option
@click.pass_obj
def restore_command(
    settings: Settings,
    thread_id: str,
    without_subagents: bool,
    remote: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Bring archived thread ID (and its sub-agent threads) back to active storage,
    exactly as it was archived: the same versions, ids and commit times.
    With --remote, on that server."""
    if remote is not None:
        ids = run_remote(
            remote,
            token,
            lambda server: server.restore_on_server(
                thread_id, with_subagents=not without_subagents
            ),
        )
    else:
        with _Bar("Restoring") as bar:
            ids = run(
                settings,
                lambda store: store.restore_thread(
                    thread_id, with_subagents=not without_subagents, progress=bar
                ),
            )
    if as_json:
        print_json({"thread_ids": ids})
        return
    for restored_id in ids:
        click.echo(restored_id)
    if ids:
        click.echo(f"Restored {len(ids)} thread(s).", err=True)
    else:
        click.echo(f"{thread_id} is not archived; nothing to restore.", err=True)


@click.command(name="doctor")
@click.option(
    "--repair",
    is_flag=True,
    help="Fix what can be fixed: rebuild heads from logs, finish interrupted "
    "operations, delete orphan archive objects.",
)
@json_option
@click.pass_obj
def doctor_command(settings: Settings, repair: bool, as_json: bool) -> int:
    """Check heads against logs, totals against messages, relationship links and
    archive objects against their metadata. Exit status 1 while a problem remains."""
    report = run(settings, lambda store: store.doctor(repair=repair))
    if as_json:
        print_json(report.to_json())
    else:
        _print_report(console(), report)
    return 0 if report.clean else 1


def _print_report(out: Console, report: DoctorReport) -> None:
    rows = [
        (
            f.check,
            f.severity if not f.repaired else "repaired",
            f.subject,
            f.detail,
        )
        for f in report.findings
    ]
    if rows:
        print_one_line_table(
            out, ("Check", "State", "Thread or object", "Detail"), rows, flexible=3
        )
    checked = (
        f"{report.active_threads} active threads, {report.archived_threads} archived threads, "
        f"{report.objects} archive objects"
    )
    if report.clean:
        out.print(Text(f"No problems in {checked}.", style="green"), soft_wrap=True)
    else:
        out.print(
            Text(f"{len(report.problems)} problem(s) in {checked}.", style="bold red"),
            soft_wrap=True,
        )


COMMANDS = (archive_command, restore_command, doctor_command)
