"""Time-ordered identifiers: UUIDv7 (RFC 9562) with a short type prefix.

``T-`` marks a thread, ``M-`` a message. Ids sort by creation time, which keeps
B-tree inserts at the right edge. Callers may supply their own ids (importers
keep the agent's ids); nothing relies on the format beyond uniqueness.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7, monotonic within this process (a 12-bit counter breaks ms ties)."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_thread_id() -> str:
    return f"T-{uuid7()}"


def new_message_id() -> str:
    return f"M-{uuid7()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


MAX_CURSOR_STAMP = 2**63 - 1
"""The largest timestamp a thread list cursor may carry (a signed 64-bit integer,
what both backends compare it with)."""


def parse_list_cursor(text: str) -> tuple[int, str] | None:
    """``(last_activity, thread_id)`` of a thread list cursor ``"<ms>:<id>"``, or
    ``None`` if ``text`` is not one (every edge answers that as a bad request)."""
    stamp, sep, thread_id = text.partition(":")
    if not sep or not thread_id or not stamp.isascii() or not stamp.isdigit():
        return None
    value = int(stamp) if len(stamp) <= 20 else MAX_CURSOR_STAMP + 1
    return (value, thread_id) if value <= MAX_CURSOR_STAMP else None
