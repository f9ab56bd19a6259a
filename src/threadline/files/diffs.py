"""The unified diff of one file change, as ``threadline files`` and the viewer show it. Pure.

A change whose contents are text gets a git-style unified diff; binary or too
large contents, and contents the log does not hold (an imported edit of a
file its transcript never showed: :class:`~threadline.files.log.UnknownContent`),
get a one-line summary instead, never a diff made up against nothing.
"""

from __future__ import annotations

import difflib

from threadline.files.log import FileChange, FileState, State, UnknownContent

DIFF_LIMIT = 512 * 1024
"""Contents larger than this (bytes) are summarised, not diffed."""


def _text(data: bytes) -> list[str] | None:
    if b"\0" in data:
        return None
    try:
        return data.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _git_mode(mode: int) -> str:
    return f"{0o100000 | mode:o}"  # a regular file, as git writes it


def _size(state: State) -> str:
    if isinstance(state, UnknownContent):
        return "?"
    return str(state.size if state is not None else 0)


def unrecorded_summary(change: FileChange) -> str | None:
    """The one line that stands for the diff of a change with a side whose
    content is not recorded, or ``None`` if both sides are known."""
    sides = [
        side
        for side, state in (("before", change.before), ("after", change.after))
        if isinstance(state, UnknownContent)
    ]
    if not sides:
        return None
    sizes = f"{_size(change.before)} -> {_size(change.after)} bytes"
    return f"{' and '.join(sides)} not recorded in the transcript: {change.path} {sizes}\n"


def unified_diff(
    change: FileChange, before: bytes | None, after: bytes | None, *, too_large: bool = False
) -> str:
    """A git-style unified diff of one change, from ``before`` to ``after`` (the
    contents of its states); binary contents, or ``too_large`` ones, are
    summarised in one line, and so is a change with a content not recorded
    (:func:`unrecorded_summary`)."""
    unrecorded = unrecorded_summary(change)
    if unrecorded is not None:
        return unrecorded
    header: list[str] = []
    old_mode = change.before.mode if isinstance(change.before, FileState) else None
    new_mode = change.after.mode if isinstance(change.after, FileState) else None
    if old_mode is None and new_mode is not None:
        header.append(f"new file mode {_git_mode(new_mode)}\n")
    elif new_mode is None and old_mode is not None:
        header.append(f"deleted file mode {_git_mode(old_mode)}\n")
    elif old_mode != new_mode and old_mode is not None and new_mode is not None:
        header.append(f"old mode {_git_mode(old_mode)}\nnew mode {_git_mode(new_mode)}\n")
    old_lines = [] if before is None else _text(before)
    new_lines = [] if after is None else _text(after)
    if too_large or old_lines is None or new_lines is None:
        kind = "too large to show" if too_large else "binary"
        sizes = f"{_size(change.before)} -> {_size(change.after)} bytes"
        return "".join(header) + f"{kind}: {change.path} {sizes}\n"
    lines = difflib.unified_diff(
        old_lines,
        new_lines,
        fromfile="/dev/null" if change.before is None else f"a/{change.path}",
        tofile="/dev/null" if change.after is None else f"b/{change.path}",
    )
    text = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    return "".join(header) + text
