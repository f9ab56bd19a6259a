"""``threadline files`` and ``rollback``: thin mirrors of ``ThreadStore.file_operations``,
``rollback_operation`` and ``rollback_to``.

``rollback`` exits with status 1 when it refused a file or failed to write one
(its report, on stdout, says which and why), so scripts notice.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from threadline.cli.commands import Settings, console, json_option, print_json, run
from threadline.cli.render import when
from threadline.files.log import FileChange, State, UnknownContent
from threadline.files.rollback import RollbackReport
from threadline.files.tracking import FileOperation

_STATUS_STYLES = {
    "done": "green",
    "planned": "cyan",
    "unchanged": "dim",
    "refused": "bold red",
    "failed": "bold red",
}


def _diff_line(line: str) -> Text:
    if line.startswith(("+++", "---")):
        return Text(line, style="bold")
    if line.startswith("+"):
        return Text(line, style="green")
    if line.startswith("-"):
        return Text(line, style="red")
    if line.startswith("@@"):
        return Text(line, style="cyan")
    return Text(line)


def _size(state: State) -> str:
    if state is None:
        return "-"
    return "?" if isinstance(state, UnknownContent) else f"{state.size} B"


def _unrecorded(change: FileChange) -> str:
    """The listing's note on a change with a content not recorded (else empty)."""
    sides = [
        side
        for side, unknown in (("before", change.before_unknown), ("after", change.after_unknown))
        if unknown
    ]
    return f"  ({' and '.join(sides)} not recorded in the transcript)" if sides else ""


def _operation_title(op: FileOperation) -> Text:
    title = Text.assemble(("Operation ", "bold"), (op.operation_id, "bold cyan"))
    rollback = op.rollback
    if rollback is not None:
        what = (
            f"operation {rollback.undoes_operation}"
            if rollback.undoes_operation is not None
            else f"every change after message {rollback.after_message}"
        )
        title.append(f"  rollback of {what}", style="magenta")
        if rollback.finished is None:
            title.append("  (interrupted: run it again to finish)", style="bold red")
    if op.reverted:
        title.append("  (rolled back)", style="yellow")
    return title


def print_operations(out: Console, thread_id: str, operations: list[FileOperation]) -> None:
    if not operations:
        out.print(f"Thread {thread_id} has no recorded file changes.")
        return
    for op in operations:
        out.print(_operation_title(op))
        for item in op.changes:
            change = item.change
            sizes = f"{_size(change.before)} -> {_size(change.after)}"
            out.print(
                Text.assemble(
                    f"  #{change.seq} ",
                    (f"{change.type:<6} ", "bold"),
                    change.path,
                    (f"  {sizes}  {when(change.at)}", "dim"),
                    (_unrecorded(change), "yellow"),
                )
            )
            for line in item.diff.splitlines():
                out.print(Text("    ") + _diff_line(line), soft_wrap=True)
        out.print()


@click.command(name="files")
@click.argument("thread_id", metavar="ID")
@click.option("--operation", "operation_id", metavar="OP", help="Only this operation's changes.")
@click.option("--no-diff", is_flag=True, help="List the changes without their diffs.")
@json_option
@click.pass_obj
def files_command(
    settings: Settings, thread_id: str, operation_id: str | None, no_diff: bool, as_json: bool
) -> None:
    """Show the files thread ID's tool calls changed, by operation, with unified diffs.

    Rollbacks are operations too (their ids start with R-); an operation all of
    whose changes were undone is marked rolled back. A change imported from a
    transcript that did not show the file before (or after) it is listed with
    that content marked "not recorded" (size ?), and no diff.
    """
    operations = run(
        settings,
        lambda store: store.file_operations(
            thread_id, operation_id=operation_id, diffs=not no_diff
        ),
    )
    if as_json:
        print_json(
            {
                "thread_id": thread_id,
                "operations": [op.model_dump(mode="json") for op in operations],
            }
        )
        return
    print_operations(console(), thread_id, operations)


def print_report(out: Console, report: RollbackReport) -> None:
    target = (
        f"operation {report.undoes_operation}"
        if report.undoes_operation is not None
        else f"every change after message {report.after_message}"
    )
    verb = "Would roll back" if report.dry_run else "Rolled back"
    out.print(f"{verb} {target} of thread {report.thread_id}.", soft_wrap=True)
    if report.resumed:
        out.print(f"Finished the interrupted rollback {report.operation_id}.", soft_wrap=True)
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("path", "action", "status", "why"):
        table.add_column(column, overflow="fold")
    for outcome in report.files:
        status = outcome.status + (" (forced)" if outcome.forced else "")
        table.add_row(
            outcome.path,
            outcome.action,
            Text(status, style=_STATUS_STYLES[outcome.status]),
            outcome.reason or "",
        )
    if report.files:
        out.print(table)
    counts: dict[str, int] = {}
    for outcome in report.files:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no files"
    out.print(f"{summary}.")
    if report.dry_run:
        out.print("Dry run: nothing was changed.", style="dim")
    elif report.operation_id is not None and report.finished:
        out.print(
            f"Recorded as operation {report.operation_id}; undo it with: threadline rollback "
            f"{report.thread_id} --operation {report.operation_id}",
            soft_wrap=True,
        )
    if any(not outcome.unrecorded for outcome in report.refused):
        out.print("Refused files were left as they are; --force overwrites them.", style="yellow")
    if any(outcome.unrecorded for outcome in report.refused):
        out.print(
            "Files whose earlier content was never recorded cannot be rolled back, not even "
            "with --force; restore them by hand.",
            style="yellow",
        )
    if report.failed:
        out.print("Some files failed; run the same rollback again to finish it.", style="red")


@click.command(name="rollback")
@click.argument("thread_id", metavar="ID")
@click.option("--operation", "operation_id", metavar="OP", help="Undo this operation's changes.")
@click.option(
    "--to-message",
    "message_id",
    metavar="MSG",
    help="Undo every change recorded after message MSG (rewind the files to it).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be done; change nothing.")
@click.option(
    "--force", is_flag=True, help="Overwrite files edited since the change (recorded, undoable)."
)
@json_option
@click.pass_context
def rollback_command(
    ctx: click.Context,
    thread_id: str,
    operation_id: str | None,
    message_id: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Undo the file changes of one operation (--operation) or of everything after
    a message (--to-message) in thread ID, and report per file what was done.

    A file edited since the change is refused unless --force; a file whose
    earlier content was never recorded (an imported edit whose transcript did
    not show it) is refused even then. The rollback is
    recorded as an operation of its own, so it can be rolled back in turn.
    Running an interrupted rollback again finishes it. Exits with status 1 if
    a file was refused or failed.
    """
    settings: Settings = ctx.obj
    if (operation_id is None) == (message_id is None):
        raise click.UsageError("Give exactly one of --operation OP and --to-message MSG")
    if operation_id is not None:
        op = operation_id
        report = run(
            settings,
            lambda store: store.rollback_operation(thread_id, op, force=force, dry_run=dry_run),
        )
    else:
        assert message_id is not None
        msg = message_id
        report = run(
            settings, lambda store: store.rollback_to(thread_id, msg, force=force, dry_run=dry_run)
        )
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        print_report(console(), report)
    if not report.ok:
        ctx.exit(1)


COMMANDS = (files_command, rollback_command)
