"""The server side of a push: append at the client's base version, or explain why not.

A push of ``deltas`` on ``base_version`` is accepted only if the thread's head
is exactly ``base_version`` (the recorder decides, atomically). Otherwise the
answer carries the server's version and the deltas after the base, so the
client can merge without another round trip. A push that is already in (a
retry after a lost response: the logged deltas after the base begin with
exactly the pushed ones) is answered as accepted, with ``replayed`` set, and
writes nothing: client-made ids and timestamps make deltas comparable.

A push to an archived thread is not refused: given ``revive`` (the server's
restore, :mod:`threadline.sync.server_archive`), a push that finds no active
thread restores it from cold storage and is then applied as usual. Only a
push that finds no thread pays for that check, so the common path is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from threadline.deltas import Delta
from threadline.errors import ThreadExists, ThreadlineError, ThreadNotFound, VersionConflict
from threadline.model import ThreadHead
from threadline.recorders.base import Append, ThreadRecorder
from threadline.sync.protocol import PushAccepted, PushConflict, WireDelta

Revive = Callable[[str], Awaitable[bool]]
"""Restore a thread if it is archived; whether it is active now."""


def accepted(head: ThreadHead, *, replayed: bool = False) -> PushAccepted:
    return PushAccepted(version=head.v, head=head, replayed=replayed)


async def explain_refusal(
    recorder: ThreadRecorder,
    thread_id: str,
    base_version: int,
    deltas: Sequence[Delta],
    *,
    max_missing: int,
) -> PushAccepted | PushConflict:
    """After a push was refused as stale: accepted if it is already in, else the
    conflict with the server's version and up to ``max_missing`` missing deltas.
    :class:`ThreadNotFound` if the thread is gone."""
    upto = base_version + max(len(deltas), max_missing)
    stored = await recorder.deltas(thread_id, after=base_version, upto=upto)
    head = await recorder.head(thread_id)
    if head is None:
        raise ThreadNotFound(thread_id)
    if len(stored) >= len(deltas) and all(
        record.delta == delta for record, delta in zip(stored, deltas, strict=False)
    ):
        return accepted(head, replayed=True)
    missing = stored[:max_missing]
    return PushConflict(
        message=(
            f"Thread {thread_id} is at version {head.v}, not {base_version}: "
            "merge the missing deltas and push again on the new version"
        ),
        version=head.v,
        missing=[WireDelta(v=r.v, at=r.at, delta=r.delta) for r in missing],
    )


async def push(
    recorder: ThreadRecorder,
    thread_id: str,
    base_version: int,
    deltas: Sequence[Delta],
    *,
    max_missing: int,
    revive: Revive | None = None,
) -> PushAccepted | PushConflict:
    """Append ``deltas`` on ``base_version``; see the module's docstring."""
    try:
        return await _push_once(recorder, thread_id, base_version, deltas, max_missing)
    except ThreadNotFound:
        if revive is None or not await revive(thread_id):
            raise
    return await _push_once(recorder, thread_id, base_version, deltas, max_missing)


async def _push_once(
    recorder: ThreadRecorder,
    thread_id: str,
    base_version: int,
    deltas: Sequence[Delta],
    max_missing: int,
) -> PushAccepted | PushConflict:
    try:
        return accepted(await recorder.append(thread_id, base_version, deltas))
    except (VersionConflict, ThreadExists):
        return await explain_refusal(
            recorder, thread_id, base_version, deltas, max_missing=max_missing
        )


async def push_each(
    recorder: ThreadRecorder,
    appends: Sequence[Append],
    *,
    max_missing: int,
    revive: Revive | None = None,
) -> list[PushAccepted | PushConflict | ThreadlineError]:
    """Several pushes committed together, each accepted or refused alone. With
    ``revive``, the pushes that found their thread archived are applied after
    restoring it, in their order (a failed restore is that push's outcome)."""
    outcomes = await _push_each_once(recorder, appends, max_missing)
    if revive is None:
        return outcomes
    missing = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, ThreadNotFound)]
    revived: set[str] = set()
    for thread_id in dict.fromkeys(appends[i][0] for i in missing):
        try:
            if await revive(thread_id):
                revived.add(thread_id)
        except ThreadlineError as exc:
            for i in missing:
                if appends[i][0] == thread_id:
                    outcomes[i] = exc
    again = [i for i in missing if appends[i][0] in revived]
    if again:
        retried = await _push_each_once(recorder, [appends[i] for i in again], max_missing)
        for i, outcome in zip(again, retried, strict=True):
            outcomes[i] = outcome
    return outcomes


async def append_all(
    recorder: ThreadRecorder, appends: Sequence[Append], *, revive: Revive | None = None
) -> list[ThreadHead]:
    """:meth:`~ThreadRecorder.append_many` (all or nothing); with ``revive``, a
    thread it finds archived is restored and the whole batch tried again."""
    revived: set[str] = set()
    while True:
        try:
            return await recorder.append_many(appends)
        except (ThreadNotFound, ThreadExists) as exc:
            thread_id = exc.thread_id
            if revive is None or thread_id in revived or not await revive(thread_id):
                raise
            revived.add(thread_id)


async def _push_each_once(
    recorder: ThreadRecorder, appends: Sequence[Append], max_missing: int
) -> list[PushAccepted | PushConflict | ThreadlineError]:
    results = await recorder.append_each(appends)
    outcomes: list[PushAccepted | PushConflict | ThreadlineError] = []
    for (thread_id, base, deltas), result in zip(appends, results, strict=True):
        if isinstance(result, ThreadHead):
            outcomes.append(accepted(result))
        elif isinstance(result, VersionConflict | ThreadExists):
            try:
                outcomes.append(
                    await explain_refusal(
                        recorder, thread_id, base, deltas, max_missing=max_missing
                    )
                )
            except ThreadlineError as exc:
                outcomes.append(exc)
        else:
            outcomes.append(result)
    return outcomes
