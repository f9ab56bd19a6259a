"""The append planner: what one append changes, computed once for every backend.

Pure and synchronous, no I/O. :func:`plan` takes the head an append builds on
(``None`` for a new thread), the version the caller expects and the deltas;
it checks the preconditions, raising the errors every backend raises
(:class:`~threadline.errors.VersionConflict`,
:class:`~threadline.errors.ThreadExists`,
:class:`~threadline.errors.ThreadNotFound`,
:class:`~threadline.errors.InvalidDelta`), and returns an :class:`AppendPlan`:
the new head, the JSON body of each delta to log, and every row each derived
table gains or loses. A backend executes a plan inside one transaction and
never works any of it out again. :func:`replay` is the plan of a whole log,
which rebuilds a thread's derived rows (``rebuild_snapshot``, restore,
``doctor --repair``).

The derived tables, and the plan's part for each:

- **message positions**: ``cut`` (the rows at positions ``>= cut`` that the
  thread had before the append go; ``None`` if none go), then ``messages``
  (``(pos, v)``: the message at position ``pos`` is carried by delta ``v``).
  A message appended and truncated again within one append gets no row.
- **search documents**: one per row of ``messages`` (its content and its tool
  text, see :func:`threadline.search.message_search_text`; a message's row
  going with the cut takes its document with it), and the thread's title
  document, replaced by ``head.title`` when ``retitled``.
- **usage**: one row per message id with usage that the append logs,
  truncated or not (a truncate does not refund), priced here
  (:func:`threadline.pricing.price_usage`: the figure, its source and the
  price list's version are stored with the row). A row is keyed by its
  message's id: a message logged again with the same id (a merge that
  re-appends it, an amendment) replaces its row instead of adding one, so
  its usage is never counted twice; backends upsert by ``(thread, message_id)``.
- **amendments** (``message:amend``): ``amended`` rows replace the row at an
  existing position (with its search document). An amendment of a message
  appended by the same plan changes that plan's row instead. The amendment's
  usage row (the message's new usage) is in ``usage``, keyed by the message's
  id like any other, so it replaces the message's earlier row and each
  message keeps one usage row (an amendment never takes usage away; see
  :func:`threadline.deltas.apply`).
- **links**: what the thread records (a ``thread:create``'s parent or origin,
  ``child:link`` and ``summary:link``), each once.
- **change feed**: the thread's entry moves to ``head.v``.

The sync ledger gains no row per append: a thread is pending while its
version (``head.v``, written with the head) exceeds the version the ledger
says was synced, and the ledger's rows change only when a push or pull
settles (see :mod:`threadline.recorders.sync_state`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from threadline.deltas import (
    ChildLinkDelta,
    Delta,
    MessageAmendDelta,
    MessageDelta,
    SummaryLinkDelta,
    ThreadCreate,
    TitleDelta,
    TruncateDelta,
    apply_head,
    delta_to_json,
)
from threadline.errors import InvalidDelta, ThreadExists, ThreadNotFound, VersionConflict
from threadline.model import Message, ThreadHead, Usage, UsageTotals
from threadline.pricing import DAY_MS, price_usage
from threadline.search import index_token, message_search_text
from threadline.search import tokens as search_tokens

LinkKind = Literal["child", "summary"]  # as recorders.base.LinkKind


class MessageRow(NamedTuple):
    """The message at position ``pos`` is carried by delta ``v``; its search
    document is ``content`` and ``tools`` (the text of its tool calls and results)."""

    pos: int
    v: int
    message: Message
    content: str
    tools: str

    def tokens(self) -> str:
        """The document's tokens, space-separated (PostgreSQL's token index)."""
        return document_tokens(self.content, self.tools)


class UsageRow(NamedTuple):
    """The usage of message ``message_id``, last logged by delta ``v``, on UTC
    day ``day``; ``cost_usd`` is its stored cost (``None``: unpriced), from
    ``cost_source`` (``reported`` or ``computed`` with ``price_version``)."""

    v: int
    day: int
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None
    message_id: str = ""
    cache_write_1h_tokens: int = 0
    cost_source: str | None = None
    price_version: str | None = None


class LinkRow(NamedTuple):
    """``child_id`` hangs under ``parent_id`` (``kind`` ``child`` or ``summary``),
    as recorded by the planned thread."""

    parent_id: str
    child_id: str
    kind: LinkKind


class FeedEntry(NamedTuple):
    """The change feed's entry for a thread: at version ``v`` (or deleted) at ``at``."""

    thread_id: str
    v: int
    deleted: bool
    at: int


class AppendPlan(NamedTuple):
    """Everything one append writes (see the module's docstring).

    ``bodies[i]`` is the JSON of ``deltas[i]``, logged as version
    ``expected_version + 1 + i``; ``created`` says the append makes the thread.
    """

    thread_id: str
    expected_version: int
    head: ThreadHead
    deltas: tuple[Delta, ...]
    bodies: tuple[bytes, ...]
    at: int
    cut: int | None
    messages: tuple[MessageRow, ...]
    usage: tuple[UsageRow, ...]
    links: tuple[LinkRow, ...]
    retitled: bool
    feed: FeedEntry
    amended: tuple[MessageRow, ...] = ()

    @property
    def created(self) -> bool:
        return self.expected_version == 0

    @property
    def versions(self) -> range:
        """The versions the deltas are logged as."""
        return range(self.expected_version + 1, self.head.v + 1)

    def title_tokens(self) -> str:
        """The title document's tokens, space-separated ("" for no title)."""
        return title_tokens(self.head.title)


def plan(
    thread_id: str,
    head: ThreadHead | None,
    expected_version: int,
    deltas: Sequence[Delta],
    *,
    at: int,
    bodies: Sequence[bytes] | None = None,
    archived: bool = False,
    serialize: bool = True,
) -> AppendPlan:
    """The plan of appending ``deltas`` to thread ``thread_id``, whose current
    head is ``head`` (``None`` if the caller knows of no such thread).

    ``at`` is the commit time (ms) to log; ``bodies`` the deltas' JSON if the
    caller has it already (else each delta is serialized here, once, unless
    ``serialize`` is false: then ``bodies`` is empty, for a backend that keeps
    the delta objects);
    ``archived`` says the thread is in cold storage (so it cannot be created).
    Raises before anything is planned: :class:`InvalidDelta` for no deltas, a
    first delta that is not the thread's own ``thread:create``, a truncate out
    of bounds, a link recorded twice or any delta that does not apply;
    :class:`ThreadExists` for a create of a thread that exists (or is
    archived); :class:`ThreadNotFound` and :class:`VersionConflict` for an
    append to a thread that is missing or at another version.
    """
    if not deltas:
        raise InvalidDelta(f"Nothing to append to thread {thread_id}")
    if expected_version == 0:
        # The shape first: a backend that cannot see the head (PostgreSQL leaves
        # a taken id to the database) refuses a malformed create the same way.
        first = deltas[0]
        if not isinstance(first, ThreadCreate) or first.id != thread_id:
            raise InvalidDelta(f"Thread {thread_id} must start with its thread:create delta")
        if head is not None or archived:
            raise ThreadExists(thread_id)
    elif head is None:
        raise ThreadNotFound(thread_id)
    elif head.v != expected_version:
        raise VersionConflict(thread_id, expected_version, head.v)
    if bodies is None:
        bodies = [delta_to_json(d) for d in deltas] if serialize else ()
    elif len(bodies) != len(deltas):  # given ones must match
        raise ValueError("one body per delta")
    return _fold(thread_id, head, expected_version, tuple(deltas), tuple(bodies), at)


def replay(thread_id: str, log: Sequence[Delta], *, at: int = 0) -> AppendPlan:
    """The plan of a thread's whole log, appended to nothing: every derived row
    the thread has (rebuilds drop the thread's rows and write these)."""
    return plan(thread_id, None, 0, log, at=at)


def _fold(
    thread_id: str,
    head: ThreadHead | None,
    expected: int,
    deltas: tuple[Delta, ...],
    bodies: tuple[bytes, ...],
    at: int,
) -> AppendPlan:
    state = head
    cut: int | None = None
    run: list[Message] = []  # message deltas not yet folded into state
    rows: list[tuple[int, int, Message]] = []
    usage: list[UsageRow] = []
    links: list[LinkRow] = []
    retitled = False
    amends = _Amendments(rows, usage)
    for delta in deltas:
        if state is not None and type(delta) is MessageDelta:
            message = delta.message
            v = state.v + len(run) + 1
            rows.append((state.message_count + len(run), v, message))
            run.append(message)
            if message.usage is not None:
                usage.append(_usage_row(v, message))
            continue
        if run:
            state = _with_messages(state, run)
            run = []
        state = apply_head(state, delta)  # raises InvalidDelta where it does not apply
        if isinstance(delta, MessageAmendDelta):
            amends.amend(state.v, delta.index, delta.message)
        elif isinstance(delta, TruncateDelta):
            cut = delta.from_index if cut is None else min(cut, delta.from_index)
            rows[:] = [row for row in rows if row[0] < delta.from_index]
            amends.cut(delta.from_index)
        elif isinstance(delta, ThreadCreate | TitleDelta):
            retitled = True
        elif isinstance(delta, ChildLinkDelta | SummaryLinkDelta):
            links.append(
                LinkRow(thread_id, delta.thread_id, "child")
                if isinstance(delta, ChildLinkDelta)
                else LinkRow(thread_id, delta.thread_id, "summary")
            )
        if isinstance(delta, ThreadCreate):
            if delta.parent_thread_id is not None:
                links.append(LinkRow(delta.parent_thread_id, thread_id, "child"))
            if delta.origin_thread_id is not None:
                links.append(LinkRow(delta.origin_thread_id, thread_id, "summary"))
    if run:
        state = _with_messages(state, run)
    assert state is not None  # deltas is not empty
    messages = tuple(MessageRow(pos, v, m, *message_search_text(m)) for pos, v, m in rows)
    amended = tuple(
        MessageRow(pos, v, m, *message_search_text(m)) for pos, (v, m) in amends.rows.items()
    )
    return AppendPlan(
        thread_id=thread_id,
        expected_version=expected,
        head=state,
        deltas=deltas,
        bodies=bodies,
        at=at,
        cut=cut,
        messages=messages,
        usage=_by_message_id(usage),
        links=tuple(dict.fromkeys(links)),
        retitled=retitled,
        feed=FeedEntry(thread_id, state.v, False, at),
        amended=amended,
    )


class _Amendments:
    """The rows ``message:amend`` deltas change within one plan. ``rows`` and
    ``usage`` are the plan's own lists (of messages it appends, and usage
    rows), changed in place; a usage row replaces the message's earlier one
    by id (:func:`_by_message_id`, and the backends' upsert)."""

    def __init__(self, rows: list[tuple[int, int, Message]], usage: list[UsageRow]) -> None:
        self.appended = rows
        self.usage = usage
        self.rows: dict[int, tuple[int, Message]] = {}  # earlier position → (v, message)

    def amend(self, v: int, pos: int, message: Message) -> None:
        index = next((i for i, row in enumerate(self.appended) if row[0] == pos), None)
        if index is not None:  # a message of this plan: its row changes
            self.appended[index] = (pos, v, message)
        else:
            self.rows[pos] = (v, message)
        if message.usage is not None:
            self.usage.append(_usage_row(v, message))

    def cut(self, from_index: int) -> None:
        self.rows = {pos: row for pos, row in self.rows.items() if pos < from_index}


def _with_messages(head: ThreadHead | None, messages: list[Message]) -> ThreadHead:
    """``apply_head`` of one message delta per message, as one copy of the head."""
    assert head is not None
    last_activity = head.last_activity
    totals = head.totals
    sums: list[float] | None = None
    for message in messages:
        if message.timestamp > last_activity:
            last_activity = message.timestamp
        used = message.usage
        if used is None:
            continue
        if sums is None:
            sums = [
                totals.input_tokens,
                totals.output_tokens,
                totals.cache_read_tokens,
                totals.cache_write_tokens,
                totals.cost_usd,
                totals.priced_messages,
                totals.unpriced_messages,
            ]
        sums[0] += used.input_tokens
        sums[1] += used.output_tokens
        sums[2] += used.cache_read_tokens
        sums[3] += used.cache_write_tokens
        sums[4] += used.cost_usd or 0.0
        priced = used.cost_usd is not None
        sums[5] += priced
        sums[6] += not priced
    update: dict[str, object] = {
        "v": head.v + len(messages),
        "message_count": head.message_count + len(messages),
        "last_activity": last_activity,
    }
    if sums is not None:
        update["totals"] = UsageTotals(
            input_tokens=int(sums[0]),
            output_tokens=int(sums[1]),
            cache_read_tokens=int(sums[2]),
            cache_write_tokens=int(sums[3]),
            cost_usd=min(sums[4], sys.float_info.max),  # finite even for logs from before bounds
            priced_messages=int(sums[5]),
            unpriced_messages=int(sums[6]),
        )
    return head.model_copy(update=update)


def _usage_row(v: int, message: Message) -> UsageRow:
    usage = message.usage
    assert usage is not None
    priced = price_usage(usage, message.timestamp)
    return UsageRow(
        v,
        message.timestamp // DAY_MS,
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        priced.cost_usd,
        message.id,
        usage.cache_write_1h_tokens,
        priced.source,
        priced.price_version,
    )


def _by_message_id(rows: list[UsageRow]) -> tuple[UsageRow, ...]:
    """One row per message id, the last logged (rows stay in version order)."""
    if len(rows) < 2:
        return tuple(rows)
    last = {row.message_id: row for row in rows}
    if len(last) == len(rows):
        return tuple(rows)
    return tuple(sorted(last.values(), key=lambda row: row.v))


def reprice_row(row: UsageRow) -> UsageRow:
    """``row`` priced again with the installed price list (a reported cost stays)."""
    if row.cost_source == "reported":
        return row
    usage = Usage(
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens,
        cache_write_tokens=row.cache_write_tokens,
        cache_write_1h_tokens=row.cache_write_1h_tokens,
    )
    priced = price_usage(usage, row.day * DAY_MS)
    return row._replace(
        cost_usd=priced.cost_usd, cost_source=priced.source, price_version=priced.price_version
    )


# -- the derived rows of a store, in one form for every backend ----------------------


@dataclass(frozen=True, slots=True)
class ThreadRows:
    """One thread's derived rows as every backend can report them: its head,
    message positions ``(pos, v)`` by position, usage rows by version, links,
    the tokens of each message's search document ``(v, tokens)`` by version,
    and the tokens of its title document."""

    head: ThreadHead
    positions: tuple[tuple[int, int], ...]
    usage: tuple[UsageRow, ...]
    links: frozenset[LinkRow]
    documents: tuple[tuple[int, str], ...]
    title_tokens: str


@dataclass(frozen=True, slots=True)
class DerivedRows:
    """A store's derived rows (see ``derived_rows()`` of the recorders): each
    active thread's, and the change feed as ``(thread_id, v, deleted)`` in
    cursor order. Two stores given the same appends report equal ones."""

    threads: dict[str, ThreadRows]
    feed: tuple[tuple[str, int, bool], ...]


def document_tokens(content: str, tools: str) -> str:
    """The tokens of a message's search document, space-separated."""
    return " ".join(map(index_token, search_tokens(content) + search_tokens(tools)))


def title_tokens(title: str | None) -> str:
    """The tokens of a title document, space-separated ("" for no title)."""
    return " ".join(map(index_token, search_tokens(title))) if title else ""
