"""Live capture through the command line (issue 13): ``threadline watch`` over
session files that grow (cut anywhere, even inside a line), killed with
``kill -9`` half way and started again, ends with exactly what one import of
the finished files gives; ``threadline hook claude-code`` imports what its
hook names and prints nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import FIXTURES, SAMPLES
from tests.importers.test_incremental import _snapshot
from threadline import ThreadStore
from threadline.importers import import_claude_code, import_codex, import_openhands
from threadline.importers.core import iso_ms
from threadline.importers.live import Agent, unit_of
from threadline.recorders import MemoryRecorder

TIMEOUT = 60.0


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class _Watch:
    """``threadline watch`` in a subprocess, its stderr in a file."""

    def __init__(
        self, db: Path, log: Path, *folders: str, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "threadline", "--db", str(db), "watch", *folders],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        start = time.monotonic()
        marks = log.read_text().count("watching")
        while log.read_text().count("watching") == marks:  # caught up, events on
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() - start < TIMEOUT, log.read_text()
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def _last_stamp(lines: list[bytes]) -> int:
    stamps = [0]
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            record = orjson.loads(line)
            if isinstance(record, dict):
                stamps.append(iso_ms(record.get("timestamp")) or 0)
    return max(stamps)


def _write_times(files: dict[Path, bytes]) -> list[tuple[int, Path, bool, bytes]]:
    """Every line of every file with the time it was written and whether it is
    a replay: its timestamp, never before the file's previous line; the lines a
    resumed session replays from another file are written when the resumed
    session starts (the time of its first line of its own)."""
    lines = {target: data.splitlines(keepends=True) for target, data in files.items()}
    records: dict[Path, list[dict[str, object]]] = {}
    owners: dict[str, Path] = {}  # a line's file: of those having it, the one ending first
    for target, raw in sorted(lines.items(), key=lambda f: (_last_stamp(f[1]), f[0])):
        records[target] = []
        for line in raw:
            record: object = None
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
            records[target].append(record if isinstance(record, dict) else {})
            uuid = records[target][-1].get("uuid")
            if isinstance(uuid, str):
                owners.setdefault(uuid, target)
    timed = []
    for target, raw in lines.items():
        stamps = [iso_ms(r.get("timestamp")) or 0 for r in records[target]]
        replayed = [owners.get(str(r.get("uuid")), target) != target for r in records[target]]
        later = 0
        for n in reversed(range(len(raw))):  # a replayed line: when its file goes on
            if replayed[n]:
                stamps[n] = later
            else:
                later = stamps[n]
        written = 0
        for n, line in enumerate(raw):
            written = max(written, stamps[n])
            timed.append((written, str(target), n, target, replayed[n], line))
    return [(w, target, again, line) for w, _, _, target, again, line in sorted(timed)]


def _chunks(files: dict[Path, bytes], rng: random.Random) -> list[tuple[Path, bytes]]:
    """The files' lines in the order the agents wrote them (:func:`_write_times`),
    some cut in two (the watcher sees a line half written), and the second half
    of a cut line sometimes written after another file's next piece. A resumed
    session's replayed lines are written at once, with its first line of its
    own: a watcher that imports a replay half written stores the rest of it in
    the resumed thread too (which session owns a line is decided by which
    started first, and a half-written replay does not show that yet)."""
    pieces: list[tuple[Path, bytes]] = []
    replay: dict[Path, bytes] = {}
    for _, target, again, line in _write_times(files):
        if again:
            replay[target] = replay.get(target, b"") + line
            continue
        if target in replay:
            pieces.append((target, replay.pop(target) + line))
        elif len(line) > 2 and rng.random() < 0.4:
            cut = rng.randrange(1, len(line) - 1)
            pieces += [(target, line[:cut]), (target, line[cut:])]
        else:
            pieces.append((target, line))
    pieces += list(replay.items())
    for n in range(len(pieces) - 1):
        if pieces[n][0] != pieces[n + 1][0] and rng.random() < 0.3:
            pieces[n], pieces[n + 1] = pieces[n + 1], pieces[n]
    return pieces


def _sources(tmp_path: Path) -> tuple[dict[Path, bytes], dict[str, Path]]:
    """The files to grow (fixtures, and the samples where present) and the
    folders to watch, by agent."""
    roots = {"claude": tmp_path / "claude", "codex": tmp_path / "codex"}
    files: dict[Path, bytes] = {}
    claude_src = FIXTURES / "claude_code"
    for path in claude_src.rglob("*"):
        if path.is_file():
            files[roots["claude"] / path.relative_to(claude_src)] = path.read_bytes()
    codex_src = FIXTURES / "codex"
    for path in codex_src.rglob("*.jsonl"):
        files[roots["codex"] / path.relative_to(codex_src)] = path.read_bytes()
    if (SAMPLES / "claude-code" / "spotter").exists():
        for path in (SAMPLES / "claude-code" / "spotter").glob("*.jsonl"):
            files[roots["claude"] / "spotter" / path.name] = path.read_bytes()
    for root in roots.values():
        root.mkdir()
    return files, roots


async def _one_shot(roots: dict[str, Path], openhands: Path | None) -> dict[str, object]:
    store = ThreadStore(MemoryRecorder())
    await import_claude_code(store, [roots["claude"]])
    await import_codex(store, [roots["codex"]])
    if openhands is not None:
        await import_openhands(store, [openhands])
    return await _snapshot(store)


async def _stored(db: Path) -> dict[str, object]:
    async with await ThreadStore.open(db) as store:
        return await _snapshot(store)


def _wait_for(db: Path, expected: dict[str, object], log: Path) -> None:
    start = time.monotonic()
    found: dict[str, object] = {}
    while time.monotonic() - start < TIMEOUT:
        found = asyncio.run(_stored(db))
        if found == expected:
            return
        time.sleep(0.2)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    differ = sorted(k for k in expected if k in found and found[k] != expected[k])
    tail = log.read_text()[-2000:] if log.exists() else ""
    raise AssertionError(f"missing {missing}, extra {extra}, different {differ}\n{tail}")


@pytest.mark.parametrize("seed", [1, 2])
def test_watch_captures_growing_files_and_a_kill_9_loses_and_doubles_nothing(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    files, roots = _sources(tmp_path)
    openhands: Path | None = None
    events: list[Path] = []
    folders = ["--claude-code", str(roots["claude"]), "--codex", str(roots["codex"])]
    conversation = SAMPLES / "openhands" / "v1-sdk-conversation"
    if conversation.exists():
        openhands = tmp_path / "openhands"
        target = openhands / conversation.name
        (target / "events").mkdir(parents=True)
        shutil.copy(conversation / "base_state.json", target / "base_state.json")
        events = sorted((conversation / "events").glob("*.json"))
        folders += ["--openhands", str(openhands)]
    chunks = _chunks(files, rng)
    db, log = tmp_path / "threads.db", tmp_path / "watch.log"
    # Something is there before the watcher starts: it catches up on it first.
    for target, piece in chunks[:3]:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as out:
            out.write(piece)
    watcher = _Watch(db, log, *folders)
    kill_at = len(chunks) // 2
    try:
        for n, (target, piece) in enumerate(chunks[3:], start=3):
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("ab") as out:
                out.write(piece)
            if events and rng.random() < 0.3:
                event = events.pop(0)
                assert openhands is not None
                shutil.copy(event, openhands / conversation.name / "events" / event.name)
            time.sleep(rng.choice([0.0, 0.01, 0.08]))
            if n == kill_at:
                time.sleep(0.06)  # an import is likely under way
                watcher.kill()
                watcher = _Watch(db, log, *folders)
        for event in events:
            assert openhands is not None
            shutil.copy(event, openhands / conversation.name / "events" / event.name)
        expected = asyncio.run(_one_shot(roots, openhands))
        assert len(expected) >= 5
        _wait_for(db, expected, log)
        assert watcher.stop() == 0, log.read_text()
    finally:
        if watcher.process.poll() is None:
            watcher.kill()
    assert "Traceback" not in log.read_text()


def test_watch_without_any_folder_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli("--db", str(tmp_path / "t.db"), "watch", "--codex", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr


@pytest.mark.parametrize("wait", [False, True])
def test_hook_imports_the_transcript_it_names_and_prints_nothing(
    tmp_path: Path, wait: bool
) -> None:
    """By default the hook hands the import to a background process and returns
    at once; with --wait it imports before exiting. Either way the store ends
    with what one import of the finished transcript gives."""
    project = tmp_path / "projects" / "-home-dev-shop"
    shutil.copytree(FIXTURES / "claude_code" / "-home-dev-shop", project)
    transcript = project / "sess-1.jsonl"
    full = transcript.read_bytes()
    lines = full.splitlines(keepends=True)
    transcript.write_bytes(b"".join(lines[:8]) + lines[8][:20])  # a line being written
    db = tmp_path / "threads.db"
    payload = {"session_id": "sess-1", "transcript_path": str(transcript)}
    flags = ["--wait"] if wait else []
    for event in ("Stop", "SessionEnd"):
        stdin = json.dumps(payload | {"hook_event_name": event})
        done = _cli("--db", str(db), "hook", "claude-code", *flags, stdin=stdin)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        if not wait:
            _wait_for_thread(db, "sess-1")
        transcript.write_bytes(full)
    expected_store = ThreadStore(MemoryRecorder())
    asyncio.run(import_claude_code(expected_store, [project]))
    _wait_for(db, asyncio.run(_snapshot(expected_store)), tmp_path / "no.log")
    assert not (tmp_path / "hook.log").exists()


def _wait_for_thread(db: Path, thread_id: str) -> None:
    async def present() -> bool:
        async with await ThreadStore.open(db) as store:
            return await store.recorder.head(thread_id) is not None

    start = time.monotonic()
    while not (db.exists() and asyncio.run(present())):
        assert time.monotonic() - start < TIMEOUT, "the background import never came"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        ("not json", "not JSON"),
        ('{"session_id": "x"}', "no transcript_path"),
        ('{"transcript_path": "/nonexistent/x.jsonl"}', "No such transcript"),
    ],
)
def test_hook_refuses_bad_input_with_exit_1(tmp_path: Path, stdin: str, says: str) -> None:
    done = _cli("--db", str(tmp_path / "t.db"), "hook", "claude-code", stdin=stdin)
    assert done.returncode == 1
    assert says in done.stderr
    assert done.stdout == ""


def _unit(agent: Agent, root: Path, path: Path) -> Path | None:
    unit = unit_of(agent, root, path)
    return None if unit is None else unit.path


def test_the_unit_of_a_changed_file() -> None:
    root = Path("/r")
    assert _unit("claude-code", root, root / "p" / "s.jsonl") == root / "p"
    assert (
        _unit("claude-code", root, root / "p" / "s" / "subagents" / "agent-a.jsonl") == root / "p"
    )
    assert _unit("claude-code", root, root / "s.jsonl") == root
    assert _unit("claude-code", root, root / "p" / "x.lock") is None
    assert _unit("codex", root, root / "2025" / "07" / "r.jsonl") == root / "2025" / "07"
    assert _unit("codex", Path("/other"), root / "r.jsonl") is None
