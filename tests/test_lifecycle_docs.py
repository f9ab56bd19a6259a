"""The library example of docs/lifecycle.md runs and prints what the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = (Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md").read_text()


def test_lifecycle_doc_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    example = re.findall(r"```python\n(.*?)```", DOC, re.S)[0]
    expected = re.findall(r"```text\n(.*?)```", DOC, re.S)[0]
    done = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        env={**os.environ, "THREADLINE_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
    assert (tmp_path / "home" / "threads.archive").is_dir()
