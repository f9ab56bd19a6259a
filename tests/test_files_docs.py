"""The library example of docs/files.md runs and prints what the page says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = (Path(__file__).resolve().parent.parent / "docs" / "files.md").read_text()


def test_files_doc_example_prints_what_the_doc_says(tmp_path: Path) -> None:
    example = re.findall(r"```python\n(.*?)```", DOC, re.S)[0]
    printed = re.findall(r"prints\n\n```\n(.*?)```", DOC, re.S)[0]
    done = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed
