"""How an import tells its caller how far it got (the CLI draws a progress bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ImportProgress(Protocol):
    def start(self, total_files: int) -> None:
        """The import found ``total_files`` files to read."""

    def advance(self, path: Path) -> None:
        """The import finished reading ``path``."""
