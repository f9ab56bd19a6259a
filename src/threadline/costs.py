"""Cost roll-ups: what a thread, a sub-agent tree or every thread has cost.

The recorder keeps the usage of every message ever appended (truncated ones
too: spent is spent) in the same transaction as the append, and sums it by
thread, model and UTC day in one query (:meth:`UsageIndex.usage_rollup`).
This module turns those sums into a :class:`CostReport`, grouped by model,
by day or by thread.

Where a message reported no ``cost_usd`` but its model and token counts are
known, its cost is computed from the `genai-prices
<https://github.com/pydantic/genai-prices>`_ price list (prices as they were
on the message's UTC day), and reported apart: ``computed_cost_usd`` and
``computed_messages``. A message whose model is unknown to that list, or
unnamed, stays ``unpriced``. threadline's ``input_tokens`` are the uncached
input tokens; genai-prices counts cache reads and writes as part of the input,
so they are added to it when pricing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from threadline.errors import ThreadNotFound
from threadline.recorders.roles import UsageGroup, usage_index

if TYPE_CHECKING:
    from threadline.store import ThreadStore

GroupBy = Literal["model", "day", "thread"]
DAY_MS = 86_400_000
NO_MODEL = "(no model)"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CostLine(_Frozen):
    """Tokens and cost of a set of messages (a group of a report, or its total).

    ``cost_usd`` is ``reported_cost_usd`` (what the agents recorded) plus
    ``computed_cost_usd`` (priced here from tokens, for ``computed_messages``
    messages that recorded none). ``unpriced_messages`` had no cost and could
    not be priced (no model, or a model the price list does not know).
    """

    key: str  # the model, the day (YYYY-MM-DD, UTC), the thread id, or "total"
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reported_cost_usd: float = 0.0
    computed_cost_usd: float = 0.0
    computed_messages: int = 0
    unpriced_messages: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return self.reported_cost_usd + self.computed_cost_usd


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
    return f"genai-prices {metadata.version('genai-prices')}"


@functools.lru_cache(maxsize=65_536)
def compute_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    day: int,
) -> float | None:
    """The price of one response from genai-prices, or ``None`` if it has no
    price for ``model``. ``input_tokens`` are uncached (see the module doc);
    ``day`` is the UTC day (days since 1970) whose prices apply."""
    import genai_prices  # imported on first use: loading its price list takes a while

    usage = genai_prices.Usage(
        input_tokens=input_tokens + cache_read_tokens + cache_write_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    when = dt.datetime.fromtimestamp(day * DAY_MS / 1000, tz=dt.UTC)
    try:
        price = genai_prices.calc_price(usage, model, genai_request_timestamp=when)
    except (LookupError, ValueError):  # an unknown model, or usage it cannot price
        return None
    return float(price.total_price)


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a UTC day number."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


class _Sums:
    __slots__ = (
        "cache_read",
        "cache_write",
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
    """Sum recorder usage groups into a report, pricing what reported no cost."""
    total = _Sums()
    keyed: dict[str, _Sums] = {}
    threads: set[str] = set()
    unknown: set[str] = set()
    for group in groups:
        threads.add(group.thread_id)
        targets = [total] if by is None else [total, keyed.setdefault(_key(group, by), _Sums())]
        computed: float | None = None
        if group.cost_usd is None and group.model is not None:
            # An unpriced group holds messages of the same size: price one, times count.
            each = compute_cost(
                group.model,
                group.input_tokens // group.messages,
                group.output_tokens // group.messages,
                group.cache_read_tokens // group.messages,
                group.cache_write_tokens // group.messages,
                group.day,
            )
            computed = None if each is None else each * group.messages
        if group.cost_usd is None and computed is None and group.model is not None:
            unknown.add(group.model)
        for sums in targets:
            sums.messages += group.messages
            sums.input += group.input_tokens
            sums.output += group.output_tokens
            sums.cache_read += group.cache_read_tokens
            sums.cache_write += group.cache_write_tokens
            if group.cost_usd is not None:
                sums.reported += group.cost_usd
            elif computed is not None:
                sums.computed += computed
                sums.computed_messages += group.messages
            else:
                sums.unpriced += group.messages
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
    groups = await recorder.usage_rollup(
        None if thread_id is None else [thread_id], subtrees=tree and thread_id is not None
    )
    # Pricing takes about a millisecond a response: off the event loop.
    return await asyncio.to_thread(roll_up, groups, thread_id=thread_id, tree=tree, by=by)
