"""The examples of docs/relations.md and docs/costs.md run and print what they say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = re.compile(r"```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", re.S)


def examples(name: str) -> list[tuple[str, str]]:
    return [(code, printed) for code, printed in EXAMPLE.findall((DOCS / name).read_text())]


@pytest.mark.parametrize(
    ("name", "index"), [("relations.md", 0), ("relations.md", 1), ("costs.md", 0)]
)
def test_doc_example_prints_what_the_doc_says(name: str, index: int) -> None:
    code, printed = examples(name)[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{name} example {index}", "exec"), {"__name__": "__doc_example__"})
    assert out.getvalue() == printed


def test_every_example_is_checked() -> None:
    assert (len(examples("relations.md")), len(examples("costs.md"))) == (2, 1)
