"""Claude Code compactions → summary threads.

A ``compact_boundary`` line and the ``isCompactSummary`` message after it
become a summary thread ``<session>:compact-<uuid>``; the summariser's own run
(an ``agent-acompact-*`` file, already parsed as a summary thread) is folded
into the compaction it produced.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.importers.core import ParsedThread
from threadline.model import Message


def boundary_parents(messages: Sequence[Message]) -> set[object]:
    """The ``logicalParentUuid`` of every compaction boundary among ``messages``."""
    return {
        m.metadata.get("logicalParentUuid")
        for m in messages
        if m.role == "system" and m.metadata.get("subtype") == "compact_boundary"
    }


def compaction_threads(main: ParsedThread, agents: list[ParsedThread]) -> list[ParsedThread]:
    """A summary thread per ``compact_boundary``: the ``isCompactSummary`` message
    that follows it, after the summariser's own run when its file is there."""
    summaries: list[ParsedThread] = []
    messages = main.messages
    for index, boundary in enumerate(messages):
        if boundary.role != "system" or boundary.metadata.get("subtype") != "compact_boundary":
            continue
        summary = next(
            (m for m in messages[index + 1 :] if m.metadata.get("isCompactSummary") is True),
            None,
        )
        logical_parent = boundary.metadata.get("logicalParentUuid")
        runs = [agent for agent in agents if agent.kind == "summary" and agent.messages]
        run = next(
            (r for r in runs if r.messages[0].metadata.get("parentUuid") == logical_parent),
            None,
        )
        if run is None:
            # The summariser's file need not start at the boundary's logical
            # parent (issue 13): the earliest run no boundary claims, among
            # those that began before this boundary, is this compaction's.
            claimed_parents = boundary_parents(messages)
            run = next(
                (
                    r
                    for r in sorted(runs, key=lambda r: r.created)
                    if r.messages[0].metadata.get("parentUuid") not in claimed_parents
                    and r.created <= boundary.timestamp
                ),
                None,
            )
        thread = ParsedThread(
            id=f"{main.id}:compact-{boundary.id}",
            kind="summary",
            created=boundary.timestamp,
            source=main.source,
            title=f"Summary: {main.title or 'Conversation'}",
            env=dict(main.env),
            metadata={
                "imported_from": main.source,
                "compact_boundary": boundary.id,
                **{k: boundary.metadata[k] for k in ("compactMetadata",) if k in boundary.metadata},
            },
            origin_id=main.id,
        )
        if run is not None:  # the summariser's run is this summary thread
            agents.remove(run)
            thread.messages.extend(run.messages)
            thread.metadata["summariser_file"] = run.source
        if summary is not None:
            thread.messages.append(
                summary.model_copy(
                    update={
                        "id": f"{summary.id}:summary",
                        "role": "assistant",
                        "metadata": {"summary_of": main.id, "message": summary.id},
                    }
                )
            )
        if thread.messages:
            summaries.append(thread)
    return summaries


def compaction_in_progress(run: ParsedThread, main: ParsedThread) -> bool:
    """Whether ``run``, a summariser run left unclaimed by the session's
    boundaries, is the session's latest activity (its boundary not written yet)."""
    if run.kind != "summary" or not run.messages:
        return False
    last = max(m.timestamp for m in run.messages)
    return all(m.timestamp <= last for m in main.messages)
