"""Live capture: the agents' session folders, imported as they are written.

:func:`catch_up` imports every session under the watched folders once;
:class:`Watcher` then follows file events (``watchfiles``: inotify on Linux,
FSEvents on macOS — no polling of the folders) and imports each changed
*unit* again. Imports are idempotent and an incremental import equals a
one-shot one (a response or usage that arrives later amends its message), so
importing a unit again adds exactly what was written since; a watcher killed
mid-import and started again loses and doubles nothing.

A unit is what must be imported together to give what a one-shot import of
the whole folder gives:

- Claude Code: the project folder (``<root>/<project>/``): a resumed session
  replays the lines of the session it resumes, and a replayed line belongs to
  the earliest session of the run, so sessions of one project are imported
  together; sub-agent files are in the project folder too.
- Codex: the folder of the rollout file (Codex's day folder,
  ``YYYY/MM/DD``): a fork re-emits its parent's lines and a sub-agent's
  rollout names its parent, and both are matched with their parent within
  one import; they are written the same day (a fork of a session of another
  day is matched only by a full import).
- OpenHands: the conversation folder (the one holding ``base_state.json`` or
  ``events/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from threadline.importers import claude_code, codex, openhands
from threadline.importers.core import ImportReport
from threadline.importers.progress import ImportProgress
from threadline.store import ThreadStore

Agent = Literal["claude-code", "codex", "openhands"]
AGENTS: tuple[Agent, ...] = ("claude-code", "codex", "openhands")
DEBOUNCE_MS = 50
"""How long file events are gathered before an import: a burst of lines (one
response is several) is imported once, within a fraction of a second."""


def default_folders() -> dict[Agent, list[Path]]:
    """Each agent's default session folder (``~/.claude/projects``,
    ``~/.codex/sessions``, ``~/.openhands/conversations``)."""
    return {
        "claude-code": claude_code.default_paths(),
        "codex": codex.default_paths(),
        "openhands": openhands.default_paths(),
    }


@dataclass(frozen=True)
class Unit:
    """What is imported together (see the module docstring)."""

    agent: Agent
    path: Path


def unit_of(agent: Agent, root: Path, path: Path) -> Unit | None:
    """The unit a changed ``path`` under the watched folder ``root`` belongs to,
    or None for a file that is no session's (a lock file, a temporary file)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    if not parts:
        return None
    match agent:
        case "claude-code":
            if path.suffix != ".jsonl" and not path.name.endswith(".meta.json"):
                return None
            return Unit(agent, root / parts[0] if len(parts) > 1 else root)
        case "codex":
            return Unit(agent, path.parent) if path.suffix == ".jsonl" else None
        case "openhands":
            for folder in (path, *path.parents):
                if folder == root.parent:
                    break
                if (folder / "base_state.json").exists() or (folder / "events").is_dir():
                    return Unit(agent, folder)
            return None


_Importer = Callable[..., Awaitable[ImportReport]]
IMPORTERS: dict[Agent, _Importer] = {
    "claude-code": claude_code.import_claude_code,
    "codex": codex.import_codex,
    "openhands": openhands.import_openhands,  # a conversation folder, or folders of them
}


async def import_unit(
    store: ThreadStore, unit: Unit, progress: ImportProgress | None = None
) -> ImportReport:
    """Import one unit (a file or folder that may be gone by now: then nothing)."""
    if not unit.path.exists():
        return ImportReport()
    return await IMPORTERS[unit.agent](store, [unit.path], progress=progress)


async def catch_up(
    store: ThreadStore,
    folders: dict[Agent, list[Path]],
    progress: Callable[[Agent], ImportProgress | None] = lambda agent: None,
) -> dict[Agent, ImportReport]:
    """Import everything under ``folders`` once (folders that do not exist are
    left out): what was written while nothing watched."""
    reports: dict[Agent, ImportReport] = {}
    for agent, paths in folders.items():
        present = [path for path in paths if path.exists()]
        if present:
            reports[agent] = await IMPORTERS[agent](store, present, progress=progress(agent))
    return reports


@dataclass
class WatchStats:
    """What a watcher has done so far (for its status line)."""

    imports: int = 0
    messages: int = 0
    threads_created: int = 0
    failures: int = 0
    last: Unit | None = None
    last_error: str | None = None


class Watcher:
    """Follows ``folders`` and imports each changed unit into ``store``.

    ``on_import(unit, report)`` is called after each import (a status line, a
    sync kick); ``on_error(unit, error)`` when one fails (the watcher goes on:
    the next change of that unit imports it again)."""

    def __init__(
        self,
        store: ThreadStore,
        folders: dict[Agent, list[Path]],
        *,
        on_import: Callable[[Unit, ImportReport], Awaitable[None] | None] | None = None,
        on_error: Callable[[Unit, Exception], None] | None = None,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self.store = store
        self.roots = [
            (agent, path.resolve())
            for agent, paths in folders.items()
            for path in paths
            if path.is_dir()
        ]
        self.stats = WatchStats()
        self._on_import = on_import
        self._on_error = on_error
        self._debounce_ms = debounce_ms
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Stop after the import in progress, if any (nothing is left half-written:
        every append is one transaction)."""
        self._stop.set()

    def units(self, changed: Iterable[str]) -> list[Unit]:
        """The units some of the ``changed`` paths belong to, each once."""
        found: dict[Unit, None] = {}
        for raw in changed:
            path = Path(raw)
            for agent, root in self.roots:
                unit = unit_of(agent, root, path)
                if unit is not None:
                    found[unit] = None
                    break
        return list(found)

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Watch until :meth:`stop`. ``ready()`` is called once the file events
        are being received (a write after it is seen)."""
        from watchfiles import awatch

        if not self.roots:
            raise FileNotFoundError("none of the folders to watch exists")
        watching = awatch(
            *(root for _, root in self.roots),
            stop_event=self._stop,
            debounce=self._debounce_ms,
            step=min(self._debounce_ms, 50),
            yield_on_timeout=True,
            rust_timeout=500,
        )
        started = False
        async for changes in watching:
            if not started:
                started = True
                if ready is not None:
                    ready()
            for unit in self.units(path for _, path in changes):
                if self._stop.is_set():
                    break
                await self._import(unit)

    async def _import(self, unit: Unit) -> None:
        try:
            report = await import_unit(self.store, unit)
        except Exception as exc:  # reported; the next change imports it again
            self.stats.failures += 1
            self.stats.last_error = f"{unit.path}: {exc}"
            if self._on_error is not None:
                self._on_error(unit, exc)
            return
        self.stats.imports += 1
        self.stats.messages += report.messages
        self.stats.threads_created += report.threads_created
        self.stats.last = unit
        if self._on_import is not None:
            done = self._on_import(unit, report)
            if done is not None:
                await done
