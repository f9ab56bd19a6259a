"""``threadline import``, ``export`` and ``search`` through a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import fails, run_cli, succeeds, succeeds_json


def test_import_reports_then_adds_nothing_the_second_time(tmp_path: Path, claude_dir: Path) -> None:
    home = tmp_path / "home"
    first = run_cli(home, "import", "claude-code", str(claude_dir), "--json")
    report = succeeds_json(first)
    assert (report["sessions"], report["messages"], report["tool_calls"]) == (2, 20, 4)
    assert (report["subagent_threads"], report["summary_threads"]) == (1, 1)
    assert report["tokens"]["output"] == 401
    assert report["skipped"]["progress"] == 2
    sess = claude_dir / "-home-dev-shop" / "sess-1.jsonl"
    assert f"warning: skipped malformed line {sess}:8: not JSON" in first.stderr
    second = succeeds_json(run_cli(home, "import", "claude-code", str(claude_dir), "--json"))
    assert (second["messages"], second["threads_created"], second["already_imported"]) == (0, 0, 20)

    hits = succeeds_json(run_cli(home, "search", "DiscountCode", "--json", "--limit", "3"))
    assert hits["query"] == "DiscountCode"
    assert len(hits["hits"]) == 3
    hit = hits["hits"][0]
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end].lower() == "discountcode"

    text = succeeds(run_cli(home, "search", '"expired codes"'))
    assert "Checkout discount codes  sess-1  u-005" in text

    exported = tmp_path / "tree.json"
    run = run_cli(home, "export", "sess-1", "--tree", "--output", str(exported))
    assert "Wrote 3 thread(s)" in run.stderr
    other = str(tmp_path / "other.db")
    copied = succeeds_json(run_cli(home, "--db", other, "import", "json", str(exported), "--json"))
    assert (copied["threads_created"], copied["messages"]) == (3, 18)
    original = json.loads(exported.read_text())["threads"][0]
    again = json.loads(succeeds(run_cli(home, "--db", other, "export", "sess-1")))["threads"][0]
    assert {**again, "v": 0} == {**original, "v": 0}


def test_codex_import_prints_a_summary(tmp_path: Path, codex_dir: Path) -> None:
    out = succeeds(run_cli(tmp_path / "home", "import", "codex", str(codex_dir)))
    lines = {" ".join(line.split()) for line in out.splitlines()}
    assert "Messages 13" in lines
    assert "Sub-agent threads 1" in lines
    assert "Tool calls 3" in lines
    assert "Malformed lines 1" in lines
    # Its apply_patch updates a file: the patch holds neither content whole.
    assert (
        "File edits recorded 1 (1 with the content before not recorded in the transcript, "
        "1 with the content after not recorded in the transcript)"
    ) in lines
    assert "event_msg:user_message 1" in lines


def test_a_query_without_words_and_an_unknown_thread_fail_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "has no word to look for" in fails(run_cli(home, "search", "!!!"), 2)
    assert "Thread T-nope not found" in fails(run_cli(home, "export", "T-nope"), 1)
