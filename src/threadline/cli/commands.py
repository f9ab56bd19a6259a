"""The ``threadline`` commands: parse the arguments, call ThreadStore, render.

No business rules here: each command is one or two library calls. ``--json``
prints the library's own data (its pydantic models dumped to JSON) for
scripts. Errors propagate to :func:`threadline.cli.main`, which reports them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console

from threadline.cli import render
from threadline.cli.demo import record_demo_session
from threadline.costs import CostLine
from threadline.errors import ThreadlineError
from threadline.model import MAX_COST_USD, Message, ThreadListPage, ThreadPage
from threadline.store import ThreadStore

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class Settings:
    """The global options, handed to every command."""

    db: str | None


def run(settings: Settings, work: Callable[[ThreadStore], Awaitable[_T]]) -> _T:
    """Open the store, run ``work`` on it, close the store (final save of writers)."""

    async def session() -> _T:
        async with await ThreadStore.open(settings.db) as store:
            return await work(store)

    return asyncio.run(session())


PIPE_WIDTH = 120


def console() -> Console:
    """Rich output to stdout; a terminal's own width, else ``$COLUMNS``, else 120 columns."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPE_WIDTH if wide else None)


def print_json(data: object) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def json_option(command: _F) -> _F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text."
    )(command)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Each command has --help and --json. Reference: docs/cli.md.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="SQLite file to use. Default: $THREADLINE_HOME/threads.db (~/.threadline/threads.db).",
)
@click.version_option(package_name="threadline")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """threadline: versioned, durable storage for the conversation threads of AI coding agents.

    A thread is an append-only log of deltas; every change makes a new version.
    """
    ctx.obj = Settings(db=db)


@cli.command()
@json_option
@click.pass_obj
def demo(settings: Settings, as_json: bool) -> None:
    """Record a realistic coding-agent session, then print it and its cost.

    The session has user and assistant turns, tool calls with results (one an
    error), usage and cost on every assistant message, a title change and a
    truncate-and-retry. It is written to the store like any other thread.
    """
    session = run(settings, record_demo_session)
    visible = session.visible_head
    if as_json:
        print_json(
            {
                "thread": session.thread.model_dump(mode="json"),
                "location": session.location,
                "truncated_at_version": session.truncated_at_version,
                "dropped_messages": session.dropped_messages,
                "totals": session.head.totals.model_dump(mode="json"),
                "visible_totals": visible.totals.model_dump(mode="json"),
            }
        )
        return
    out = console()
    out.print(render.head_line(session.head))
    render.print_messages(out, session.thread.messages, 0)
    out.print(
        f"Version {session.truncated_at_version} truncated {session.dropped_messages} messages "
        "(a wrong edit, rejected); the retry follows it. `threadline log` still shows them.",
        style="dim",
    )
    out.print()
    render.print_costs(
        out,
        session.head.totals,
        visible.totals,
        visible_messages=visible.message_count,
        dropped_messages=session.dropped_messages,
    )
    out.print()
    out.print(f"Recorded in {session.location} as {session.thread.id}.", soft_wrap=True)
    out.print(
        f"Next: threadline show {session.thread.id}  ·  threadline log {session.thread.id}",
        soft_wrap=True,
    )


@cli.command()
@click.option("--title", help="Title of the thread.")
@click.option("--id", "thread_id", metavar="ID", help="Use this id instead of a generated one.")
@click.option(
    "--cwd",
    type=click.Path(file_okay=False),
    help="Working directory to record in the thread's env (default: the current one).",
)
@click.option(
    "--no-env",
    is_flag=True,
    help="Do not capture the execution context (git branch, OS, versions).",
)
@json_option
@click.pass_obj
def new(
    settings: Settings,
    title: str | None,
    thread_id: str | None,
    cwd: str | None,
    no_env: bool,
    as_json: bool,
) -> None:
    """Create a thread and print its id."""
    thread = run(
        settings,
        lambda store: store.create_thread(
            title=title,
            id=thread_id,
            env={"cwd": cwd} if cwd is not None else None,
            capture_environment=not no_env,
        ),
    )
    if as_json:
        print_json(thread.model_dump(mode="json"))
    else:
        click.echo(thread.id)


def _read_input(content: str | None) -> str:
    if content is not None and content != "-":
        return content
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


@cli.command()
@click.argument("thread_id", metavar="ID")
@click.argument("content", required=False)
@click.option(
    "--role", type=click.Choice(ROLES), help="Who speaks (required without --message-json)."
)
@click.option("--model", help="Model that produced the message (assistant usage).")
@click.option(
    "--input-tokens", type=click.IntRange(min=0), metavar="N", help="Uncached input tokens."
)
@click.option("--output-tokens", type=click.IntRange(min=0), metavar="N", help="Output tokens.")
@click.option(
    "--cache-read-tokens",
    type=click.IntRange(min=0),
    metavar="N",
    help="Input tokens read from cache.",
)
@click.option(
    "--cache-write-tokens",
    type=click.IntRange(min=0),
    metavar="N",
    help="Input tokens written to cache.",
)
@click.option(
    "--cost",
    type=click.FloatRange(min=0, max=MAX_COST_USD),
    metavar="USD",
    help="Cost of the response in USD.",
)
@click.option(
    "--expected-version",
    type=click.IntRange(min=1),
    metavar="V",
    help="Refuse (exit 1) unless the thread is at version V: optimistic concurrency.",
)
@click.option(
    "--message-json",
    is_flag=True,
    help="CONTENT (or stdin) is a whole Message JSON object: role, content, tool_calls, ...",
)
@json_option
@click.pass_obj
def add(
    settings: Settings,
    thread_id: str,
    content: str | None,
    role: str | None,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
    cost: float | None,
    expected_version: int | None,
    message_json: bool,
    as_json: bool,
) -> None:
    """Append a message to thread ID.

    CONTENT is the message text; without it, or with "-", it is read from stdin
    (one trailing newline dropped). Prints the thread's new version.
    """
    usage = {
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cost_usd": cost,
    }
    given = {key: value for key, value in usage.items() if value is not None}
    if message_json:
        if role is not None or given:
            raise click.UsageError(
                "--message-json takes role and usage from the JSON; drop the flags"
            )
        message = Message.model_validate_json(_read_input(content))
    else:
        if role is None:
            raise click.UsageError("Missing option '--role' (user, assistant or system)")
        fields: dict[str, object] = {"role": role, "content": _read_input(content)}
        if given:
            fields["usage"] = given
        message = Message.model_validate(fields)
    version = run(
        settings,
        lambda store: store.append_message(thread_id, message, expected_version=expected_version),
    )
    if as_json:
        print_json(
            {"thread_id": thread_id, "v": version, "message": message.model_dump(mode="json")}
        )
    else:
        click.echo(
            f"{thread_id} is at version {version} (added {message.role} message {message.id})"
        )


@cli.command(name="list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=50,
    show_default=True,
    help="Threads per page.",
)
@click.option("--cursor", metavar="C", help="Continue after a previous page (its next cursor).")
@click.option("--no-archived", is_flag=True, help="Leave out archived threads.")
@json_option
@click.pass_obj
def list_threads(
    settings: Settings, limit: int, cursor: str | None, no_archived: bool, as_json: bool
) -> None:
    """List threads, newest activity first, with version, size and cost;
    archived threads are marked."""

    async def work(
        store: ThreadStore,
    ) -> tuple[ThreadListPage, dict[str, str] | None, dict[str, CostLine]]:
        page = await store.list_threads(
            limit=limit, cursor=cursor, include_archived=not no_archived
        )
        ids = [head.id for head in page.threads]
        return page, await _sync_statuses(store, ids), await store.thread_costs(ids)

    try:
        page, statuses, costs = run(settings, work)
    except ValueError as exc:
        if isinstance(exc, ThreadlineError):
            raise
        raise click.BadParameter(str(exc), param_hint="'--cursor'") from exc
    if as_json:
        print_json(
            {
                **page.model_dump(mode="json"),
                "costs": {tid: line.model_dump(mode="json") for tid, line in costs.items()},
                **({"sync": statuses} if statuses else {}),
            }
        )
    else:
        render.print_thread_list(console(), page, statuses, costs)


@cli.command(short_help="Show a page of a thread's messages (the newest by default).")
@click.argument("thread_id", metavar="ID")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=50,
    show_default=True,
    help="Messages per page.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    metavar="N",
    default=0,
    show_default=True,
    help="Skip this many of the newest messages (counted back from --before, if given).",
)
@click.option(
    "--before",
    type=click.IntRange(min=0),
    metavar="POS",
    help="Show the page that ends just before message #POS (the older page).",
)
@json_option
@click.pass_obj
def show(
    settings: Settings,
    thread_id: str,
    limit: int,
    offset: int,
    before: int | None,
    as_json: bool,
) -> None:
    """Show a page of thread ID's messages: the newest page by default, oldest first."""

    async def work(store: ThreadStore) -> tuple[ThreadPage, str | None, CostLine]:
        page = await store.load_thread(thread_id, limit, offset, before=before)
        statuses = await _sync_statuses(store, [thread_id])
        cost = (await store.thread_costs([page.id]))[page.id]
        return page, None if statuses is None else statuses.get(thread_id, "-"), cost

    page, status, cost = run(settings, work)
    if as_json:
        print_json(
            {
                **page.model_dump(mode="json"),
                "total_messages": page.total_messages,
                "first_index": page.first_index,
                "cost": cost.model_dump(mode="json"),
                **({"sync": status} if status is not None else {}),
            }
        )
    else:
        render.print_page(console(), page, status, cost)


async def _sync_statuses(store: ThreadStore, thread_ids: list[str]) -> dict[str, str] | None:
    """Each thread's sync status when a sync server is configured (cli/sync.py), else None."""
    from threadline.sync.status import SyncConfig, sync_statuses

    try:
        remote = SyncConfig.resolve().remote
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if remote is None:
        return None
    return await sync_statuses(store.recorder, thread_ids)


@cli.command()
@click.argument("thread_id", metavar="ID")
@click.option(
    "--since",
    type=click.IntRange(min=0),
    default=0,
    metavar="V",
    help="Only the versions after V.",
)
@json_option
@click.pass_obj
def log(settings: Settings, thread_id: str, since: int, as_json: bool) -> None:
    """Show the versions of thread ID: each delta with its commit time."""
    records = run(settings, lambda store: store.history(thread_id, after=since))
    if as_json:
        print_json(
            {
                "thread_id": thread_id,
                "deltas": [
                    {"v": r.v, "at": r.at, "delta": r.delta.model_dump(mode="json")}
                    for r in records
                ],
            }
        )
    else:
        render.print_log(console(), records)
