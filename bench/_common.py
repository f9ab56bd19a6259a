"""Shared pieces of the benchmarks: a realistic message mix, the raw SQLite
baselines, latency statistics and the printed report.

Nothing here is timed by itself; ``foundation.py`` decides what to time.
"""

from __future__ import annotations

import importlib
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from threadline import Message, ToolCall, ToolResult, Usage


def load_langgraph() -> None:
    """Import the ``langgraph`` package itself. ``bench/langgraph.py`` would
    shadow it: a script's folder comes first on ``sys.path``. Once the package
    is imported, ``from langgraph.x import y`` finds it wherever it is called."""
    if hasattr(sys.modules.get("langgraph"), "__path__"):
        return
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        importlib.import_module("langgraph")
    finally:
        sys.path[:] = saved


# -- a realistic mix of agent messages ----------------------------------------

_VOCABULARY = (
    "the a to of and in is that for it this with on be not are as we can if file "
    "function test error line return value import class def self none true false "
    "login user session token password request response handler route config "
    "database query index commit branch merge fix bug check update add remove "
    "should would could because then when where which after before change "
    "result output input path module package version build run install"
)
_WORDS = _VOCABULARY.split()
_CODE = (
    "def check_login(user, password):\n"
    '    if not user.active:\n        raise LoginError("inactive")\n'
    "    return verify(password, user.hash)\n"
)
_MODELS = ("claude-sonnet-4", "claude-opus-4", "gpt-5-codex")
_TOOLS = ("Read", "Edit", "Bash", "Grep", "Write")


def _text(rng: random.Random, size: int) -> str:
    """Prose with some code, quotes and newlines (so JSON escaping is realistic)."""
    parts: list[str] = []
    length = 0
    while length < size:
        if rng.random() < 0.08:
            chunk = "\n```python\n" + _CODE + "```\n"
        else:
            chunk = " ".join(rng.choices(_WORDS, k=rng.randint(4, 14)))
            chunk = chunk.capitalize() + rng.choice((". ", ".\n", ' "ok". ', ": "))
        parts.append(chunk)
        length += len(chunk)
    return "".join(parts)[:size]


def _tool_input(rng: random.Random, name: str) -> dict[str, object]:
    path = f"src/app/{rng.choice(_WORDS)}_{rng.choice(_WORDS)}.py"
    if name == "Edit":
        return {
            "file_path": path,
            "old_string": _text(rng, rng.randint(60, 500)),
            "new_string": _text(rng, rng.randint(60, 600)),
        }
    if name == "Bash":
        return {"command": f"pytest -q tests/test_{rng.choice(_WORDS)}.py", "timeout": 120}
    if name == "Grep":
        return {"pattern": rng.choice(_WORDS), "path": "src", "glob": "*.py"}
    if name == "Write":
        return {"file_path": path, "content": _text(rng, rng.randint(300, 1500))}
    return {"file_path": path}


def _usage(rng: random.Random) -> Usage:
    input_tokens = rng.randint(2_000, 60_000)
    output_tokens = rng.randint(40, 1_500)
    cache_read = rng.randint(0, input_tokens)
    return Usage(
        model=rng.choice(_MODELS),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=rng.choice((0, 0, rng.randint(100, 4_000))),
        cost_usd=round(input_tokens * 3e-6 + output_tokens * 15e-6, 6),
    )


def message_stream(seed: int = 7) -> Iterator[Message]:
    """An endless, deterministic agent session: a user prompt, then assistant
    turns that call a tool (the next user message carries its result) until
    the assistant answers in prose, then the next prompt.

    Sizes run from a few hundred bytes to a few KB of JSON; every assistant
    message has usage and cost. At most one tool call per turn, so that each
    message maps to exactly one LangChain message in the LangGraph comparison.
    """
    rng = random.Random(seed)
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"M-bench-{seed}-{counter:08d}"

    stamp = 1_750_000_000_000
    while True:
        stamp += rng.randint(1_000, 60_000)
        yield Message(
            id=next_id(), role="user", content=_text(rng, rng.randint(80, 900)), timestamp=stamp
        )
        for _ in range(rng.randint(1, 4)):
            stamp += rng.randint(500, 20_000)
            name = rng.choice(_TOOLS)
            call = ToolCall(id=f"toolu_{counter:08d}", name=name, input=_tool_input(rng, name))
            yield Message(
                id=next_id(),
                role="assistant",
                content=_text(rng, rng.randint(0, 400)),
                timestamp=stamp,
                tool_calls=(call,),
                usage=_usage(rng),
            )
            stamp += rng.randint(100, 30_000)
            yield Message(
                id=next_id(),
                role="user",
                timestamp=stamp,
                tool_results=(
                    ToolResult(
                        tool_call_id=call.id,
                        output=_text(rng, rng.randint(150, 3_500)),
                        is_error=rng.random() < 0.05,
                    ),
                ),
            )
        stamp += rng.randint(500, 20_000)
        yield Message(
            id=next_id(),
            role="assistant",
            content=_text(rng, rng.randint(200, 2_500)),
            timestamp=stamp,
            usage=_usage(rng),
        )


def take(stream: Iterator[Message], count: int) -> list[Message]:
    return [next(stream) for _ in range(count)]


def json_size(message: Message) -> int:
    return len(message.model_dump_json().encode())


# -- raw SQLite baselines -------------------------------------------------------


class RawSqlite:
    """The baseline: plain ``sqlite3`` rows of message JSON, one table, the same
    journal mode (WAL) and ``synchronous`` setting as the store under test."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        assert str(mode).lower() == "wal", mode
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
        )

    def insert_one(self, body: bytes) -> None:
        """One row, one transaction, one commit."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO messages (body) VALUES (?)", (body,))
        self.conn.execute("COMMIT")

    def insert_many(self, bodies: list[bytes]) -> None:
        """Many rows in one transaction, one commit."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT INTO messages (body) VALUES (?)", [(b,) for b in bodies])
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def store_bytes(path: Path) -> int:
    """Bytes of a SQLite database on disk: the file and its WAL.

    Not the ``-shm`` file: a fixed 32 KB shared-memory index of the WAL that
    SQLite deletes with the last connection.
    """
    return sum(os.path.getsize(f) for f in (path, Path(f"{path}-wal")) if f.exists())


# -- statistics -----------------------------------------------------------------


@dataclass
class Timings:
    """Per-operation latencies (seconds) and the wall time they were taken in."""

    latencies: list[float]
    wall: float = 0.0
    operations: int = 0

    @classmethod
    def empty(cls) -> Timings:
        return cls([])

    def add(self, other: Timings) -> None:
        self.latencies.extend(other.latencies)
        self.wall += other.wall
        self.operations += other.operations

    @property
    def rate(self) -> float:
        """Operations per second over the measured wall time."""
        return self.operations / self.wall if self.wall else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


class Stopwatch:
    """``with Stopwatch() as w: ...`` then ``w.elapsed`` (``time.perf_counter``)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.start


@dataclass
class GrowthRun:
    """One thread grown one message per step: totals and every step's latency."""

    messages: int
    seconds: float
    db_bytes: int
    step_latencies: list[float]

    @property
    def last_step(self) -> float:
        return self.step_latencies[-1]

    @property
    def last_steps_median(self) -> float:
        tail = sorted(self.step_latencies[-20:])
        return tail[len(tail) // 2]


# -- report -------------------------------------------------------------------------


@dataclass
class Outcome:
    """One line of the summary table."""

    number: int
    name: str
    figure: str
    baseline: str
    ratio: float
    target: str
    passed: bool | None  # None: informative, no target

    @property
    def verdict(self) -> str:
        return "-" if self.passed is None else ("PASS" if self.passed else "MISS")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def per_s(rate: float) -> str:
    return f"{rate:,.0f}/s"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:,.1f} {unit}" if unit != "B" else f"{count:,.0f} B"
        count /= 1024
    raise AssertionError("unreachable")


def heading(number: int, title: str) -> None:
    print(f"\n[{number}] {title}", flush=True)


def line(label: str, value: str) -> None:
    print(f"    {label:<44} {value}", flush=True)


def summary(outcomes: list[Outcome]) -> None:
    rows = [("#", "benchmark", "threadline", "baseline", "ratio", "target", "")]
    rows += [
        (
            str(o.number),
            o.name,
            o.figure,
            o.baseline,
            f"{o.ratio:.3g}",
            o.target,
            o.verdict,
        )
        for o in outcomes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\nSummary")
    for index, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
