"""Rollback planning: which file goes back to which state, and whether it may. Pure.

The file log is a history of states per path: each change takes a path from
``before`` to ``after``. A rollback record reverts changes (``reverts``); a
change is *live* while no live record reverts it (:func:`dead_seqs`). Two
kinds of rollback are planned here, one :class:`PathPlan` per path:

- :func:`plan_operation` undoes the live changes of one operation. The
  newest of them must still be what the log last recorded for the path, else
  a later change is in the way (roll that back first, or force).
- :func:`plan_rewind` undoes every change recorded after a message: each path
  goes back to the state before the first of them.

:func:`decide` then compares a plan with the file on disk. A file is
overwritten only if it still holds what the changes left (or with force);
a file that already is as the rollback would leave it is left alone; a file
edited since is refused. Contents are compared, not modes: a rollback sets
the mode it restores.

A content the log does not hold (:class:`~threadline.files.log.UnknownContent`,
from an import whose transcript did not show the file) is never written: a
path whose rollback would need it is refused, forced or not, and marked
``unrecorded``; a path whose changes left one cannot be checked against the
disk, so it is refused unless forced.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from threadline.files.log import FileChange, FileState, State, UnknownContent, same_content
from threadline.files.workdir import DiskFile, describe_state
from threadline.model import _Frozen

RollbackAction = Literal["restore", "remove", "recreate", "none"]
RollbackStatus = Literal["done", "planned", "unchanged", "refused", "failed"]

FORCE_HINT = "run the rollback again with force (--force) to overwrite it; that is recorded too"


class FileOutcome(_Frozen):
    """What a rollback did (or, in a dry run, would do) to one file.

    ``action`` is what it writes: ``restore`` earlier content, ``remove`` a
    file the changes created, ``recreate`` one they deleted, or ``none``.
    ``status`` is ``done`` (``planned`` in a dry run), ``unchanged`` (already
    as the rollback leaves it), ``refused`` (the file is not what the changes
    left; ``reason`` says why and what to do) or ``failed`` (the write raised
    an error; run the rollback again to finish). ``forced`` marks a file
    overwritten although it was refused. ``unrecorded`` marks a file refused
    because the content to put back was never recorded (an imported edit whose
    transcript did not hold it): no rollback, forced or not, can restore it.
    ``changes`` are the undone changes.
    """

    path: str
    action: RollbackAction
    status: RollbackStatus
    forced: bool = False
    unrecorded: bool = False
    reason: str | None = None
    changes: tuple[int, ...] = ()


class RollbackReport(_Frozen):
    """The outcome of a rollback, one :class:`FileOutcome` per file, by path.

    ``operation_id`` is the rollback's own operation (its recorded changes;
    roll it back to undo the rollback), or ``None`` if it wrote nothing.
    ``resumed`` says it finished an interrupted rollback; ``finished`` is
    false while files ``failed``.
    """

    thread_id: str
    undoes_operation: str | None = None
    after_message: str | None = None
    operation_id: str | None = None
    dry_run: bool = False
    resumed: bool = False
    finished: bool = True
    files: tuple[FileOutcome, ...] = ()

    @property
    def refused(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if f.status == "refused")

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if f.status == "failed")

    @property
    def ok(self) -> bool:
        """Every file was rolled back (or already was)."""
        return not self.refused and not self.failed


def dead_seqs(changes: Iterable[FileChange]) -> set[int]:
    """The changes (by ``seq``) that a live change reverts.

    ``changes`` must hold every change that reverts any of them, transitively
    (a reverting change always comes later, so newest first settles each).
    """
    dead: set[int] = set()
    for change in sorted(changes, key=lambda c: c.seq, reverse=True):
        if change.seq not in dead:
            dead.update(change.reverts)
    return dead


@dataclass(frozen=True, slots=True)
class PathPlan:
    """How to roll one path back: from ``expected`` (what the undone changes
    left) to ``target``. ``reverts`` are the changes the rollback's record
    names; ``obstacle`` is why the log alone refuses (unless forced);
    ``journaled`` marks a step of an interrupted rollback, already recorded."""

    path: str
    undoes: tuple[int, ...]
    reverts: tuple[int, ...]
    expected: State
    target: State
    remove_dirs: tuple[str, ...] = ()
    obstacle: str | None = None
    journaled: bool = False


def _by_path(changes: Iterable[FileChange]) -> dict[str, list[FileChange]]:
    grouped: dict[str, list[FileChange]] = {}
    for change in sorted(changes, key=lambda c: c.seq):
        grouped.setdefault(change.path, []).append(change)
    return dict(sorted(grouped.items()))


def _removed_dirs(first: FileChange) -> tuple[str, ...]:
    return first.dirs if first.before is None else ()


def plan_operation(
    operation: Sequence[FileChange],
    reverting: Sequence[FileChange],
    latest: dict[str, FileChange],
) -> tuple[list[PathPlan], list[FileOutcome]]:
    """Plans to undo ``operation``'s live changes, and the outcomes of its paths
    that are already rolled back. ``reverting`` holds every change that
    reverts one of them, transitively; ``latest`` the newest change per path."""
    dead = dead_seqs([*operation, *reverting])
    plans: list[PathPlan] = []
    settled: list[FileOutcome] = []
    for path, changes in _by_path(operation).items():
        live = [c for c in changes if c.seq not in dead]
        if not live:
            undone = {c.seq for c in changes}
            by = sorted(
                {r.operation_id for r in reverting if r.seq not in dead and undone & set(r.reverts)}
            )
            settled.append(
                FileOutcome(
                    path=path,
                    action="none",
                    status="unchanged",
                    reason=f"already rolled back by {', '.join(by) or 'an earlier rollback'}",
                    changes=tuple(sorted(undone)),
                )
            )
            continue
        obstacle = None
        for older, newer in itertools.pairwise(live):
            if newer.before_unknown or older.after_unknown:
                obstacle = (
                    f"what it held between changes #{older.seq} and #{newer.seq} of the "
                    "operation is not recorded, so whether something else changed it in "
                    "between is not known"
                )
            elif not same_content(newer.before, older.after):
                obstacle = (
                    f"it was changed between changes #{older.seq} and #{newer.seq} of the "
                    "operation, by another operation or by hand"
                )
        newest = live[-1]
        current = latest.get(path, newest)
        if current.seq != newest.seq and not _same_file(current.after, newest.after):
            obstacle = (
                f"operation {current.operation_id} changed it since (change #{current.seq}); "
                "roll that back first"
            )
        seqs = tuple(c.seq for c in live)
        plans.append(
            PathPlan(
                path=path,
                undoes=seqs,
                reverts=seqs,
                expected=newest.after,
                target=live[0].before,
                remove_dirs=_removed_dirs(live[0]),
                obstacle=obstacle,
            )
        )
    return plans, settled


def plan_rewind(after_message: Sequence[FileChange]) -> list[PathPlan]:
    """Plans to put every path changed in ``after_message`` (every change recorded
    since a message, oldest first) back as it was before the first of them.

    The record of each path reverts all of its changes, live or not: undoing
    the rewind then brings back exactly what was live before it.
    """
    plans: list[PathPlan] = []
    for path, changes in _by_path(after_message).items():
        seqs = tuple(c.seq for c in changes)
        plans.append(
            PathPlan(
                path=path,
                undoes=seqs,
                reverts=seqs,
                expected=changes[-1].after,
                target=changes[0].before,
                remove_dirs=_removed_dirs(changes[0]),
            )
        )
    return plans


def plan_resume(journaled: Sequence[FileChange]) -> list[PathPlan]:
    """Plans to finish an interrupted rollback: each of its recorded changes,
    written before any file was touched, is made (or found made). Where a path
    has several (a forced resume adds one), the newest says what to write."""
    newest = {change.path: change for change in sorted(journaled, key=lambda c: c.seq)}
    return [
        PathPlan(
            path=change.path,
            undoes=change.reverts,
            reverts=change.reverts,
            expected=change.before,
            target=change.after,
            remove_dirs=change.dirs if change.after is None else (),
            journaled=True,
        )
        for _, change in sorted(newest.items())
    ]


def action_of(current: FileState | None, target: State) -> RollbackAction:
    if target is None:
        return "none" if current is None else "remove"
    return "recreate" if current is None else "restore"


def _same_file(a: State, b: State) -> bool:
    if isinstance(a, FileState) and isinstance(b, FileState):
        return a.hash == b.hash and a.mode == b.mode
    return same_content(a, b)


def unrecorded_reason(plan: PathPlan) -> str:
    """Why ``plan`` cannot be carried out: the content to put back was never recorded."""
    return (
        f"its content before change #{plan.undoes[0]} is not recorded (not in the transcript "
        "it was imported from), so it cannot be put back, not even with --force; restore it "
        "by hand (from version control, for instance)"
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """:func:`decide`'s verdict: the outcome, and whether to write the target."""

    outcome: FileOutcome
    write: bool


def decide(plan: PathPlan, disk: DiskFile, *, force: bool, dry_run: bool) -> Decision:
    """Whether to put ``plan.target`` in place of what is on ``disk``."""

    def outcome(
        status: RollbackStatus, reason: str | None = None, forced: bool = False
    ) -> Decision:
        write = status == "planned"
        action = action_of(disk.state, plan.target) if write else "none"
        if write and not dry_run:
            status = "done"
        return Decision(
            FileOutcome(
                path=plan.path,
                action=action,
                status=status,
                forced=forced,
                unrecorded=isinstance(plan.target, UnknownContent),
                reason=reason,
                changes=plan.undoes,
            ),
            write,
        )

    if isinstance(plan.target, UnknownContent):
        return outcome("refused", unrecorded_reason(plan))
    if disk.kind == "other":
        return outcome(
            "refused",
            f"{plan.path} is not a regular file any more; move it away, then roll back again",
        )
    if plan.obstacle is not None:
        if force and _same_file(disk.state, plan.target):
            return outcome(
                "unchanged", f"already as the rollback leaves it, though {plan.obstacle}"
            )
        if force:
            return outcome("planned", f"forced: {plan.obstacle}", forced=True)
        return outcome("refused", f"{plan.obstacle}; or {FORCE_HINT}")
    if isinstance(plan.expected, UnknownContent):
        if _same_file(disk.state, plan.target):
            return outcome("unchanged", "already as the rollback leaves it")
        detail = (
            f"what change #{plan.undoes[-1]} left is not recorded (the transcript it was "
            "imported from did not hold it), so whether it was edited since is not known"
        )
        if force:
            return outcome("planned", f"forced: {detail}", forced=True)
        return outcome("refused", f"{detail}; {FORCE_HINT}")
    if same_content(disk.state, plan.expected):
        if _same_file(disk.state, plan.target):
            return outcome("unchanged", "already as the rollback leaves it")
        return outcome("planned")
    if same_content(disk.state, plan.target):
        if plan.journaled:
            return outcome("unchanged", "done before the rollback was interrupted")
        return outcome(
            "unchanged", "already as before the changes (never written, or undone by hand)"
        )
    found, wanted = disk.describe(), describe_state(plan.expected)
    detail = f"it was edited since (expected {wanted}, found {found})"
    if force:
        return outcome("planned", f"forced: {detail}", forced=True)
    return outcome("refused", f"{detail}; {FORCE_HINT}")
