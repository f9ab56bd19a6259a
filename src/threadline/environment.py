"""The execution context a thread records at creation (``Thread.env``)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata

from pydantic import JsonValue

_LIBRARIES = ("threadline", "pydantic")


def _git(cwd: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def capture_environment(cwd: str | None = None) -> dict[str, JsonValue]:
    """Working directory, git branch and commit, OS, host, Python and library versions.

    Git fields are left out where ``cwd`` is not in a repository or git is absent;
    a ``cwd`` that is not a directory here is recorded as given, git is asked in
    the process's own working directory.
    """
    where = cwd or os.getcwd()
    git_dir = where if os.path.isdir(where) else os.getcwd()
    env: dict[str, JsonValue] = {
        "cwd": where,
        "os": platform.system(),
        "os_release": platform.release(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }
    branch = _git(git_dir, "rev-parse", "--abbrev-ref", "HEAD")
    if branch is not None:
        env["git_branch"] = branch
        env["git_commit"] = _git(git_dir, "rev-parse", "HEAD")
    return env
