from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import ThreadStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ThreadStore]:
    async with await ThreadStore.open(tmp_path / "threads.db") as opened:
        yield opened


@pytest.fixture
def claude_dir(tmp_path: Path) -> Path:
    """A copy of the Claude Code fixture folder (tests may grow its files)."""
    target = tmp_path / "claude"
    shutil.copytree(FIXTURES / "claude_code", target)
    return target


@pytest.fixture
def codex_dir(tmp_path: Path) -> Path:
    target = tmp_path / "codex"
    shutil.copytree(FIXTURES / "codex", target)
    return target


def samples(*parts: str) -> Path:
    """A folder of ../shared/samples, or skip the test where it is absent."""
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample transcripts not available ({path})")
    return path
