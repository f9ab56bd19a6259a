"""``threadline doctor``: check that a store is consistent, and repair what can be.

Checks, in order (each finding names the check, the thread or object, and what
is wrong):

- ``pending``: an archive or restore interrupted by a crash (recovery on open
  normally handles these; one still running in another process is a note).
- ``log``: an active thread's log is not versions ``1..v``, or does not fold.
- ``head`` / ``totals``: the stored head (title, counts, relationships, ...) or
  its cost totals differ from the fold of the log.
- ``messages``: the message projection differs from the fold of the log.
- ``duplicate``: a thread is both active and archived.
- ``archive``: an archived thread's object is missing, damaged, or does not
  fold to its metadata.
- ``link``: a thread lists a sub-agent or summary whose parent or origin is
  another thread (a problem), or a related thread that no longer exists (a
  note: deleting a sub-agent thread is allowed).
- ``orphan``: an object in cold storage that no archived thread or pending
  operation refers to.

``repair`` rebuilds heads and projections from the log (the log is the truth)
by replaying it through the append planner (:func:`threadline.planner.replay`,
the same plan each backend's ``rebuild_snapshot`` writes),
finishes or undoes pending operations, and deletes orphan objects. What it
cannot repair (a broken log, a lost object, a wrong link in an immutable log)
stays reported as a problem.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from threadline.errors import ArchiveObjectCorrupt, ArchiveObjectMissing, InvalidDelta
from threadline.lifecycle.archive import Lifecycle
from threadline.model import ArchivedThread, ThreadHead
from threadline.planner import replay
from threadline.recorders.roles import ArchiveLedger

Severity = Literal["problem", "note"]
_PAGE = 200
_T = TypeVar("_T", ThreadHead, ArchivedThread)


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str  # a thread id or an object URL
    detail: str
    severity: Severity = "problem"
    repaired: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "subject": self.subject,
            "detail": self.detail,
            "severity": self.severity,
            "repaired": self.repaired,
        }


@dataclass
class DoctorReport:
    """What :func:`run_doctor` found (and, with ``repair``, fixed)."""

    active_threads: int = 0
    archived_threads: int = 0
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        """Problems still there (not repaired)."""
        return [f for f in self.findings if f.severity == "problem" and not f.repaired]

    @property
    def clean(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "active_threads": self.active_threads,
            "archived_threads": self.archived_threads,
            "objects": self.objects,
            "findings": [f.to_json() for f in self.findings],
        }


async def run_doctor(lifecycle: Lifecycle, *, repair: bool = False) -> DoctorReport:
    """Check every thread, archived thread and archive object of a store."""
    recorder = lifecycle.recorder
    report = DoctorReport()
    # Objects are listed before the records that refer to them are read, so an
    # object written meanwhile is always referred to by what is read after.
    keys = await lifecycle.cold.keys()
    report.objects = len(keys)
    referenced: set[str] = set()
    for op in await recorder.pending_lifecycle():
        referenced.update(o.key for o in op.objects)
        names = ", ".join(op.thread_ids)
        running = lifecycle.is_running(op)
        action = await lifecycle.recover_op(op) if repair and not running else None
        if running or (repair and action is None):
            report.findings.append(
                Finding("pending", names, f"{op.kind} op {op.id} is running elsewhere", "note")
            )
        else:
            report.findings.append(
                Finding(
                    "pending",
                    names,
                    action or f"unfinished {op.kind} op {op.id} (started at {op.started} ms)",
                    repaired=action is not None,
                )
            )
    if not await _check_heads_readable(recorder, report, repair=repair):
        return report  # the heads cannot be listed until they are rebuilt
    known: dict[str, ThreadHead] = {}
    async for head in _pages(recorder.list_heads):
        report.active_threads += 1
        known[head.id] = await _check_active(lifecycle, head, report, repair=repair)
    async for entry in _pages(recorder.list_archived):
        report.archived_threads += 1
        referenced.add(entry.object.key)
        if entry.id in known:
            report.findings.append(
                Finding("duplicate", entry.id, "the thread is both active and archived")
            )
        known.setdefault(entry.id, entry.head)
        await _check_archived(lifecycle, entry, report)
    _check_links(known, report)
    for key in keys:
        if key in referenced:
            continue
        if repair:
            await lifecycle.cold.delete(key)
        report.findings.append(
            Finding(
                "orphan",
                lifecycle.cold.url_of(key),
                "no archived thread or pending operation refers to this object",
                repaired=repair,
            )
        )
    return report


async def _check_heads_readable(
    recorder: ArchiveLedger, report: DoctorReport, *, repair: bool
) -> bool:
    """Report (and with ``repair``, rebuild from the log) the stored heads that
    cannot be read; whether every head can be read now."""
    unreadable = await recorder.unreadable_heads()
    for thread_id in unreadable:
        detail = "the stored head cannot be read (damaged bytes)"
        repaired = False
        if repair:
            try:
                repaired = await recorder.rebuild_snapshot(thread_id) is not None
            except InvalidDelta as exc:
                detail += f"; the log does not fold either: {exc}"
            else:
                detail += "; rebuilt from the log"
        report.findings.append(Finding("head", thread_id, detail, repaired=repaired))
    return all(f.repaired for f in report.findings if f.check == "head")


async def _pages(
    read: Callable[..., Awaitable[list[_T]]],
) -> AsyncIterator[_T]:
    after: tuple[int, str] | None = None
    while True:
        page = await read(limit=_PAGE, after=after)
        for item in page:
            yield item
        if len(page) < _PAGE:
            return
        last = page[-1]
        head = last.head if isinstance(last, ArchivedThread) else last
        after = (head.last_activity, head.id)


async def _check_active(
    lifecycle: Lifecycle, head: ThreadHead, report: DoctorReport, *, repair: bool
) -> ThreadHead:
    """The head as folded from the log (the stored one if the log is broken)."""
    recorder = lifecycle.recorder
    log = await recorder.deltas(head.id)
    versions = [r.v for r in log]
    if versions != list(range(1, len(log) + 1)) or len(log) != head.v:
        report.findings.append(
            Finding("log", head.id, f"the log has versions {_span(versions)}, the head v{head.v}")
        )
        return head
    try:
        # The planner's replay: what a rebuild (repair) writes.
        replayed = replay(head.id, [r.delta for r in log])
    except InvalidDelta as exc:
        report.findings.append(Finding("log", head.id, f"the log does not fold: {exc}"))
        return head
    folded = replayed.head
    messages = tuple(row.message for row in replayed.messages)
    thread = await recorder.load(head.id)
    wrong: list[Finding] = []
    if head.model_copy(update={"totals": folded.totals}) != folded:
        fields = [
            name
            for name in ThreadHead.model_fields
            if name != "totals" and getattr(head, name) != getattr(folded, name)
        ]
        wrong.append(Finding("head", head.id, f"head differs from the log in {', '.join(fields)}"))
    if head.totals != folded.totals:
        wrong.append(Finding("totals", head.id, "cost totals differ from the sum over the log"))
    if thread is None or thread.messages != messages:
        count = "none" if thread is None else len(thread.messages)
        wrong.append(
            Finding(
                "messages",
                head.id,
                f"the message projection ({count}) differs from the log ({len(messages)})",
            )
        )
    if wrong and repair:
        repaired = await recorder.rebuild_snapshot(head.id) == folded
        wrong = [
            Finding(f.check, f.subject, f.detail + "; rebuilt from the log", repaired=repaired)
            for f in wrong
        ]
    report.findings.extend(wrong)
    return folded


async def _check_archived(
    lifecycle: Lifecycle, entry: ArchivedThread, report: DoctorReport
) -> None:
    try:
        await lifecycle.read_archived_log(entry)
    except (ArchiveObjectMissing, ArchiveObjectCorrupt) as exc:
        report.findings.append(Finding("archive", entry.id, str(exc)))


def _check_links(known: dict[str, ThreadHead], report: DoctorReport) -> None:
    for head in known.values():
        for child_id in head.child_thread_ids:
            child = known.get(child_id)
            if child is None:
                missing = f"sub-agent thread {child_id} no longer exists"
                report.findings.append(Finding("link", head.id, missing, "note"))
            elif child.parent_thread_id not in (None, head.id):
                report.findings.append(
                    Finding(
                        "link",
                        head.id,
                        f"lists sub-agent thread {child_id}, whose parent is "
                        f"{child.parent_thread_id}",
                    )
                )
        for summary_id in head.summary_thread_ids:
            summary = known.get(summary_id)
            if summary is None:
                missing = f"summary thread {summary_id} no longer exists"
                report.findings.append(Finding("link", head.id, missing, "note"))
            elif summary.origin_thread_id not in (None, head.id):
                report.findings.append(
                    Finding(
                        "link",
                        head.id,
                        f"lists summary thread {summary_id}, made from {summary.origin_thread_id}",
                    )
                )
        for kind, other in (("parent", head.parent_thread_id), ("origin", head.origin_thread_id)):
            if other is not None and other not in known:
                report.findings.append(
                    Finding("link", head.id, f"its {kind} thread {other} no longer exists", "note")
                )


def _span(versions: list[int]) -> str:
    if not versions:
        return "none"
    return f"{versions[0]}..{versions[-1]} ({len(versions)} logged)"
