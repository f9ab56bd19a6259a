"""What one model response cost: the one place a cost is worked out.

Every message with usage is priced once, when it is written: the append
planner (:mod:`threadline.planner`) calls :func:`price_usage` for each usage
row and the backends store the figure, its :data:`Priced.source` and the
price list's version with the row. Every surface (import summary, ``list``,
``show``, ``export``, ``tree``, ``cost``, the viewer, the server's usage
routes) reads that stored figure; ``threadline cost --reprice`` prices the
stored rows again with the installed list.

The rules:

- a ``cost_usd`` the agent reported wins (``source="reported"``);
- else the `genai-prices <https://github.com/pydantic/genai-prices>`_ price
  list prices the response at its own size (a long-context tier applies per
  request) and at the prices in force on the message's UTC day
  (``source="computed"``);
- a response without a model, or with one the list does not know, stays
  unpriced (``source=None``, ``cost_usd=None``; ``price_version`` says which
  list did not know the model).

threadline's ``input_tokens`` are the uncached input tokens; genai-prices
counts cache reads and writes as part of the input, so they are added to it.
Cache writes to the 1-hour cache (``cache_write_1h_tokens``, a part of
``cache_write_tokens``) are priced at the list's 1-hour write rate, the rest at
its 5-minute rate.
"""

from __future__ import annotations

import datetime as dt
import functools
from importlib import metadata
from typing import Literal, NamedTuple

from threadline.model import Usage

DAY_MS = 86_400_000

CostSource = Literal["reported", "computed"]


class Priced(NamedTuple):
    """The cost of one response: ``cost_usd`` (``None`` when unpriced), where it
    came from, and the price list that computed it (``None`` unless computed)."""

    cost_usd: float | None
    source: CostSource | None
    price_version: str | None


@functools.cache
def price_version() -> str:
    """The installed price list: ``genai-prices <version>``."""
    return f"genai-prices {metadata.version('genai-prices')}"


def price_usage(usage: Usage, timestamp: int) -> Priced:
    """The cost of the response whose usage is ``usage``, sent at ``timestamp``
    (ms since 1970, UTC): as reported, else computed (see the module doc)."""
    if usage.cost_usd is not None:
        return Priced(usage.cost_usd, "reported", None)
    if not usage.model:
        return Priced(None, None, None)
    cost = compute_cost(
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        timestamp // DAY_MS,
        usage.cache_write_1h_tokens,
    )
    if cost is None:  # tried with this list: ``--reprice`` tries a newer one
        return Priced(None, None, price_version())
    return Priced(cost, "computed", price_version())


@functools.lru_cache(maxsize=65_536)
def compute_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    day: int,
    cache_write_1h_tokens: int = 0,
) -> float | None:
    """The price of one response from genai-prices, or ``None`` if it has no
    price for ``model``. ``input_tokens`` are uncached (see the module doc);
    ``day`` is the UTC day (days since 1970) whose prices apply;
    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written to
    the 1-hour cache."""
    import genai_prices  # imported on first use: loading its price list takes a while

    one_hour = min(cache_write_1h_tokens, cache_write_tokens)
    counts = {
        "input_tokens": input_tokens + cache_read_tokens + cache_write_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
    }
    if one_hour:
        counts["cache_write_1h_tokens"] = one_hour
    when = dt.datetime.fromtimestamp(day * DAY_MS / 1000, tz=dt.UTC)
    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(**counts), model, genai_request_timestamp=when
        )
    except (LookupError, ValueError):  # an unknown model, or usage it cannot price
        return None
    return float(price.total_price)
