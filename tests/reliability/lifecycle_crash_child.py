"""The child process of the lifecycle crash loop: archives and restores until killed.

Kept apart from the test module so that a forked child imports only this and
threadline, not pytest.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from multiprocessing.connection import Connection

from threadline import ThreadStore

READY = b"ready"
ERROR = b"error:"


def flip_until_killed(
    db_path: str, archive_url: str, roots: list[str], seed: int, acks: Connection
) -> None:
    """Open the store (which recovers what the previous child left), send
    ``READY``, then for ever pick a root thread at random and archive it with its
    sub-agents if it is active, or restore them if it is archived, sending
    ``archived:<id>`` or ``restored:<id>`` after each call returned."""
    try:
        asyncio.run(_flip_forever(db_path, archive_url, roots, random.Random(seed), acks))
    except BaseException:
        acks.send_bytes(ERROR + traceback.format_exc()[-3000:].encode())
        raise


async def _flip_forever(
    db_path: str, archive_url: str, roots: list[str], rng: random.Random, acks: Connection
) -> None:
    store = await ThreadStore.open(db_path, archive_url=archive_url)
    acks.send_bytes(READY)
    while True:
        root = rng.choice(roots)
        if await store.archived_thread(root) is None:
            await store.archive_thread(root)
            acks.send_bytes(f"archived:{root}".encode())
        else:
            await store.restore_thread(root)
            acks.send_bytes(f"restored:{root}".encode())
