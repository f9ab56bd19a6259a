"""Where the CLI finds its sync server, and how a thread's sync state reads.

The server and token come from ``--remote`` / ``--token``, else from the
environment (``THREADLINE_REMOTE`` / ``THREADLINE_TOKEN``), else from the
config file ``$THREADLINE_HOME/sync.toml``, which may also set the policy of
live sub-agent threads for the whole team (see docs/sync.md)::

    remote = "https://threads.example.com"
    token = "tl_..."

    [policy.subagent]
    memory_ttl = 60     # seconds in memory after the last use (0: not in memory)
    local = false       # keep them in the local store too
    remote = "none"     # "high" or "low" priority to sync them (needs local), or "none"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from threadline.recorders.base import ThreadLog
from threadline.recorders.sync_state import SyncLedger, SyncState, ThreadKind
from threadline.sync.service import DEFAULT_REMOTE, RemoteSync
from threadline.tiered import DEFAULT_POLICIES, PersistencePolicy, TieredStore


def config_path() -> Path:
    """``$THREADLINE_HOME/sync.toml`` (``~/.threadline/sync.toml``)."""
    home = os.environ.get("THREADLINE_HOME") or Path.home() / ".threadline"
    return Path(home) / "sync.toml"


@dataclass(frozen=True)
class SyncConfig:
    """The sync server to use and its token (either may be missing), and the
    sub-agent policy the config file sets (``None``: the default one)."""

    remote: str | None
    token: str | None
    subagent: PersistencePolicy | None = None

    def policies(self) -> dict[ThreadKind, PersistencePolicy]:
        """:data:`~threadline.tiered.DEFAULT_POLICIES` with the configured sub-agent policy."""
        policies = dict(DEFAULT_POLICIES)
        if self.subagent is not None:
            policies["subagent"] = self.subagent
        return policies

    @classmethod
    def resolve(cls, remote: str | None = None, token: str | None = None) -> SyncConfig:
        """The given values, else the environment's, else the config file's."""
        remote = remote or os.environ.get("THREADLINE_REMOTE") or None
        token = token or os.environ.get("THREADLINE_TOKEN") or None
        subagent = None
        path = config_path()
        if path.is_file():
            try:
                found = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"The sync config {path} is not valid TOML: {exc}") from exc
            remote = remote or _text(found.get("remote"), path, "remote")
            token = token or _text(found.get("token"), path, "token")
            subagent = _subagent_policy(found.get("policy"), path)
        return cls(remote, token, subagent)


def _subagent_policy(table: object, path: Path) -> PersistencePolicy | None:
    """The ``[policy.subagent]`` table of the config file, if any."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - {"subagent"}:
        raise ValueError(f"[policy] in {path} may only have a [policy.subagent] table")
    found = table.get("subagent")
    if found is None:
        return None
    if not isinstance(found, dict) or set(found) - {"memory_ttl", "local", "remote"}:
        raise ValueError(f"[policy.subagent] in {path} takes memory_ttl, local and remote")
    default = DEFAULT_POLICIES["subagent"]
    ttl = found.get("memory_ttl", default.memory_ttl)
    local = found.get("local", default.local)
    remote = found.get("remote", "none")
    if not (ttl is None or (isinstance(ttl, int | float) and not isinstance(ttl, bool))):
        raise ValueError(f"memory_ttl in {path} must be a number of seconds")
    if not isinstance(local, bool):
        raise ValueError(f"local in {path} must be true or false")
    if remote not in ("none", "high", "low"):
        raise ValueError(f'remote in {path} must be "none", "high" or "low"')
    try:
        return PersistencePolicy(
            memory_ttl=float(ttl) if ttl else None,
            local=local,
            remote=None if remote == "none" else RemoteSync(priority=remote),
        )
    except ValueError as exc:
        raise ValueError(f"[policy.subagent] in {path}: {exc}") from exc


def _text(value: object, path: Path, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{key} in {path} must be a string")


def status_text(state: SyncState) -> str:
    """``synced``, ``pending``, ``conflict-merged`` or ``failing: <reason>``,
    with the time of the next try of a failing thread (local time)."""
    text = state.status
    if state.error is not None and state.next_attempt is not None:
        at = datetime.fromtimestamp(state.next_attempt / 1000).strftime("%Y-%m-%d %H:%M:%S")
        text += f" (next try {at})"
    return text


async def sync_statuses(
    recorder: ThreadLog,
    thread_ids: Sequence[str],
    kinds: Mapping[ThreadKind, RemoteSync | None] = DEFAULT_REMOTE,
) -> dict[str, str]:
    """The sync status of each of ``thread_ids`` stored locally by ``recorder``
    (``local only`` for a kind that does not sync); empty if the recorder
    keeps no sync ledger."""
    ledger = recorder.local if isinstance(recorder, TieredStore) else recorder
    if not isinstance(ledger, SyncLedger) or not thread_ids:
        return {}
    states = await ledger.sync_states(thread_ids)
    return {
        thread_id: status_text(state) if kinds.get(state.kind) is not None else "local only"
        for thread_id, state in states.items()
    }
