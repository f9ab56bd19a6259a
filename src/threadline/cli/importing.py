"""``threadline import``, ``export`` and ``search``: thin mirrors of
:mod:`threadline.importers`, :mod:`threadline.export` and ``ThreadStore.search``.

The import progress bar and warnings go to stderr, so ``--json`` output on
stdout stays clean for scripts.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from threadline import export
from threadline.cli.commands import Settings, console, json_option, print_json, run
from threadline.cli.render import clip, dollars
from threadline.errors import ThreadlineError
from threadline.importers import ImportReport, import_claude_code, import_codex, import_export
from threadline.importers.openhands import OpenHandsReport, import_openhands
from threadline.importers.progress import ImportProgress
from threadline.store import ThreadStore

SHOWN_MALFORMED = 20
_Importer = Callable[..., Awaitable[ImportReport]]


class ImportBar(ImportProgress):
    """A rich progress bar over the files of an import, on stderr, for terminals only."""

    def __init__(self, label: str) -> None:
        err = Console(stderr=True)
        self._progress = Progress(
            TextColumn(f"[bold]{label}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[file]}", style="dim"),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self._task = self._progress.add_task(label, total=None, file="")

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

    def start(self, total_files: int) -> None:
        self._progress.update(self._task, total=total_files)

    def advance(self, path: Path) -> None:
        self._progress.update(self._task, advance=1, file=clip(path.name, 40))


def _run_import(
    settings: Settings,
    importer: _Importer,
    paths: tuple[Path, ...],
    label: str,
    as_json: bool,
    *,
    check: bool = True,
) -> ImportReport:
    """Import ``paths``; a path that does not exist is reported and the others
    imported, and the command exits 1 if a path was missing or nothing of
    ``label`` was found (issue 13). ``check=False`` leaves both to an importer
    that reports its own problems."""
    missing = [path for path in paths if check and not path.exists()]
    for path in missing:
        click.echo(f"error: no such file or folder: {path}", err=True)
    found = [path for path in paths if path not in missing]
    if paths and not found:
        raise SystemExit(1)
    with ImportBar(label) as bar:
        report = run(settings, lambda store: importer(store, found, progress=bar))
    for bad in report.malformed_lines[:SHOWN_MALFORMED]:
        click.echo(f"warning: skipped malformed line {bad}", err=True)
    if report.malformed > SHOWN_MALFORMED:
        more = report.malformed - SHOWN_MALFORMED
        click.echo(f"warning: and {more} more malformed lines (see --json)", err=True)
    if as_json:
        print_json(report.to_json())
    else:
        print_report(console(), report)
    if check and report.sessions == 0:
        where = ", ".join(str(p) for p in found) or "the default folder"
        click.echo(
            f"error: no {label} session found in {where} "
            f"({report.files} session files read, {report.malformed} malformed lines)",
            err=True,
        )
    if missing or (check and report.sessions == 0):
        raise SystemExit(1)
    return report


def _edits(report: ImportReport) -> str:
    """The agents' own edits recorded as file changes, and how many of them lack
    a content the transcript did not hold (see importers/edits.py)."""
    text = f"{report.edits_recorded:,}"
    unknown = [
        f"{count:,} with the content {side} not recorded in the transcript"
        for side, count in (
            ("before", report.edits_unknown_before),
            ("after", report.edits_unknown_after),
        )
        if count
    ]
    return text + (f" ({', '.join(unknown)})" if unknown else "")


def print_report(out: Console, report: ImportReport) -> None:
    """The import summary: what was new in this run, and what was skipped."""
    table = Table(title="Imported", title_justify="left", box=None, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    cost = dollars(report.cost_usd)
    if report.computed_cost_messages:
        cost += f" ({report.computed_cost_messages} responses priced from genai-prices)"
    if report.unpriced_messages:
        cost += f" (+{report.unpriced_messages} unpriced)"
    rows = (
        ("Files read", f"{report.files:,}"),
        ("Sessions", f"{report.sessions:,}"),
        ("Threads created / updated", f"{report.threads_created:,} / {report.threads_updated:,}"),
        ("Messages", f"{report.messages:,}"),
        ("Tool calls", f"{report.tool_calls:,}"),
        ("Sub-agent threads", f"{report.subagent_threads:,}"),
        ("Summary threads", f"{report.summary_threads:,}"),
        (
            "Tokens",
            f"{report.tokens:,} ({report.input_tokens:,} in, {report.output_tokens:,} out, "
            f"{report.cache_read_tokens:,} cache read, {report.cache_write_tokens:,} cache write)",
        ),
        ("Cost", cost),
        ("Already imported", f"{report.already_imported:,} messages"),
        ("Replayed lines (resumes, forks)", f"{report.replayed:,}"),
        ("Malformed lines", f"{report.malformed:,}"),
        ("File edits recorded", _edits(report)),
    )
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    if report.skipped:
        skipped = Table(title="Skipped (no mapping)", title_justify="left", box=None)
        skipped.add_column("record type")
        skipped.add_column("lines", justify="right")
        for kind, count in sorted(report.skipped.items(), key=lambda item: (-item[1], item[0])):
            skipped.add_row(kind, f"{count:,}")
        out.print(skipped)
    if report.edits_left_out:
        left_out = Table(title="File edits not recorded", title_justify="left", box=None)
        left_out.add_column("why")
        left_out.add_column("edits", justify="right")
        for why, count in sorted(report.edits_left_out.items()):
            left_out.add_row(why, f"{count:,}")
        out.print(left_out)
    if report.unlinked:
        out.print(
            f"{len(report.unlinked)} sub-agent or summary threads name a parent that is not "
            "in the store; import the parent session to link them.",
            style="yellow",
        )


_PATHS = click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path(path_type=Path))


@click.group(name="import")
def import_group() -> None:
    """Import sessions from other agents' files, or a threadline export.

    Importing is idempotent: running it again, or on a session that grew,
    adds only what is new.
    """


@import_group.command(name="claude-code")
@_PATHS
@json_option
@click.pass_obj
def import_claude_code_command(settings: Settings, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import Claude Code sessions: files or folders (default ~/.claude/projects)."""
    _run_import(settings, import_claude_code, paths, "Claude Code", as_json)


@import_group.command(name="codex")
@_PATHS
@json_option
@click.pass_obj
def import_codex_command(settings: Settings, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import Codex rollouts: files or folders (default ~/.codex/sessions)."""
    _run_import(settings, import_codex, paths, "Codex", as_json)


@import_group.command(name="openhands")
@click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path(path_type=Path))
@json_option
@click.pass_obj
def import_openhands_command(settings: Settings, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import OpenHands conversation folders (default ~/.openhands/conversations).

    A PATH that is missing or holds no conversation is reported, the others
    are imported, and the command exits 1.
    """
    report = _run_import(settings, import_openhands, paths, "OpenHands", as_json, check=False)
    if isinstance(report, OpenHandsReport) and report.problems:
        for problem in report.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)


@import_group.command(name="json")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="FILE...",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@json_option
@click.pass_obj
def import_json_command(settings: Settings, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import files written by `threadline export --format json` (or jsonl)."""
    _run_import(settings, import_export, paths, "threadline export", as_json)


@click.command(name="export")
@click.argument("thread_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "md"]),
    default="json",
    show_default=True,
    help="json (re-importable), jsonl (a line per thread and message) or md (for people).",
)
@click.option(
    "--tree", is_flag=True, help="Also export every sub-agent and summary thread below ID."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write to FILE instead of stdout.",
)
@click.pass_obj
def export_command(
    settings: Settings, thread_id: str, fmt: export.Format, tree: bool, output: Path | None
) -> None:
    """Export thread ID (and with --tree its sub-agent and summary threads)."""

    async def collect(store: ThreadStore) -> export.ExportedTree:
        return await export.collect(store, thread_id, tree=tree)

    found = run(settings, collect)
    data = export.render(found.threads, fmt, found.costs)
    for missing in found.missing:
        click.echo(f"warning: linked thread {missing} no longer exists; not exported", err=True)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"Wrote {len(found.threads)} thread(s) to {output}", err=True)


@click.command(name="search")
@click.argument("query")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="Most hits to show.",
)
@json_option
@click.pass_obj
def search_command(settings: Settings, query: str, limit: int, as_json: bool) -> None:
    """Full-text search of message content, tool calls and results, and titles.

    Words are ANDed; "a quoted phrase" must match as a whole; word* matches a prefix.
    """
    try:
        hits = run(settings, lambda store: store.search(query, limit=limit))
    except ValueError as exc:
        if isinstance(exc, ThreadlineError):
            raise
        raise click.BadParameter(str(exc), param_hint="'QUERY'") from exc
    if as_json:
        print_json(
            {
                "query": query,
                "hits": [
                    {
                        "thread_id": hit.thread_id,
                        "message_id": hit.message_id,
                        "kind": hit.kind,
                        "thread_title": hit.thread_title,
                        "score": hit.score,
                        "snippet": hit.snippet,
                        "highlights": [list(span) for span in hit.highlights],
                    }
                    for hit in hits
                ],
            }
        )
        return
    out = console()
    if not hits:
        out.print(f"No match for {query!r}.", style="dim")
        return
    for hit in hits:
        where = Text()
        where.append(hit.thread_title or "(untitled)", style="bold")
        where.append(f"  {hit.thread_id}", style="dim")
        where.append(f"  {hit.message_id}" if hit.message_id else "  (title)", style="cyan")
        where.append(f"  {hit.score:.2f}", style="dim")
        snippet = Text(hit.snippet)
        for start, end in hit.highlights:
            snippet.stylize("bold yellow", start, end)
        snippet.pad_left(4)
        out.print(where, soft_wrap=True)
        out.print(snippet)
