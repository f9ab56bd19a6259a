"""The PostgreSQL recorder's reads of its derived tables: search and inspection.

Part of the PostgreSQL backend (:mod:`threadline.recorders.postgres`), split
by concern; the recorder owns the pool and transactions and calls these inside
them. The SQL is in :mod:`threadline.recorders.postgres_schema`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg

from threadline import planner
from threadline import search as fts
from threadline.deltas import MessageAmendDelta, MessageDelta, delta_from_json
from threadline.errors import InvalidDelta
from threadline.model import Message, ThreadHead
from threadline.recorders import postgres_schema as sql
from threadline.search import SearchDocument, SearchHit

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

_T = TypeVar("_T")


def message_of(body: bytes) -> Message:
    """The message of a stored message delta."""
    delta = delta_from_json(body, stored=True)
    if not isinstance(delta, MessageDelta | MessageAmendDelta):
        raise InvalidDelta(f"message projection points at a {delta.type} delta")
    return delta.message


async def search(
    conn: Connection, workspace: str, terms: Sequence[fts.QueryTerm], limit: int
) -> list[SearchHit]:
    """The best ``limit`` hits for ``terms`` in ``workspace`` (read in one snapshot)."""
    # The index keeps the first INDEX_TOKEN_CHARS of a token: look those up.
    whole = sorted(
        {fts.index_token(t) for term in terms for t in term.tokens[: -1 if term.prefix else None]}
    )
    prefixes = [fts.index_token(term.tokens[-1]) + "%" for term in terms if term.prefix]
    messages = await conn.fetch(sql.SEARCH_MESSAGES, workspace, whole, prefixes)
    titles = await conn.fetch(sql.SEARCH_TITLES, workspace, whole, prefixes)
    total, length = await conn.fetchrow(sql.SEARCH_CORPUS, workspace) or (0, 0)
    frequency = []
    for term in terms:
        exact = [fts.index_token(t) for t in (term.tokens[:-1] if term.prefix else term.tokens)]
        pattern = fts.index_token(term.tokens[-1]) + "%" if term.prefix else None
        frequency.append(await conn.fetchval(sql.SEARCH_FREQUENCY, workspace, exact, pattern))
    documents: list[tuple[tuple[str, str | None, str | None], SearchDocument]] = []
    for thread_id, head_json in titles:
        head = ThreadHead.model_validate_json(head_json)
        if head.title:
            documents.append(((thread_id, None, head.title), SearchDocument.of_title(head.title)))
    for thread_id, head_json, body in messages:
        message = message_of(body)
        title = ThreadHead.model_validate_json(head_json).title
        documents.append(((thread_id, message.id, title), SearchDocument.of_message(message)))
    ranked = _bm25(
        documents,
        terms,
        total=total,
        average=(length / total) if total else 1.0,
        frequency=frequency,
    )
    return [
        document.hit(
            terms, thread_id=thread_id, message_id=message_id, score=score, thread_title=title
        )
        for score, (thread_id, message_id, title), document in ranked[:limit]
    ]


async def derived_rows(conn: Connection, workspace: str) -> planner.DerivedRows:
    """Every derived row of ``workspace``, in the form all backends report (for tests)."""
    heads = await conn.fetch(sql.INSPECT_THREADS, workspace)
    messages = await conn.fetch(sql.INSPECT_MESSAGES, workspace)
    usage = await conn.fetch(sql.INSPECT_USAGE, workspace)
    links = await conn.fetch(sql.INSPECT_LINKS, workspace)
    feed = await conn.fetch(sql.INSPECT_FEED, workspace)

    def by_tid(rows: Sequence[asyncpg.Record]) -> dict[int, list[tuple[Any, ...]]]:
        found: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(tuple(row)[1:])
        return found

    by_message, by_usage, by_link = by_tid(messages), by_tid(usage), by_tid(links)
    threads: dict[str, planner.ThreadRows] = {}
    for tid, thread_id, head, title_tokens in heads:
        rows = by_message.get(tid, [])
        threads[thread_id] = planner.ThreadRows(
            head=ThreadHead.model_validate_json(head),
            positions=tuple((pos, v) for pos, v, _ in rows),
            usage=tuple(planner.UsageRow(*u) for u in by_usage.get(tid, [])),
            links=frozenset(planner.LinkRow(*k) for k in by_link.get(tid, [])),
            documents=tuple(sorted((v, " ".join(t)) for _, v, t in rows)),
            title_tokens=" ".join(title_tokens),
        )
    return planner.DerivedRows(threads, tuple((t, v, d) for t, v, d in feed))


def _bm25(
    documents: list[tuple[_T, SearchDocument]],
    terms: Sequence[fts.QueryTerm],
    *,
    total: int,
    average: float,
    frequency: Sequence[int],
    k1: float = 1.2,
    b: float = 0.75,
) -> list[tuple[float, _T, SearchDocument]]:
    """:func:`threadline.search.bm25_rank` with corpus figures given, not counted."""
    ranked: list[tuple[float, _T, SearchDocument]] = []
    average = average or 1.0
    for key, doc in documents:
        counts = [len(doc.matches(term)) for term in terms]
        if not all(counts):
            continue
        score = 0.0
        for count, seen in zip(counts, frequency, strict=True):
            idf = max(math.log((total - seen + 0.5) / (seen + 0.5)), 1e-6)
            score += idf * count * (k1 + 1) / (count + k1 * (1 - b + b * doc.length / average))
        ranked.append((score, key, doc))
    ranked.sort(key=lambda item: -item[0])
    return ranked
