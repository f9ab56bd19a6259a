"""The ``threadline`` command line: a thin mirror of :class:`~threadline.ThreadStore`.

Every command parses its arguments, makes one or two library calls and renders
the result (a rich table for people, ``--json`` for scripts). Errors are
turned into one line on stderr in :mod:`threadline.cli.entry`, and nowhere
else: exit status 2 for a usage error or malformed input, 1 for everything
else (an unknown id, a stale version, a locked or corrupt database).

This module imports nothing heavy: ``threadline hook claude-code`` must hand
its work over and exit within a fraction of a second (:mod:`threadline.cli.hook`),
so the commands are loaded only when another command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.cli.commands import cli

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    from threadline.cli import hook  # light: orjson and the standard library

    handed_over = hook.hand_over(args)
    if handed_over is not None:
        return handed_over
    from threadline.cli import entry  # every command, and what they import

    return entry.main(args)


def __getattr__(name: str) -> Any:
    if name == "cli":  # the click group, with every command registered
        from threadline.cli import entry
        from threadline.cli.commands import cli as group

        del entry
        return group
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
