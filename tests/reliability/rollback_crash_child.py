"""The child process of the rollback crash test: rolls an operation back until killed.

Kept apart from the test module so that a forked child imports only this and
threadline, not pytest.
"""

from __future__ import annotations

import asyncio
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from threadline import ThreadStore
from threadline.files import workdir

READY = b"ready"
WROTE = b"wrote"
DONE = b"done"
ERROR = b"error:"


def roll_back_until_killed(
    db_path: str, thread_id: str, operation_id: str, acks: Connection
) -> None:
    """Open the store, send ``READY``, then roll ``operation_id`` back, sending
    ``WROTE`` after each file it wrote or removed, and ``DONE`` at the end."""
    write_file, remove_file = workdir.write_file, workdir.remove_file

    def reporting_write(real: Path, data: bytes, mode: int) -> None:
        write_file(real, data, mode)
        acks.send_bytes(WROTE)

    def reporting_remove(real: Path) -> None:
        remove_file(real)
        acks.send_bytes(WROTE)

    workdir.write_file = reporting_write
    workdir.remove_file = reporting_remove
    try:
        asyncio.run(_roll_back(db_path, thread_id, operation_id, acks))
    except BaseException:
        acks.send_bytes(ERROR + traceback.format_exc()[-3000:].encode())
        raise


async def _roll_back(db_path: str, thread_id: str, operation_id: str, acks: Connection) -> None:
    async with await ThreadStore.open(db_path, synchronous="FULL") as store:
        acks.send_bytes(READY)
        await store.rollback_operation(thread_id, operation_id)
    acks.send_bytes(DONE)
