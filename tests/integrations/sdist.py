"""A package's own sources, as its sdist on PyPI ships them (with its tests):
how the peer-suite tests get the tests they run on threadline."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
from pathlib import Path

PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps")


def unpacked_sdist(package: str, where: Path) -> Path:
    """Download the sdist of the installed version of ``package`` into
    ``where``, unpack it there and return its folder."""
    version = importlib.metadata.version(package)
    download = subprocess.run(
        [*PIP_DOWNLOAD, "--dest", str(where), f"{package}=={version}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert download.returncode == 0, download.stderr
    (archive,) = where.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / archive.name.removesuffix(".tar.gz")
