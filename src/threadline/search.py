"""Full-text search, the pure part: what text a message offers, how a query is
read, and the ranking the in-memory recorder uses. No I/O.

What is searchable: a message's ``content``, its tool calls (name and input
JSON) and tool results (output), and thread titles. Text is split into tokens
the way SQLite FTS5's ``unicode61`` tokenizer does (runs of letters and
digits; case and diacritics folded), so every backend finds the same things.

Query syntax: words are ANDed (``login bug`` finds messages with both); a
word that holds punctuation (``foo-bar``, ``a.py``) or a ``"quoted phrase"``
must appear as adjacent tokens; a trailing ``*`` (``refact*``) matches any
token starting with what precedes it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import orjson
from pydantic import JsonValue

from threadline.model import Message

_TOKEN = re.compile(r"[^\W_]+")
_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')
SNIPPET_TOKENS = 12
"""How many tokens a snippet shows around the first match (backends aim for it)."""

HitKind = Literal["message", "title"]
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a message (or a thread's title) that matched.

    ``snippet`` is one line of the matching text, cut with ``…``;
    ``highlights`` are ``(start, end)`` character offsets of the matched
    tokens in ``snippet``. ``score`` is higher for better matches; it ranks
    hits of one query and means nothing across queries or backends.
    """

    thread_id: str
    message_id: str | None
    kind: HitKind
    snippet: str
    highlights: tuple[tuple[int, int], ...]
    score: float
    thread_title: str | None = None


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """Adjacent tokens that must all appear in order; ``prefix`` lets the last one
    be the start of a longer token."""

    tokens: tuple[str, ...]
    prefix: bool = False


def fold(text: str) -> str:
    """Lower case, Latin letters without diacritics (``Élan`` → ``elan``), as FTS5's
    ``unicode61 remove_diacritics 2`` folds them (no compatibility mapping:
    ``ﬁ`` stays ``ﬁ``)."""
    if text.isascii():
        return text.lower()
    kept: list[str] = []
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char) and kept and kept[-1] < _LATIN_END:
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)).lower()


_LATIN_END = "\u0250"  # Latin letters (and their extensions) come before this


INDEX_TOKEN_CHARS = 200
"""How much of a token a token index keeps (PostgreSQL's GIN index): an entry
must fit a third of a page, and a word thousands of characters long would not.
Tokens that agree on their first characters share an entry; the exact match is
made on the text (:class:`SearchDocument`)."""


def index_token(token: str) -> str:
    """``token`` as a token index keeps it (and a query looks it up)."""
    return token[:INDEX_TOKEN_CHARS]


def tokens(text: str) -> list[str]:
    folded = fold(text)
    if folded.isascii():  # the same runs of letters and digits, four times faster
        return folded.translate(_ASCII_SEPARATORS).split()
    return _TOKEN.findall(folded)


# Every ASCII character but a letter or digit, as a space: in ASCII text, the
# runs that _TOKEN finds are what str.split() leaves once these are spaces.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})


def parse_query(query: str) -> list[QueryTerm]:
    """The terms of ``query``; raises :class:`ValueError` if it has no searchable word."""
    terms: list[QueryTerm] = []
    for quoted, bare in _QUERY_PART.findall(query):
        text = quoted if quoted else bare
        prefix = not quoted and text.endswith("*")
        found = tuple(tokens(text))
        if found:
            terms.append(QueryTerm(found, prefix))
    if not terms:
        raise ValueError(f"The search query {query!r} has no word to look for")
    return terms


def fts5_query(terms: Sequence[QueryTerm]) -> str:
    """The FTS5 MATCH expression for ``terms`` (tokens hold only letters and
    digits, so quoting them needs no escaping)."""
    return " AND ".join(
        '"' + " ".join(term.tokens) + '"' + (" *" if term.prefix else "") for term in terms
    )


def _json_text(value: JsonValue) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def message_search_text(message: Message) -> tuple[str, str]:
    """The searchable text of a message: (content, tool calls and results).

    Tool calls are ``name {input JSON}``, results their output (text as is,
    anything else as JSON), one per line.
    """
    parts = [f"{call.name} {orjson.dumps(call.input).decode()}" for call in message.tool_calls]
    parts += [_json_text(result.output) for result in message.tool_results]
    return message.content, "\n".join(parts)


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs as spaces (same length, so offsets hold)."""
    return text.translate(_FLATTEN)


_FLATTEN = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\x0b": " ", "\x0c": " "})


# -- in-memory ranking (the MemoryRecorder's search) ---------------------------


@dataclass
class SearchDocument:
    """The searchable fields of one message or title, tokenized once."""

    fields: tuple[str, ...]
    field_tokens: tuple[list[tuple[str, int, int]], ...] = field(init=False)
    length: int = field(init=False)

    def __post_init__(self) -> None:
        self.field_tokens = tuple(
            [(fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]
            for text in self.fields
        )
        self.length = sum(len(found) for found in self.field_tokens)

    @classmethod
    def of_message(cls, message: Message) -> SearchDocument:
        return cls(message_search_text(message))

    @classmethod
    def of_title(cls, title: str) -> SearchDocument:
        return cls((title,))

    def matches(self, term: QueryTerm) -> list[tuple[int, int]]:
        """(field, token index) of every occurrence of ``term``."""
        found: list[tuple[int, int]] = []
        size = len(term.tokens)
        for number, toks in enumerate(self.field_tokens):
            for start in range(len(toks) - size + 1):
                if all(
                    _token_matches(toks[start + i][0], want, term.prefix and i == size - 1)
                    for i, want in enumerate(term.tokens)
                ):
                    found.append((number, start))
        return found

    def hit(
        self,
        terms: Sequence[QueryTerm],
        *,
        thread_id: str,
        message_id: str | None,
        score: float,
        thread_title: str | None,
    ) -> SearchHit:
        """This document as a search hit of ``terms`` (a title if ``message_id`` is None)."""
        snippet, highlights = self.snippet(terms)
        return SearchHit(
            thread_id=thread_id,
            message_id=message_id,
            kind="title" if message_id is None else "message",
            snippet=snippet,
            highlights=highlights,
            score=score,
            thread_title=thread_title,
        )

    def snippet(self, terms: Sequence[QueryTerm]) -> tuple[str, tuple[tuple[int, int], ...]]:
        """About :data:`SNIPPET_TOKENS` tokens around the first match, with highlights."""
        hits = sorted((where, len(term.tokens)) for term in terms for where in self.matches(term))
        number, first = hits[0][0]
        toks = self.field_tokens[number]
        text = self.fields[number]
        lo = max(0, first - SNIPPET_TOKENS // 4)
        hi = min(len(toks), lo + SNIPPET_TOKENS)
        lo = max(0, hi - SNIPPET_TOKENS)
        begin = 0 if lo == 0 else toks[lo][1]
        end = len(text) if hi == len(toks) else toks[hi - 1][2]
        lead = "" if begin == 0 else "…"
        snippet = lead + one_line(text[begin:end]) + ("" if end == len(text) else "…")
        shift = len(lead) - begin
        marks = sorted(
            {
                (toks[start][1] + shift, toks[start + size - 1][2] + shift)
                for (field_no, start), size in hits
                if field_no == number and lo <= start and start + size <= hi
            }
        )
        return snippet, tuple(marks)


def _token_matches(token: str, want: str, prefix: bool) -> bool:
    return token.startswith(want) if prefix else token == want


def bm25_rank(
    documents: Iterable[tuple[_K, SearchDocument]],
    terms: Sequence[QueryTerm],
    *,
    k1: float = 1.2,
    b: float = 0.75,
) -> list[tuple[float, _K, SearchDocument]]:
    """Okapi BM25 (FTS5's ranking) over ``documents`` that contain every term,
    best first, as ``(score, key, document)``."""
    docs = list(documents)
    if not docs:
        return []
    average = sum(doc.length for _, doc in docs) / len(docs) or 1.0
    counts: list[list[int]] = []
    frequency = [0] * len(terms)
    for _, doc in docs:
        row = [len(doc.matches(term)) for term in terms]
        counts.append(row)
        for index, count in enumerate(row):
            frequency[index] += count > 0
    ranked: list[tuple[float, _K, SearchDocument]] = []
    total = len(docs)
    for (key, doc), row in zip(docs, counts, strict=True):
        if not all(row):
            continue
        score = 0.0
        for index, count in enumerate(row):
            idf = max(math.log((total - frequency[index] + 0.5) / (frequency[index] + 0.5)), 1e-6)
            norm = count * (k1 + 1) / (count + k1 * (1 - b + b * doc.length / average))
            score += idf * norm
        ranked.append((score, key, doc))
    ranked.sort(key=lambda item: -item[0])
    return ranked
