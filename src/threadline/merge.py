"""Three-way merge of concurrent thread changes, and delta compression. Pure.

Two replicas that both changed a thread since their common ancestor ``base``
(the state at the longest common prefix of their logs) are merged by
:func:`merge_threads`, field by field:

- **one side changed it**: take that side.
- **messages, both changed**: the base's messages that both sides still have,
  then every new message of either side (deduplicated by id) ordered by
  timestamp, ties by id. A truncate therefore removes only the messages its
  replica knew of when it truncated (they are missing from that side); a
  message appended concurrently elsewhere survives it. Every message either
  side acknowledged survives exactly once unless a truncate that saw it
  removed it.
- **title and env, both changed**: the local one (the local title wins if it
  changed).
- **metadata**: the remote's, with every key the local side changed (set or
  removed) applied on top, recursively into objects.
- **sub-agent and summary links**: the remote's, then the local's new ones.

The merged version is greater than both: :func:`merge_deltas` records the
merge with a :class:`~threadline.deltas.MergeDelta`, then the deltas that turn
the remote thread into the merged one (:func:`compress`), then the record
again as many times as it takes for the result to pass ``local.v``. The record
comes first and is named after the merge, so that a merge's deltas (a
truncate that reorders messages, say) are never mistaken for another
replica's equal-looking ones when logs are compared delta by delta.
That also makes a local writer still holding the pre-merge version fail its
next append with :class:`~threadline.errors.VersionConflict` instead of
writing onto a different thread.

:func:`compress` / :func:`decompress` are the spec's delta compression: what
travels between replicas is the few deltas between two states, never the
whole thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import JsonValue

from threadline.deltas import Delta, MergeDelta, diff, fold
from threadline.model import Message, Thread

__all__ = ["compress", "decompress", "merge_deltas", "merge_threads"]

_MISSING = object()


def compress(old: Thread, new: Thread) -> list[Delta]:
    """The fewest deltas that turn ``old`` into ``new`` (the same thread at any
    two states): a truncate if ``new`` dropped or reordered messages, the new
    messages, then one delta per other field that changed. Versions are not
    compared: ``decompress(old, compress(old, new))`` equals ``new`` but for
    ``v``, which counts the deltas actually applied."""
    return diff(old, new.model_copy(update={"v": old.v + 1}))


def decompress(thread: Thread, deltas: Sequence[Delta]) -> Thread:
    """``thread`` with ``deltas`` applied (the inverse of :func:`compress`)."""
    return fold(deltas, thread)


def merge_threads(base: Thread, local: Thread, remote: Thread) -> Thread:
    """The three-way merge of ``local`` and ``remote`` from their common ancestor
    ``base`` (rules in the module docstring), at version
    ``max(local.v, remote.v) + 1``. Deterministic; ``merge_threads(b, x, b)``
    is ``x`` and ``merge_threads(b, b, y)`` is ``y`` (but for the version)."""
    merged = remote.model_copy(
        update={
            "v": max(local.v, remote.v) + 1,
            "messages": _merge_messages(base.messages, local.messages, remote.messages),
            "title": local.title if local.title != base.title else remote.title,
            "env": local.env if local.env != base.env else remote.env,
            "metadata": _merge_objects(base.metadata, local.metadata, remote.metadata),
            "child_thread_ids": _merge_links(remote.child_thread_ids, local.child_thread_ids),
            "summary_thread_ids": _merge_links(remote.summary_thread_ids, local.summary_thread_ids),
        }
    )
    return merged


def merge_deltas(base: Thread, local: Thread, remote: Thread) -> list[Delta]:
    """The deltas to append after ``remote`` (the server's log) so that the log
    folds to :func:`merge_threads` ``(base, local, remote)``: :func:`compress`
    of the remote thread into the merged one, then the merge's record, one or
    more :class:`MergeDelta` so that the merged version exceeds ``local.v`` and
    ``remote.v``."""
    merged = merge_threads(base, local, remote)
    changes = compress(remote, merged)
    padding = max(0, local.v - (remote.v + len(changes)))
    record = MergeDelta(id=_merge_id(local, remote), base=base.v, local=local.v, remote=remote.v)
    return [record, *changes, *([record] * padding)]


def _merge_id(local: Thread, remote: Thread) -> str:
    """A name for the merge of ``local`` and ``remote``, the same wherever they
    are merged (the merge is deterministic)."""
    digest = hashlib.sha256(local.model_dump_json().encode())
    digest.update(remote.model_dump_json().encode())
    return "merge-" + digest.hexdigest()[:24]


def _merge_messages(
    base: tuple[Message, ...], local: tuple[Message, ...], remote: tuple[Message, ...]
) -> tuple[Message, ...]:
    if local in (base, remote):
        return remote
    if remote == base:
        return local
    base_ids = {m.id for m in base}
    local_ids = {m.id for m in local}
    remote_ids = {m.id for m in remote}
    kept = tuple(m for m in base if m.id in local_ids and m.id in remote_ids)
    new: dict[str, Message] = {}
    for message in (*local, *remote):
        if message.id not in base_ids and message.id not in new:
            new[message.id] = message
    return kept + tuple(sorted(new.values(), key=lambda m: (m.timestamp, m.id)))


def _merge_objects(
    base: dict[str, JsonValue], local: dict[str, JsonValue], remote: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    """``remote`` with every key that ``local`` changed from ``base`` applied."""
    result = dict(remote)
    for key in (*base, *(k for k in local if k not in base)):
        before = base.get(key, _MISSING)
        after = local.get(key, _MISSING)
        if after == before:
            continue
        if after is _MISSING:
            result.pop(key, None)
            continue
        theirs = result.get(key, _MISSING)
        if isinstance(before, dict) and isinstance(after, dict) and isinstance(theirs, dict):
            result[key] = _merge_objects(before, after, theirs)
        else:
            result[key] = after  # type: ignore[assignment]
    return result


def _merge_links(remote: tuple[str, ...], local: tuple[str, ...]) -> tuple[str, ...]:
    return remote + tuple(link for link in local if link not in remote)
