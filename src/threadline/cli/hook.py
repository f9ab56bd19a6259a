"""``threadline hook claude-code``, the part that must be fast.

Claude Code waits for its hooks. Importing the ``threadline`` commands alone
takes most of a second, so :func:`hand_over` — run by
:func:`threadline.cli.main` before anything else is imported — checks the
hook's JSON, hands it to a background ``threadline hook claude-code --wait
--log-errors`` (a session of its own, so it outlives the hook) and returns
at once. Bad input is still refused here, on stderr with exit status 1. The
import itself is :func:`threadline.cli.capture.hook_claude_code`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

HOOK = ["hook", "claude-code"]


def _split(args: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """The global ``--db`` arguments and the rest, when ``args`` is exactly a
    ``hook claude-code`` call (no other option); else None."""
    given = list(args)
    db: list[str] = []
    if given[:1] == ["--db"] and len(given) >= 2:
        db, given = given[:2], given[2:]
    elif given[:1] and given[0].startswith("--db="):
        db, given = given[:1], given[1:]
    return (db, given) if given == HOOK else None


def transcript_of(raw: bytes) -> Path:
    """The transcript a hook's JSON names; ValueError saying what is wrong."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"The hook's input is not JSON: {exc}") from exc
    transcript = payload.get("transcript_path") if isinstance(payload, dict) else None
    if not isinstance(transcript, str) or not transcript:
        raise ValueError("The hook's input has no transcript_path")
    path = Path(transcript).expanduser()
    if not path.is_file():
        raise ValueError(f"No such transcript: {path}")
    return path


def hand_over(args: Sequence[str]) -> int | None:
    """Hand a ``hook claude-code`` call to a background process and return its
    exit status (0, or 1 for bad input); None for any other command."""
    split = _split(args)
    if split is None:
        return None
    db, _ = split
    raw = sys.stdin.buffer.read()
    try:
        transcript_of(raw)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    worker = subprocess.Popen(
        [sys.executable, "-m", "threadline", *db, *HOOK, "--wait", "--log-errors"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ.copy(),
    )
    assert worker.stdin is not None
    worker.stdin.write(raw)
    worker.stdin.close()
    return 0
