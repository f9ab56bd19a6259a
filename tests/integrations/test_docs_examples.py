"""The examples in docs/langgraph.md and docs/openai-agents.md run as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize(
    ("doc", "needs"), [("langgraph.md", "langgraph"), ("openai-agents.md", "agents")]
)
def test_the_docs_examples_run(
    doc: str, needs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(needs)
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall((DOCS / doc).read_text())
    assert blocks
    for number, block in enumerate(blocks):
        # A module of its own: LangGraph reads the state's annotations from it.
        module = types.ModuleType(f"docs_example_{number}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(block, f"{doc} example", "exec"), module.__dict__)
    assert (tmp_path / "threads.db").exists()
