"""Files written by ``threadline export`` (``json`` or ``jsonl``) → threads.

Importing an export into another store gives the same threads: ids,
creation times, titles, env, metadata, messages, parent and origin, and the
sub-agent and summary links in their order. Like every importer it is
idempotent: threads that exist get only the messages and links they lack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
from pydantic import ValidationError

from threadline.export import FORMAT_NAME
from threadline.importers.core import (
    ImportReport,
    ParsedThread,
    ThreadKind,
    save_threads,
)
from threadline.importers.progress import ImportProgress
from threadline.model import Message, Thread
from threadline.store import ThreadStore


async def import_export(
    store: ThreadStore,
    paths: Sequence[Path],
    *,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import the threads of export files (``.json`` documents or ``.jsonl``)."""
    report = ImportReport()
    if progress is not None:
        progress.start(len(paths))
    for path in paths:
        threads = read_export(path, report)
        report.files += 1
        report.sessions += len(threads)
        parsed = [_parsed(thread, path) for thread in threads]
        await save_threads(store, parsed, report, link=False)
        if progress is not None:
            progress.advance(path)
    return report


def read_export(path: Path, report: ImportReport) -> list[Thread]:
    """The threads of an export file; a malformed line (``jsonl``) is reported and
    skipped, a malformed ``json`` document is one malformed line 1."""
    data = path.read_bytes()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("format") == FORMAT_NAME:
        try:
            return [Thread.model_validate(t) for t in _list(document.get("threads"))]
        except ValidationError as exc:
            report.bad_line(path, 1, f"not a threadline export: {_first_error(exc)}")
            return []
    return _read_jsonl(path, data, report)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return ".".join(str(p) for p in error["loc"]) + ": " + error["msg"]


def _read_jsonl(path: Path, data: bytes, report: ImportReport) -> list[Thread]:
    threads: list[Thread] = []
    messages: dict[str, list[Message]] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            kind = record.pop("type", None)
            if kind == "thread":
                threads.append(Thread.model_validate(record))
                messages[threads[-1].id] = []
            elif kind == "message":
                owner = record.pop("thread_id", None)
                if owner not in messages:
                    raise ValueError(f"a message of thread {owner!r} before its thread line")
                messages[str(owner)].append(Message.model_validate(record))
            else:
                raise ValueError(f"unknown line type {kind!r}")
        except ValueError as exc:  # JSON and validation errors are ValueErrors
            detail = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            report.bad_line(path, number, f"not a threadline export line: {detail}")
    return [t.model_copy(update={"messages": tuple(messages[t.id])}) for t in threads]


def _parsed(thread: Thread, path: Path) -> ParsedThread:
    kind: ThreadKind = "session"
    if thread.parent_thread_id is not None:
        kind = "subagent"
    elif thread.origin_thread_id is not None:
        kind = "summary"
    return ParsedThread(
        id=thread.id,
        kind=kind,
        created=thread.created,
        source=str(path),
        title=thread.title,
        env=dict(thread.env),
        metadata=dict(thread.metadata),
        messages=list(thread.messages),
        parent_id=thread.parent_thread_id,
        origin_id=thread.origin_thread_id,
        child_ids=list(thread.child_thread_ids),
        summary_ids=list(thread.summary_thread_ids),
    )
