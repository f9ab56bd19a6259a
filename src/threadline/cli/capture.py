"""``threadline watch`` and ``threadline hook claude-code``: live capture.

Thin mirrors of :mod:`threadline.importers.live`: ``watch`` catches up on the
agents' session folders, then imports what is written to them as it is
written (and with ``--sync`` pushes it to the sync server in the same
process); ``hook claude-code`` imports the one transcript a Claude Code hook
names. See docs/capture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import signal
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from threadline.cli.commands import Settings
from threadline.cli.hook import transcript_of
from threadline.cli.importing import ImportBar
from threadline.cli.sync import resolve_server, sync_service
from threadline.importers.core import ImportReport
from threadline.importers.live import (
    Agent,
    Unit,
    Watcher,
    catch_up,
    default_folders,
    import_unit,
    unit_of,
)
from threadline.recorders.sqlite import SqliteRecorder
from threadline.store import ThreadStore, default_db_path
from threadline.sync.service import SyncService

_LABELS: dict[Agent, str] = {
    "claude-code": "Claude Code",
    "codex": "Codex",
    "openhands": "OpenHands",
}


class _Status:
    """One status line on stderr: rewritten in place on a terminal, a line per
    import otherwise (a service's journal)."""

    def __init__(self) -> None:
        self._err = Console(stderr=True, highlight=False)
        self._live = self._err.is_terminal

    def show(self, text: str) -> None:
        if self._live:
            width = max(self._err.width - 1, 20)
            sys.stderr.write("\r\x1b[2K" + text[:width])
            sys.stderr.flush()
        else:
            self._err.print(text, soft_wrap=True)

    def done(self) -> None:
        if self._live:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _folders(
    claude: tuple[Path, ...], codex: tuple[Path, ...], openhands: tuple[Path, ...]
) -> dict[Agent, list[Path]]:
    """The folders to watch: those given, else the defaults."""
    if not (claude or codex or openhands):
        return default_folders()
    given: dict[Agent, list[Path]] = {
        "claude-code": list(claude),
        "codex": list(codex),
        "openhands": list(openhands),
    }
    return {agent: paths for agent, paths in given.items() if paths}


def _sync_service(store: ThreadStore, settings: Settings, interval: float) -> SyncService:
    config = resolve_server(None, None, wanted_by="--sync")
    local = store.recorder
    if not isinstance(local, SqliteRecorder):
        local = SqliteRecorder(settings.db or default_db_path())
    return sync_service(local, config, interval)


@click.command("watch")
@click.option(
    "--claude-code",
    "claude",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A Claude Code folder to watch (repeatable). Default ~/.claude/projects.",
)
@click.option(
    "--codex",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A Codex folder to watch (repeatable). Default ~/.codex/sessions.",
)
@click.option(
    "--openhands",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="An OpenHands folder to watch (repeatable). Default ~/.openhands/conversations.",
)
@click.option(
    "--sync",
    "with_sync",
    is_flag=True,
    help="Also sync with the server ($THREADLINE_REMOTE/$THREADLINE_TOKEN or sync.toml).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="With --sync: seconds between sync rounds when nothing was captured.",
)
@click.pass_obj
def watch(
    settings: Settings,
    claude: tuple[Path, ...],
    codex: tuple[Path, ...],
    openhands: tuple[Path, ...],
    with_sync: bool,
    interval: float,
) -> int:
    """Capture agent sessions as they are written: import everything in the
    agents' session folders, then follow them and import each complete line
    within a fraction of a second.

    With no folder options it watches every default folder that exists
    (~/.claude/projects, ~/.codex/sessions, ~/.openhands/conversations).
    Nothing is imported twice and nothing is lost if the watcher is stopped or
    killed: start it again and it catches up. With --sync, captured threads go
    to the sync server in the same process (a round right after each capture).
    Ctrl-C or SIGTERM stops it cleanly. To run it as a user service, see
    docs/capture.md.
    """
    folders = _folders(claude, codex, openhands)
    status = _Status()
    present = {agent: [p for p in paths if p.is_dir()] for agent, paths in folders.items()}
    present = {agent: paths for agent, paths in present.items() if paths}
    if not present:
        wanted = ", ".join(str(p) for paths in folders.values() for p in paths)
        raise click.UsageError(f"None of the folders to watch exists ({wanted})")

    async def session() -> int:
        async with await ThreadStore.open(settings.db) as store:
            service = _sync_service(store, settings, interval) if with_sync else None
            loop = asyncio.get_running_loop()
            reports: dict[Agent, ImportReport] = {}
            for agent in present:
                with ImportBar(f"Catching up {_LABELS[agent]}") as bar:
                    reports.update(await catch_up(store, {agent: present[agent]}, lambda _: bar))
            caught = sum(r.messages for r in reports.values())
            sessions = sum(r.sessions for r in reports.values())
            where = ", ".join(f"{_LABELS[a]} {', '.join(map(str, p))}" for a, p in present.items())

            def line(extra: str = "") -> str:
                s = watcher.stats
                text = (
                    f"watching {where} · caught up {sessions} sessions ({caught:,} new messages)"
                    f" · captured {s.messages:,} messages in {s.imports} imports"
                )
                if s.failures:
                    text += f" · {s.failures} failed (last: {s.last_error})"
                return text + extra

            async def imported(unit: Unit, report: ImportReport) -> None:
                if report.messages and service is not None:
                    service.kick()
                stamp = time.strftime("%H:%M:%S")
                status.show(line(f" · {stamp} {unit.path.name}"))

            def failed(unit: Unit, exc: Exception) -> None:
                status.show(line())

            watcher = Watcher(store, present, on_import=imported, on_error=failed)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, watcher.stop)
            if service is not None:
                service.start()
            try:
                await watcher.run(ready=lambda: status.show(line()))
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
                if service is not None:
                    await service.stop()
                    with contextlib.suppress(Exception):
                        await service.sync_once()  # what was captured last
                    await service.remote.close()
                    if service.local is not store.recorder:
                        await service.local.close()
                status.done()
            return 0

    return asyncio.run(session())


@click.group("hook")
def hook() -> None:
    """Import from an agent's hook (see docs/capture.md)."""


@hook.command("claude-code")
@click.option(
    "--wait",
    is_flag=True,
    help="Import before exiting, in this process (by default the import is handed "
    "to a background process, so the hook returns at once).",
)
@click.option(
    "--log-errors",
    is_flag=True,
    help="Append a failure to hook.log beside the store (for the background process).",
)
def hook_claude_code(wait: bool, log_errors: bool) -> None:
    """Import the transcript a Claude Code hook names, read as the hook's JSON
    on stdin (session_id, transcript_path, hook_event_name), with the rest of
    its project folder. Prints nothing and returns at once: the import runs in
    a background process (--wait: in this one). Bad input goes to stderr with
    exit status 1, which Claude Code shows without stopping the agent. For the
    Stop, SubagentStop, SessionEnd and PreCompact hooks: see docs/capture.md.
    """
    del wait  # reached only in-process: threadline.cli.main hands the rest over
    settings: Settings = click.get_current_context().find_object(Settings) or Settings(None)
    try:
        path = transcript_of(sys.stdin.buffer.read())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    unit = unit_of("claude-code", path.parent.parent, path)
    assert unit is not None
    db = Path(settings.db) if settings.db else default_db_path()

    async def session() -> None:
        async with await ThreadStore.open(settings.db) as store:
            await import_unit(store, unit)

    db.parent.mkdir(parents=True, exist_ok=True)
    with db.with_name(db.name + ".hook-lock").open("a") as lock:
        # One hook import at a time per store: Stop and SubagentStop come together.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            asyncio.run(session())
        except Exception as exc:
            if log_errors:
                with db.with_name("hook.log").open("a") as log:
                    log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {path}: {exc!r}\n")
            raise


COMMANDS = (watch, hook)
