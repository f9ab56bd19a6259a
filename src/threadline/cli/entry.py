"""The ``threadline`` command line, every command registered (imported by
:func:`threadline.cli.main` once it knows the command is not a fast one).

Every command parses its arguments, makes one or two library calls and renders
the result (a rich table for people, ``--json`` for scripts). Errors are
turned into one line on stderr here, in :func:`main`, and nowhere else: exit
status 2 for a usage error or malformed input, 1 for everything else (an
unknown id, a stale version, a locked or corrupt database).
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from pydantic import ValidationError

from threadline.cli import capture, deleting, files, lifecycle, relations, server, sync
from threadline.cli.commands import cli
from threadline.cli.importing import export_command, import_group, search_command
from threadline.errors import ThreadlineError

for _command in (import_group, export_command, search_command):  # cli/importing.py
    cli.add_command(_command)
for _command in lifecycle.COMMANDS:  # archive, restore, doctor
    cli.add_command(_command)
for _command in server.COMMANDS:  # serve, token (cli/server.py)
    cli.add_command(_command)
for _command in relations.COMMANDS:  # tree, spawn, summarize, cost (cli/relations.py)
    cli.add_command(_command)
for _command in files.COMMANDS:  # files, rollback (cli/files.py)
    cli.add_command(_command)
for _command in sync.COMMANDS:  # sync (cli/sync.py)
    cli.add_command(_command)
for _command in deleting.COMMANDS:  # delete (cli/deleting.py)
    cli.add_command(_command)
for _command in capture.COMMANDS:  # watch, hook (cli/capture.py)
    cli.add_command(_command)

USAGE_ERROR = 2
FAILURE = 1
INTERRUPTED = 130


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _fail(message: str, status: int) -> int:
    click.echo(f"Error: {_one_line(message)}", err=True)
    return status


def _describe_invalid(exc: ValidationError, limit: int = 3) -> str:
    """A pydantic validation error in one line: ``field: problem; field: problem``."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:limit]:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return f"Invalid {exc.title}: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    try:
        result = cli.main(args=argv, prog_name="threadline", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return _fail(exc.format_message() + hint, USAGE_ERROR)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        return _fail("Interrupted", INTERRUPTED)
    except ValidationError as exc:
        return _fail(_describe_invalid(exc), USAGE_ERROR)
    except ThreadlineError as exc:
        return _fail(str(exc), FAILURE)
    except OSError as exc:
        return _fail(str(exc), FAILURE)
    return result if isinstance(result, int) else 0
