"""A thread's working directory on disk: resolving paths inside it, reading and
writing its files. Used by :mod:`threadline.files`.

Every path is resolved the way the operating system would follow it (``..``
and symbolic links included) and must land inside the working directory;
what lands outside raises :class:`PathOutsideWorkspace` and is never read or
written. A resolved path is kept relative to the directory, in POSIX form.

Writes replace a file atomically: the new bytes go to a temporary file beside
it (``.NAME.threadline.tmp``), which is flushed to disk and renamed over the
file. A process killed at any moment leaves the old file or the new one,
never a mix; at worst a stale temporary file, which the next write of the
same file replaces.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from threadline.errors import PathOutsideWorkspace
from threadline.files.contents import content_hash
from threadline.files.log import FileState, State, UnknownContent

TEMP_SUFFIX = ".threadline.tmp"

DiskKind = Literal["missing", "file", "other"]


def default_mode() -> int:
    """The mode a new file gets from ``open()``: ``0o666`` less the process umask."""
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask


@dataclass(frozen=True, slots=True)
class DiskFile:
    """What is at a path now: nothing, a regular file (its state and bytes), or
    something else (a directory, a socket, ...)."""

    kind: DiskKind
    state: FileState | None = None
    data: bytes | None = None

    def describe(self) -> str:
        if self.kind == "missing":
            return "no file"
        if self.kind == "other" or self.state is None:
            return "not a regular file"
        return describe_state(self.state)


def describe_state(state: State) -> str:
    if state is None:
        return "no file"
    if isinstance(state, UnknownContent):
        return "a file whose content is not recorded"
    return f"{state.size} bytes, sha256 {state.hash[:12]}"


@dataclass(frozen=True, slots=True)
class WorkDir:
    """The working directory (``env.cwd``) of one thread, resolved."""

    thread_id: str
    cwd: str
    root: Path

    @classmethod
    def of(cls, thread_id: str, cwd: str) -> WorkDir:
        return cls(thread_id, cwd, Path(os.path.realpath(cwd)))

    def resolve(self, path: str | os.PathLike[str]) -> tuple[str, Path]:
        """``path`` (relative to the directory, or absolute) as a relative POSIX
        path and the real path it names; :class:`PathOutsideWorkspace` if it
        leads outside."""
        given = Path(path)
        text = os.fspath(path)
        if not text or "\0" in text:
            raise PathOutsideWorkspace(self.thread_id, text, self.cwd, "not a usable path")
        candidate = given if given.is_absolute() else self.root / given
        real = Path(os.path.realpath(candidate))
        try:
            relative = real.relative_to(self.root)
        except ValueError:
            raise PathOutsideWorkspace(
                self.thread_id, text, self.cwd, self._escape_detail(given, real)
            ) from None
        if not relative.parts:
            raise PathOutsideWorkspace(
                self.thread_id, text, self.cwd, "it is the working directory itself, not a file"
            )
        return relative.as_posix(), real

    def _escape_detail(self, given: Path, real: Path) -> str:
        if given.is_absolute() and not Path(os.path.normpath(given)).is_relative_to(self.root):
            return f"an absolute path elsewhere, {real}"
        if ".." in given.parts:
            lexical = Path(os.path.normpath(self.root / given))
            if not lexical.is_relative_to(self.root):
                return "'..' leads out of it"
        return f"a symbolic link leads to {real}"

    def real(self, relative: str) -> Path:
        """The real path of a recorded relative path, checked again (links change)."""
        return self.resolve(relative)[1]

    def missing_dirs(self, relative: str) -> tuple[str, ...]:
        """The parent directories of ``relative`` that do not exist, shallowest first."""
        missing: list[str] = []
        parents = PurePosixPath(relative).parents
        for parent in reversed(list(parents)[:-1]):  # without "."
            if not (self.root / parent).is_dir():
                missing.append(parent.as_posix())
        return tuple(missing)


def read_file(real: Path, *, keep_data: bool = True) -> DiskFile:
    """The file at ``real`` now (following no symbolic link at the last step)."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return DiskFile("missing")
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link, a socket
            return DiskFile("other")
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return DiskFile("other")
        with os.fdopen(os.dup(fd), "rb") as stream:
            data = stream.read()
    finally:
        os.close(fd)
    state = FileState(hash=content_hash(data), size=len(data), mode=stat.S_IMODE(info.st_mode))
    return DiskFile("file", state, data if keep_data else None)


def temp_path(real: Path) -> Path:
    return real.with_name(f".{real.name}{TEMP_SUFFIX}")


def write_file(real: Path, data: bytes, mode: int) -> None:
    """Replace (or create) the file at ``real`` with ``data`` and ``mode``, atomically.
    Missing parent directories are made."""
    real.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(real)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fchmod(fd, mode)
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(temp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def remove_file(real: Path) -> None:
    """Remove the file at ``real``, if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(real)


def remove_empty_dirs(workdir: WorkDir, dirs: Iterable[str]) -> None:
    """Remove each of ``dirs`` (relative paths) that is empty, deepest first."""
    for relative in sorted(set(dirs), key=lambda d: (-d.count("/"), d)):
        try:
            directory = workdir.real(relative)
        except PathOutsideWorkspace:
            continue  # a link now leads out: leave it alone
        with contextlib.suppress(OSError):  # not empty, or gone: leave it
            directory.rmdir()


def discard_stale_temp(real: Path) -> None:
    """Remove the temporary file an interrupted write of ``real`` may have left."""
    temp = temp_path(real)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISREG(os.lstat(temp).st_mode):
            os.unlink(temp)
