"""How the SQLite recorder stores a delta's JSON in ``deltas.body``.

A body of at least :data:`COMPRESS_FROM` bytes is stored as one zstd frame
when that is smaller (40-50% of the JSON for agent transcripts; benchmark 4
of ``bench/foundation.py``); any other body as its JSON. Reading one back
costs a few microseconds (a page of 50 messages, about 0.3 ms more). A zstd
frame starts with a magic number that no JSON text starts with, so each row
tells how to read it, and rows written before compression existed read as
they are.

Python reads a body through :func:`delta_of`; SQL through
``threadline_delta_json(body)``, which :func:`register_functions` installs on
every connection of the recorder (``json_extract`` cannot read a compressed
body).
"""

from __future__ import annotations

import sqlite3
import threading

import zstandard

from threadline.deltas import Delta, MessageAmendDelta, MessageDelta, delta_from_json
from threadline.errors import InvalidDelta
from threadline.model import Message

COMPRESS_FROM = 512
"""Bodies shorter than this are stored as they are: below it zstd saves little
(a frame header and tables that short text cannot pay for) and costs a
compression per append."""

_LEVEL = 1  # within 1% of level 3's size on transcripts, and faster both ways
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd contexts may not be shared by threads at once: the writer and the
# readers of every recorder of the process each get their own.
_contexts = threading.local()


def stored(body: bytes) -> bytes:
    """What to write in ``deltas.body`` for the delta JSON ``body``."""
    if len(body) < COMPRESS_FROM:
        return body
    compressor: zstandard.ZstdCompressor | None = getattr(_contexts, "compressor", None)
    if compressor is None:
        compressor = _contexts.compressor = zstandard.ZstdCompressor(level=_LEVEL)
    packed = compressor.compress(body)
    return packed if len(packed) < len(body) else body


def json_of(body: bytes) -> bytes:
    """The delta JSON stored as ``body`` (the inverse of :func:`stored`)."""
    if not body.startswith(_ZSTD_MAGIC):
        return body
    decompressor: zstandard.ZstdDecompressor | None = getattr(_contexts, "decompressor", None)
    if decompressor is None:
        decompressor = _contexts.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(body)


def delta_of(body: bytes) -> Delta:
    """The delta stored as ``body``."""
    return delta_from_json(json_of(body), stored=True)


def message_of(body: bytes) -> Message:
    """The message of the message delta stored as ``body`` (what the message
    projection points at)."""
    delta = delta_of(body)
    if not isinstance(delta, MessageDelta | MessageAmendDelta):
        raise InvalidDelta(f"message projection points at a {delta.type} delta")
    return delta.message


def register_functions(conn: sqlite3.Connection) -> None:
    """Install ``threadline_delta_json(body)`` on ``conn``."""
    conn.create_function("threadline_delta_json", 1, _sql_delta_json, deterministic=True)


def _sql_delta_json(body: bytes | None) -> str | None:
    return None if body is None else json_of(body).decode()
