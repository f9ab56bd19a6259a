"""Cost roll-ups: what a thread, a sub-agent tree or every thread has cost.

Every message with usage is priced once, when it is written (see
:mod:`threadline.pricing`): the recorder keeps its usage row with the stored
cost, its source (reported by the agent, or computed from tokens with the
genai-prices list) and the price list's version, in the same transaction as
the append, and sums the rows by thread, model and UTC day in one query
(:meth:`UsageIndex.usage_rollup`). This module turns those sums into a
:class:`CostReport`, grouped by model, by day or by thread, and
:func:`thread_costs` gives the one figure per thread that ``list``, ``show``,
``export``, ``tree`` and the viewer print. Nothing here prices again, except
:func:`reprice` (``threadline cost --reprice``) and the rows of a store from
before costs were stored, which are priced on the first read and stored.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from threadline.errors import ThreadNotFound
from threadline.planner import reprice_row
from threadline.pricing import DAY_MS, compute_cost, price_version
from threadline.recorders.roles import (
    ThreadLog,
    UsageGroup,
    UsagePricing,
    usage_index,
    usage_pricing,
)

if TYPE_CHECKING:
    from threadline.store import ThreadStore

__all__ = [
    "DAY_MS",
    "CostLine",
    "CostReport",
    "GroupBy",
    "compute_cost",
    "cost_report",
    "price_source",
    "reprice",
    "roll_up",
    "thread_costs",
]

GroupBy = Literal["model", "day", "thread"]
NO_MODEL = "(no model)"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CostLine(_Frozen):
    """Tokens and cost of a set of messages (a group of a report, or its total).

    ``cost_usd`` is ``reported_cost_usd`` (what the agents recorded) plus
    ``computed_cost_usd`` (priced from tokens when written, for
    ``computed_messages`` messages that recorded none). ``unpriced_messages``
    had no cost and could not be priced (no model, or a model the price list
    does not know). ``cache_write_1h_tokens`` is the part of
    ``cache_write_tokens`` written to the 1-hour cache.
    """

    key: str  # the model, the day (YYYY-MM-DD, UTC), the thread id, or "total"
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reported_cost_usd: float = 0.0
    computed_cost_usd: float = 0.0
    computed_messages: int = 0
    unpriced_messages: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return self.reported_cost_usd + self.computed_cost_usd

    def cost_text(self) -> str:
        """``$1.2345``, with ``(+N unpriced)`` when some messages have no cost."""
        text = f"${self.cost_usd:,.4f}"
        if self.unpriced_messages:
            text += f" (+{self.unpriced_messages} unpriced)"
        return text


class CostReport(_Frozen):
    """A cost roll-up over ``thread_id`` (or every thread when ``None``), with
    its whole sub-agent and summary tree when ``tree``, grouped ``by``."""

    thread_id: str | None
    tree: bool
    by: GroupBy | None
    threads: int  # threads that spent anything
    total: CostLine
    groups: tuple[CostLine, ...]  # by key; empty when not grouped
    unknown_models: tuple[str, ...]  # models of unpriced messages the price list lacks
    price_source: str  # the package and version that computed costs


def price_source() -> str:
    """The installed price list (``genai-prices <version>``)."""
    return price_version()


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a UTC day number."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


class _Sums:
    __slots__ = (
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "computed",
        "computed_messages",
        "input",
        "messages",
        "output",
        "reported",
        "unpriced",
    )

    def __init__(self) -> None:
        self.messages = self.input = self.output = self.cache_read = self.cache_write = 0
        self.cache_write_1h = 0
        self.computed_messages = self.unpriced = 0
        self.reported = self.computed = 0.0

    def line(self, key: str) -> CostLine:
        return CostLine(
            key=key,
            messages=self.messages,
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            cache_write_1h_tokens=self.cache_write_1h,
            reported_cost_usd=self.reported,
            computed_cost_usd=self.computed,
            computed_messages=self.computed_messages,
            unpriced_messages=self.unpriced,
        )


def _key(group: UsageGroup, by: GroupBy) -> str:
    if by == "model":
        return group.model or NO_MODEL
    if by == "day":
        return day_text(group.day)
    return group.thread_id


def roll_up(
    groups: Iterable[UsageGroup],
    *,
    thread_id: str | None = None,
    tree: bool = False,
    by: GroupBy | None = None,
) -> CostReport:
    """Sum recorder usage groups (their stored costs) into a report."""
    total = _Sums()
    keyed: dict[str, _Sums] = {}
    threads: set[str] = set()
    unknown: set[str] = set()
    for group in groups:
        threads.add(group.thread_id)
        targets = [total] if by is None else [total, keyed.setdefault(_key(group, by), _Sums())]
        unpriced = group.unpriced_messages
        if unpriced and group.model is not None:
            unknown.add(group.model)
        reported = (group.cost_usd or 0.0) - group.computed_cost_usd
        for sums in targets:
            sums.messages += group.messages
            sums.input += group.input_tokens
            sums.output += group.output_tokens
            sums.cache_read += group.cache_read_tokens
            sums.cache_write += group.cache_write_tokens
            sums.cache_write_1h += group.cache_write_1h_tokens
            sums.reported += reported
            sums.computed += group.computed_cost_usd
            sums.computed_messages += group.computed_messages
            sums.unpriced += unpriced
    return CostReport(
        thread_id=thread_id,
        tree=tree,
        by=by,
        threads=len(threads),
        total=total.line("total"),
        groups=tuple(keyed[key].line(key) for key in sorted(keyed)),
        unknown_models=tuple(sorted(unknown)),
        price_source=price_source(),
    )


# Recorders whose rows from before stored costs were priced (once per process).
_priced_before: weakref.WeakSet[ThreadLog] = weakref.WeakSet()


async def _price_old_rows(recorder: ThreadLog) -> None:
    """Price, once, the usage rows a store kept from before costs were stored."""
    if recorder in _priced_before or not isinstance(recorder, UsagePricing):
        return
    await recorder.reprice_usage(reprice_row, never_priced=True)
    _priced_before.add(recorder)


async def reprice(store: ThreadStore) -> int:
    """Price every stored usage row again with the installed price list
    (reported costs stay); returns how many rows' figures changed."""
    recorder = usage_pricing(store.recorder, "Repricing usage")
    return await recorder.reprice_usage(reprice_row)


async def cost_report(
    store: ThreadStore,
    thread_id: str | None = None,
    *,
    tree: bool = False,
    by: GroupBy | None = None,
) -> CostReport:
    """What ``thread_id`` cost (with its whole tree when ``tree``), or every
    thread when ``thread_id`` is ``None``; grouped ``by`` model, day or thread."""
    recorder = usage_index(store.recorder, "A cost report")
    if thread_id is not None and await recorder.head(thread_id) is None:
        raise ThreadNotFound(thread_id)
    await _price_old_rows(recorder)
    groups = await recorder.usage_rollup(
        None if thread_id is None else [thread_id], subtrees=tree and thread_id is not None
    )
    return roll_up(groups, thread_id=thread_id, tree=tree, by=by)


async def thread_costs(store: ThreadStore, thread_ids: Sequence[str]) -> dict[str, CostLine]:
    """Each thread's own cost (its stored figures, one query for all): the
    figure every surface prints for a thread. A thread without usage, or
    unknown, gets an empty line."""
    recorder = usage_index(store.recorder, "Thread costs")
    if not thread_ids:
        return {}
    await _price_old_rows(recorder)
    report = roll_up(await recorder.usage_rollup(list(thread_ids)), by="thread")
    found = {line.key: line for line in report.groups}
    return {tid: found.get(tid, CostLine(key=tid)) for tid in thread_ids}
