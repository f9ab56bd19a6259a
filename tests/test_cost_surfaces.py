"""One cost on every surface (issue 14): the real sample transcripts imported,
then the import summary, ``list``, ``show``, ``export``, ``tree``, ``cost`` (every
grouping), the viewer's pages over real HTTP and the server's usage route all
print the same total, equal to a per-response sum computed here from the raw
transcripts with genai-prices directly (not through threadline's importers
or pricing)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import orjson
import pytest

from tests.importers.conftest import samples
from tests.pg import make_token, new_workspace
from tests.test_cli import run_cli, succeeds, succeeds_json
from threadline import ThreadStore
from threadline.importers import import_claude_code, import_codex
from threadline.recorders.postgres import PostgresRecorder

SHOWN = 0.00005  # text shows 4 decimals: each printed figure is within this of the truth


def _price(model: str | None, tokens: tuple[int, int, int, int, int], iso: str) -> float | None:
    """One response priced by genai-prices, at the prices of its UTC date."""
    fresh, output, read, write, one_hour = tokens
    if not model:
        return None
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC)
    counts = {
        "input_tokens": fresh + read + write,
        "output_tokens": output,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
    }
    if one_hour:
        counts["cache_write_1h_tokens"] = one_hour
    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(**counts),
            model,
            genai_request_timestamp=dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC),
        )
    except LookupError:
        return None
    return float(price.total_price)


def independent_total() -> tuple[float, int]:
    """(cost, responses) of every sample: Claude Code's responses are the
    distinct ``(message.id, requestId)`` with their last line's usage (those of
    sub-agents known only from ``agent_progress`` records too); Codex's
    are its ``token_count`` events' ``last_token_usage``."""
    last: dict[tuple[Any, Any], tuple[str | None, tuple[int, int, int, int, int], str]] = {}
    for path in sorted(samples("claude-code").rglob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            line = orjson.loads(raw)
            data = line.get("data") if line.get("type") == "progress" else None
            if isinstance(data, dict) and data.get("type") == "agent_progress":
                line = data.get("message") or {}  # a sub-agent's line, carried by the record
            message = line.get("message") if line.get("type") == "assistant" else None
            if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
                continue
            usage = message["usage"]
            write = usage.get("cache_creation_input_tokens") or 0
            split = usage.get("cache_creation") or {}
            tokens = (
                usage.get("input_tokens") or 0,
                usage.get("output_tokens") or 0,
                usage.get("cache_read_input_tokens") or 0,
                write,
                min(split.get("ephemeral_1h_input_tokens") or 0, write),
            )
            last[(message.get("id"), line.get("requestId"))] = (
                message.get("model"),
                tokens,
                line["timestamp"],
            )
    responses = list(last.values())
    for path in sorted(samples("codex").rglob("*.jsonl")):
        model = None
        for raw in path.read_bytes().splitlines():
            line = orjson.loads(raw)
            payload = line.get("payload") or {}
            if line.get("type") == "turn_context":
                model = payload.get("model")
            info = payload.get("info") if payload.get("type") == "token_count" else None
            if isinstance(info, dict):
                used = info["last_token_usage"]
                cached = used.get("cached_input_tokens") or 0
                tokens = (used["input_tokens"] - cached, used["output_tokens"], cached, 0, 0)
                responses.append((model, tokens, line["timestamp"]))
    prices = [_price(*response) for response in responses]
    assert None not in prices  # every sample's model has a price: nothing hides as unpriced
    return sum(p for p in prices if p is not None), len(responses)


@pytest.fixture(scope="module")
def truth() -> tuple[float, int]:
    return independent_total()


def test_every_cli_surface_prints_the_independent_total(
    tmp_path: Path, truth: tuple[float, int]
) -> None:
    expected, responses = truth
    home = tmp_path / "home"
    imported = [
        succeeds_json(run_cli(home, "import", kind, str(samples(kind)), "--json"))
        for kind in ("claude-code", "codex")
    ]
    assert sum(r["cost_usd"] for r in imported) == pytest.approx(expected, abs=1e-6)
    assert sum(r["unpriced_messages"] for r in imported) == 0

    report = succeeds_json(run_cli(home, "cost", "--json"))
    assert report["total"]["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert report["total"]["messages"] == responses
    for by in ("model", "day", "thread"):
        grouped = succeeds_json(run_cli(home, "cost", "--by", by, "--json"))
        assert grouped["total"] == report["total"]
        assert sum(g["cost_usd"] for g in grouped["groups"]) == pytest.approx(expected, abs=1e-9)
    text = succeeds(run_cli(home, "cost"))
    assert f"${expected:,.4f}" in text

    listed = succeeds_json(run_cli(home, "list", "--limit", "1000", "--json"))
    ids = [head["id"] for head in listed["threads"]]
    assert sum(c["cost_usd"] for c in listed["costs"].values()) == pytest.approx(expected)
    listed_text = succeeds(run_cli(home, "list", "--limit", "1000"))
    assert "unpriced" not in listed_text

    shown = [succeeds_json(run_cli(home, "show", thread_id, "--json")) for thread_id in ids]
    assert sum(s["cost"]["cost_usd"] for s in shown) == pytest.approx(expected)
    heads = {head["id"]: head for head in listed["threads"]}
    roots = [i for i in ids if not heads[i].get("parent_thread_id")]
    roots = [i for i in roots if not heads[i].get("origin_thread_id")]

    in_trees: dict[str, float] = {}
    exported: dict[str, float] = {}
    printed: list[float] = []
    for root in roots:
        tree = succeeds_json(run_cli(home, "tree", root, "--json"))
        in_trees.update({key: line["cost_usd"] for key, line in tree["costs"].items()})
        document = succeeds_json(run_cli(home, "export", root, "--tree", "--format", "json"))
        exported.update({key: line["cost_usd"] for key, line in document["costs"].items()})
        markdown = succeeds(run_cli(home, "export", root, "--tree", "--format", "md"))
        printed += [float(x.replace(",", "")) for x in re.findall(r" · cost \$([\d,.]+)", markdown)]
    assert sum(in_trees.values()) == pytest.approx(expected)
    assert sum(exported.values()) == pytest.approx(expected)
    assert set(exported) == set(ids)
    assert sum(printed) == pytest.approx(expected, abs=SHOWN * len(printed))


async def test_the_server_route_and_viewer_pages_print_the_independent_total(
    postgres_dsn: str, live_server: str, truth: tuple[float, int]
) -> None:
    expected, responses = truth
    workspace = new_workspace()
    recorder = await PostgresRecorder.connect(postgres_dsn, workspace=workspace, max_size=2)
    async with ThreadStore(recorder) as store:
        await import_claude_code(store, [samples("claude-code")])
        await import_codex(store, [samples("codex")])
        roots = [h.id for h in (await store.list_threads(limit=1000)).threads]
    token = await make_token(postgres_dsn, workspace)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=60) as http:
        usage = (await http.get("/v1/usage")).json()
        assert sum(g["cost_usd"] or 0 for g in usage["groups"]) == pytest.approx(expected)
        assert sum(g["messages"] for g in usage["groups"]) == responses

        listing = (await http.get("/")).text
        cells = re.findall(r'data-label="Cost" class="num">\$([\d,.]+)', listing)
        assert len(cells) == len(roots)
        total = sum(float(c.replace(",", "")) for c in cells)
        assert total == pytest.approx(expected, abs=SHOWN * len(cells))

        bars = []
        for thread_id in roots:
            page = (await http.get(f"/threads/{thread_id}")).text
            [bar] = re.findall(r'data-stat="cost"[^>]*>\$([\d,.]+)', page)
            bars.append(float(bar.replace(",", "")))
            costs = (await http.get(f"/threads/{thread_id}/costs")).text
            assert f"${bars[-1]:,.4f}" in costs
        assert sum(bars) == pytest.approx(expected, abs=SHOWN * len(bars))
