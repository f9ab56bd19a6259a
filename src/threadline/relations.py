"""Thread relationships: sub-agent threads, summary threads, trees and roots.

A sub-agent thread hangs under the thread that spawned it (its parent); a
summary thread hangs under the thread it summarises (its source). Both ends
record the link: the new thread's ``thread:create`` names its parent
(``parent_thread_id``) or source (``origin_thread_id``), and the parent or
source appends a ``child:link`` or ``summary:link`` delta. The two are
appended in one transaction (:meth:`~threadline.recorders.roles.ThreadLog.append_many`), so a crash
never leaves a child its parent does not know, or the reverse.

Threads can be deleted while others still link to them (an ephemeral
sub-agent expires, a user deletes a parent). Lookups then report the linked
id as missing; they never fail because of it.

Everything here talks to storage roles only: the thread log, and the link
index (:class:`~threadline.recorders.roles.LinkIndex`) for trees and roots,
whose walks are one recursive query each on the SQL backends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from threadline.costs import CostLine, roll_up
from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageDelta,
    MetadataDelta,
    SummaryLinkDelta,
    ThreadCreate,
    fold,
)
from threadline.errors import ThreadNotFound, VersionConflict
from threadline.events import THREAD_CREATED, THREAD_UPDATED, ThreadEvent
from threadline.ids import new_thread_id
from threadline.model import JsonObject, Message, Thread, ThreadHead
from threadline.recorders.roles import (
    ArchiveLedger,
    LinkGraph,
    LinkIndex,
    ThreadLink,
    ThreadLog,
    link_index,
    usage_index,
)

if TYPE_CHECKING:
    from threadline.store import ThreadStore

# A link appends to the parent at the version just read; if the parent moved
# on meanwhile (its agent appended a message, another sub-agent was linked),
# read it again and retry. A link commutes with any change, and every round of
# a race lets at least one contender through, so this many attempts outlast a
# burst of that many concurrent writes to one parent.
_LINK_ATTEMPTS = 32

Relation = Literal["parent", "origin", "child", "summary"]
NodeKind = Literal["root", "child", "summary"]

# What a linked thread is made of, given the head of the thread above it.
_Maker = Callable[
    [ThreadHead], tuple[ThreadCreate, Message, type[ChildLinkDelta] | type[SummaryLinkDelta]]
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


HELD_BACK = "not synced (policy: sub-agent, memory only)"
"""Why a linked sub-agent thread that was neither deleted nor archived is not
here: its persistence policy kept it in the memory of the machine it ran on."""

HELD_BACK_KEY = "held_back_subagents"
"""The parent's metadata key under which a tiered store notes, when a
memory-only sub-agent expires, what it last knew of it (:class:`LastKnown`)."""


class LastKnown(BaseModel):
    """A held-back sub-agent as the machine it ran on last saw it, when its
    memory-only copy expired: its title, messages and cost (the cost line
    :func:`threadline.costs.roll_up` made of it then)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    title: str | None = None
    messages: int = 0
    cost: CostLine | None = None

    @field_validator("cost", mode="before")
    @classmethod
    def _without_computed(cls, value: object) -> object:
        """A cost line as dumped (with its computed ``cost_usd``) reads back."""
        if isinstance(value, dict) and "cost_usd" in value:
            return {k: v for k, v in value.items() if k != "cost_usd"}
        return value


def last_known(parent: ThreadHead | None, thread_id: str) -> LastKnown | None:
    """What ``parent``'s metadata notes of its held-back sub-agent ``thread_id``."""
    if parent is None:
        return None
    noted = parent.metadata.get(HELD_BACK_KEY)
    entry = noted.get(thread_id) if isinstance(noted, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        return LastKnown.model_validate(entry)
    except ValueError:  # written by hand or by another version: not known
        return None


class MissingThread(_Frozen):
    """A thread that another one links to but that is not there: deleted,
    ``archived`` (then reading it restores it), or ``held_back`` (why: a
    sub-agent thread its policy never let leave the memory of its machine)."""

    id: str
    relation: Relation  # what it is to the thread that links to it
    archived: bool = False
    held_back: str | None = None
    last_known: LastKnown | None = None  # of a held-back one, if its machine noted it


class RelatedThreads(_Frozen):
    """A thread and the threads it is linked to, as heads (no messages).

    ``parent`` is the thread that spawned this one (a sub-agent's parent);
    ``origin`` the thread this one summarises. A linked thread that no longer
    exists is left out of these fields and listed in ``missing`` instead.
    """

    thread: ThreadHead
    parent: ThreadHead | None
    origin: ThreadHead | None
    summaries: tuple[ThreadHead, ...]
    children: tuple[ThreadHead, ...]
    missing: tuple[MissingThread, ...]


class TreeNode(_Frozen):
    """One thread of a :class:`ThreadTree`; ``head`` is ``None`` if it is missing
    (deleted, ``archived``, or ``held_back``: see :class:`MissingThread`)."""

    id: str
    parent_id: str | None
    kind: NodeKind  # how it hangs under its parent: a sub-agent or a summary
    depth: int
    head: ThreadHead | None
    children: tuple[str, ...]  # ids of the nodes under it, sub-agents first
    archived: bool = False
    held_back: str | None = None
    last_known: LastKnown | None = None  # of a held-back one, if its machine noted it

    @property
    def missing(self) -> bool:
        return self.head is None


class ThreadTree(_Frozen):
    """A thread and everything under it, at any depth: sub-agents and summaries.

    ``nodes`` is in depth-first order (a node, then its subtrees), the root
    first, each thread once. Read with one query on SQLite.
    """

    root_id: str
    nodes: tuple[TreeNode, ...]

    @property
    def root(self) -> TreeNode:
        return self.nodes[0]

    def node(self, thread_id: str) -> TreeNode:
        for node in self.nodes:
            if node.id == thread_id:
                return node
        raise KeyError(thread_id)

    @property
    def missing(self) -> tuple[str, ...]:
        """Ids linked in the tree whose threads no longer exist."""
        return tuple(node.id for node in self.nodes if node.head is None)


class RootThread(_Frozen):
    """The top of the tree a thread belongs to.

    ``path`` runs from the thread asked about up to the root (both included);
    ``head`` is ``None`` when the root itself no longer exists (the thread's
    ancestry ends in a deleted thread).
    """

    id: str
    head: ThreadHead | None
    path: tuple[str, ...]


# -- creating linked threads ---------------------------------------------------------


async def spawn_subagent_thread(
    store: ThreadStore, parent_id: str, task_description: str
) -> Thread:
    """A new sub-agent thread of ``parent_id``, linked on both ends atomically."""
    return await _create_linked(
        store,
        parent_id,
        lambda parent: (
            ThreadCreate(
                id=new_thread_id(),
                title=f"Task: {task_description}",
                parent_thread_id=parent.id,
                env=dict(parent.env),
            ),
            Message(role="user", content=task_description),
            ChildLinkDelta,
        ),
    )


async def create_summary_thread(store: ThreadStore, source_id: str, summary_content: str) -> Thread:
    """A new summary thread of ``source_id``, linked on both ends atomically."""
    return await _create_linked(
        store,
        source_id,
        lambda source: (
            ThreadCreate(
                id=new_thread_id(),
                title=f"Summary: {source.title or 'Conversation'}",
                origin_thread_id=source.id,
                env=dict(source.env),
            ),
            Message(role="assistant", content=summary_content),
            SummaryLinkDelta,
        ),
    )


async def _create_linked(store: ThreadStore, above_id: str, make: _Maker) -> Thread:
    recorder = store.recorder
    for attempt in range(_LINK_ATTEMPTS):
        above = await recorder.head(above_id)
        if above is None:
            raise ThreadNotFound(above_id)
        create, message, link = make(above)
        deltas: list[Delta] = [create, MessageDelta.of(message)]
        try:
            heads = await recorder.append_many(
                [(create.id, 0, deltas), (above_id, above.v, [link(thread_id=create.id)])]
            )
        except VersionConflict as exc:
            if exc.thread_id != above_id or attempt == _LINK_ATTEMPTS - 1:
                raise
            continue
        store.events.emit(ThreadEvent(THREAD_CREATED, create.id, heads[0].v))
        store.events.emit(ThreadEvent(THREAD_UPDATED, above_id, heads[1].v))
        return fold(deltas)
    raise AssertionError("unreachable")


# -- reading relationships -----------------------------------------------------------


async def get_related_threads(store: ThreadStore, thread_id: str) -> RelatedThreads:
    """The thread's head and the heads of its parent, origin, summaries and children."""
    recorder = store.recorder
    head = await recorder.head(thread_id)
    if head is None:
        raise ThreadNotFound(thread_id)
    wanted: list[tuple[Relation, str]] = []
    if head.parent_thread_id is not None:
        wanted.append(("parent", head.parent_thread_id))
    if head.origin_thread_id is not None:
        wanted.append(("origin", head.origin_thread_id))
    wanted += [("summary", i) for i in head.summary_thread_ids]
    wanted += [("child", i) for i in head.child_thread_ids]
    found = await recorder.heads_many([i for _, i in wanted]) if wanted else {}
    absent = [(r, i) for r, i in wanted if i not in found]
    graph = await _absent_graph(recorder, thread_id, absent)
    missing = []
    for r, i in absent:
        held_back = _held_back(i, r, graph)
        missing.append(
            MissingThread(
                id=i,
                relation=r,
                archived=i in graph.archived,
                held_back=held_back,
                last_known=last_known(head, i) if held_back else None,
            )
        )
    return RelatedThreads(
        thread=head,
        parent=found.get(head.parent_thread_id or ""),
        origin=found.get(head.origin_thread_id or ""),
        summaries=tuple(found[i] for i in head.summary_thread_ids if i in found),
        children=tuple(found[i] for i in head.child_thread_ids if i in found),
        missing=tuple(missing),
    )


async def _absent_graph(
    recorder: ThreadLog, thread_id: str, absent: list[tuple[Relation, str]]
) -> LinkGraph:
    """What is known of the ``absent`` relatives of ``thread_id``: which are
    archived (from the archive ledger, or the link graphs of a backend without
    one: the HTTP client reports the server's) and which were deleted (the link
    graphs'). Without a link index, every absent one counts as deleted."""
    ids = {i for _, i in absent}
    if not ids:
        return LinkGraph((), {})
    if not isinstance(recorder, LinkIndex):
        return LinkGraph((), {}, deleted=frozenset(ids))
    down = await recorder.subtree(thread_id)
    up = await recorder.ancestry(thread_id)
    archived = (down.archived | up.archived) & ids
    if isinstance(recorder, ArchiveLedger):
        archived = frozenset([i for i in ids if await recorder.archived(i) is not None])
    return LinkGraph((), {}, archived, (down.deleted | up.deleted) & ids)


def _ordered_links(graph: LinkGraph, parent_id: str, links: list[ThreadLink]) -> list[ThreadLink]:
    """Sub-agents before summaries, each in the order the parent recorded them;
    links only the child end records come after, by id."""
    head = graph.heads.get(parent_id)
    order: dict[tuple[str, str], int] = {}
    if head is not None:
        for index, child in enumerate(head.child_thread_ids):
            order[("child", child)] = index
        for index, summary in enumerate(head.summary_thread_ids):
            order[("summary", summary)] = index
    unknown = 1 << 62
    return sorted(
        links,
        key=lambda link: (
            link.kind != "child",
            order.get((link.kind, link.child_id), unknown),
            link.child_id,
        ),
    )


async def note_held_back(source: ThreadLog, home: ThreadLog, thread_id: str) -> None:
    """Before a memory-only sub-agent in ``source`` expires, note what is known
    of it — title, message count, cost — in its parent's metadata
    (:data:`HELD_BACK_KEY`), when the parent lives in ``home``: the note then
    travels with the parent, so every machine can show the held-back thread
    with its title and cost. A parent written meanwhile is tried again once;
    then the note is given up (the thread is still shown as held back)."""
    head = await source.head(thread_id)
    if head is None or head.parent_thread_id is None:
        return
    groups = await usage_index(source, "Held-back costs").usage_rollup([thread_id])
    cost = roll_up(groups, by="thread").groups
    known = LastKnown(title=head.title, messages=head.message_count, cost=cost[0] if cost else None)
    noted = known.model_dump(mode="json", exclude_computed_fields=True)
    patch: JsonObject = {HELD_BACK_KEY: {thread_id: noted}}
    for _ in range(2):
        parent = await home.head(head.parent_thread_id)
        if parent is None:
            return
        try:
            await home.append(parent.id, parent.v, [MetadataDelta(patch=patch)])
            return
        except VersionConflict:
            continue


def _held_back(thread_id: str, kind: str, graph: LinkGraph) -> str | None:
    """:data:`HELD_BACK` for a missing sub-agent that was neither deleted nor archived."""
    if kind != "child" or thread_id in graph.heads:
        return None
    if thread_id in graph.archived or thread_id in graph.deleted:
        return None
    return HELD_BACK


def build_tree(root_id: str, graph: LinkGraph) -> ThreadTree:
    """Arrange a :meth:`LinkIndex.subtree` result as a tree: breadth-first,
    so a thread linked from two places sits at the shallower one, and a
    thread already placed is not placed again (which also ends any cycle)."""
    below: dict[str, list[ThreadLink]] = {}
    for link in graph.links:
        below.setdefault(link.parent_id, []).append(link)
    placed: dict[str, tuple[str | None, NodeKind, int]] = {root_id: (None, "root", 0)}
    children: dict[str, list[str]] = {root_id: []}
    queue = deque([root_id])
    while queue:
        current = queue.popleft()
        depth = placed[current][2]
        for link in _ordered_links(graph, current, below.get(current, [])):
            if link.child_id in placed:
                continue
            placed[link.child_id] = (current, link.kind, depth + 1)
            children[current].append(link.child_id)
            children[link.child_id] = []
            queue.append(link.child_id)
    nodes: list[TreeNode] = []
    stack = [root_id]
    while stack:  # depth-first, without recursion (trees can be deep)
        current = stack.pop()
        parent_id, kind, depth = placed[current]
        held_back = _held_back(current, kind, graph)
        parent = graph.heads.get(parent_id) if parent_id is not None else None
        nodes.append(
            TreeNode(
                id=current,
                parent_id=parent_id,
                kind=kind,
                depth=depth,
                head=graph.heads.get(current),
                children=tuple(children[current]),
                archived=current in graph.archived,
                held_back=held_back,
                last_known=last_known(parent, current) if held_back else None,
            )
        )
        stack.extend(reversed(children[current]))
    return ThreadTree(root_id=root_id, nodes=tuple(nodes))


async def get_thread_tree(store: ThreadStore, thread_id: str) -> ThreadTree:
    """The thread and every thread under it, at any depth."""
    graph = await link_index(store.recorder, "A thread tree").subtree(thread_id)
    if thread_id not in graph.heads:
        raise ThreadNotFound(thread_id)
    return build_tree(thread_id, graph)


def find_root(thread_id: str, graph: LinkGraph) -> RootThread:
    """Walk up an :meth:`LinkIndex.ancestry` result: through a sub-agent's
    parent before a summary's source, until no link goes higher or the walk
    comes back to a thread it passed (a cycle)."""
    above: dict[str, list[ThreadLink]] = {}
    for link in graph.links:
        above.setdefault(link.child_id, []).append(link)
    path = [thread_id]
    seen = {thread_id}
    while True:
        links = sorted(
            above.get(path[-1], []), key=lambda link: (link.kind != "child", link.parent_id)
        )
        if not links or links[0].parent_id in seen:
            break
        path.append(links[0].parent_id)
        seen.add(links[0].parent_id)
    return RootThread(id=path[-1], head=graph.heads.get(path[-1]), path=tuple(path))


async def get_root_thread(store: ThreadStore, thread_id: str) -> RootThread:
    """The top of the tree ``thread_id`` belongs to (itself, if nothing is above it)."""
    graph = await link_index(store.recorder, "Finding a root thread").ancestry(thread_id)
    if thread_id not in graph.heads:
        raise ThreadNotFound(thread_id)
    return find_root(thread_id, graph)
