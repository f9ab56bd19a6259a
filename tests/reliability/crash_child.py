"""The child process of the crash loop (``test_crash_loop``): appends until killed.

Kept apart from the test module so that a forked child imports only this and
threadline, not pytest.
"""

from __future__ import annotations

import asyncio
import traceback
from multiprocessing.connection import Connection

from threadline import Message, ThreadStore

READY = b"ready"
ERROR = b"error:"


def message_content(child: int, n: int) -> str:
    return f"{child}:{n}"


def append_until_killed(db_path: str, thread_id: str, child: int, acks: Connection) -> None:
    """Open the store, take the writer, send ``READY``; then append messages
    ``"<child>:<n>"`` for ever, sending each message id on ``acks`` after its
    ``append`` returned (each ``send_bytes`` is one unbuffered ``write``)."""
    try:
        asyncio.run(_append_forever(db_path, thread_id, child, acks))
    except BaseException:
        acks.send_bytes(ERROR + traceback.format_exc()[-3000:].encode())
        raise


async def _append_forever(db_path: str, thread_id: str, child: int, acks: Connection) -> None:
    store = await ThreadStore.open(db_path, synchronous="FULL")
    writer = await store.acquire_writer(thread_id)  # loads the current version
    acks.send_bytes(READY)
    n = 0
    while True:
        message = Message(role="assistant", content=message_content(child, n))
        await writer.append(message)
        acks.send_bytes(message.id.encode())
        n += 1
