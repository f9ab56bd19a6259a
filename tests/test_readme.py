"""The README's commands and its library example are kept true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_run_and_test_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[0].strip() == (
        "./scripts/setup && .venv/bin/threadline token create --user you --workspace team"
        " && .venv/bin/threadline serve"
    )
    assert blocks[1].strip() == "./scripts/test"
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_library_example_runs(tmp_path: Path) -> None:
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    done = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("is at version 4, not 2: reload it and apply your change again")
    assert lines[1] == "4 2 False 0.0048"
    assert lines[2] == "Fix login 0"
    assert (tmp_path / "threads.db").exists()
