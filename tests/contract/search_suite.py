"""The contract of the :class:`~threadline.recorders.roles.SearchIndex` role,
full-text search: every backend that has it finds the same
messages for the same query, and its index follows appends, truncates,
retitles and deletes in the same commit.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.deltas import Delta, MessageDelta, ThreadCreate, TitleDelta, TruncateDelta
from threadline.model import Message, ToolCall, ToolResult
from threadline.recorders.roles import SearchIndex
from threadline.search import SearchHit


def message(n: int, content: str = "", **extra: object) -> Message:
    return Message.model_validate(
        {"id": f"M-{n}", "role": "user", "content": content, "timestamp": 1000 + n, **extra}
    )


THREAD: list[Delta] = [
    ThreadCreate(id="T-login", title="Fix the login bug", created=1),
    MessageDelta.of(message(1, "The login page crashes when the password is empty.")),
    MessageDelta.of(
        message(
            2,
            "Reading the handler",
            role="assistant",
            tool_calls=(
                ToolCall(id="c1", name="read_file", input={"path": "src/auth/handler.py"}),
            ),
        )
    ),
    MessageDelta.of(
        message(3, tool_results=(ToolResult(tool_call_id="c1", output="raise KeyError('token')"),))
    ),
    MessageDelta.of(message(4, "Café crème: the résumé mentions naïve caching")),
]
OTHER: list[Delta] = [
    ThreadCreate(id="T-other", title="Caching notes", created=2),
    MessageDelta.of(message(10, "caching caching caching everywhere")),
    MessageDelta.of(message(11, "a page about caching and the login flow")),
]


def found(hits: list[SearchHit]) -> list[tuple[str, str | None]]:
    return [(hit.thread_id, hit.message_id) for hit in hits]


class SearchIndexContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> SearchIndex:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def searchable(self, tmp_path: Path) -> AsyncIterator[SearchIndex]:
        recorder = await self.make_recorder(tmp_path)
        await recorder.append("T-login", 0, THREAD)
        await recorder.append("T-other", 0, OTHER)
        yield recorder
        await recorder.close()

    async def test_search_finds_message_content(self, searchable: SearchIndex) -> None:
        assert found(await searchable.search("crashes")) == [("T-login", "M-1")]

    async def test_search_finds_tool_inputs_and_outputs(self, searchable: SearchIndex) -> None:
        assert found(await searchable.search("handler.py")) == [("T-login", "M-2")]
        assert found(await searchable.search("KeyError")) == [("T-login", "M-3")]

    async def test_search_finds_titles_with_no_message_id(self, searchable: SearchIndex) -> None:
        hits = await searchable.search("bug")
        assert found(hits) == [("T-login", None)]
        assert (hits[0].kind, hits[0].snippet, hits[0].highlights) == (
            "title",
            "Fix the login bug",
            ((14, 17),),
        )
        assert hits[0].thread_title == "Fix the login bug"

    async def test_search_ands_words_and_matches_phrases(self, searchable: SearchIndex) -> None:
        assert set(found(await searchable.search("login page"))) == {
            ("T-login", "M-1"),
            ("T-other", "M-11"),
        }
        assert found(await searchable.search('"login page"')) == [("T-login", "M-1")]
        assert await searchable.search("login nowhere") == []

    async def test_search_is_case_and_accent_insensitive(self, searchable: SearchIndex) -> None:
        assert found(await searchable.search("CAFE resume naive")) == [("T-login", "M-4")]

    async def test_trailing_star_matches_a_prefix(self, searchable: SearchIndex) -> None:
        assert found(await searchable.search("crash*")) == [("T-login", "M-1")]

    async def test_more_occurrences_rank_first(self, searchable: SearchIndex) -> None:
        hits = await searchable.search("caching")
        assert hits[0].message_id == "M-10"
        assert {h.message_id for h in hits} == {"M-10", "M-11", "M-4", None}
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    async def test_snippet_marks_the_match(self, searchable: SearchIndex) -> None:
        [hit] = await searchable.search('"password is empty"')
        assert hit.snippet == "The login page crashes when the password is empty."
        start, end = hit.highlights[0]
        assert hit.snippet[start:end] == "password is empty"

    async def test_limit_caps_the_hits(self, searchable: SearchIndex) -> None:
        assert len(await searchable.search("caching", limit=2)) == 2

    async def test_truncated_messages_are_not_found(self, searchable: SearchIndex) -> None:
        await searchable.append("T-login", 5, [TruncateDelta(from_index=0)])
        assert await searchable.search("crashes") == []
        assert await searchable.search("KeyError") == []
        await searchable.append("T-login", 6, [MessageDelta.of(message(5, "crashes again"))])
        assert found(await searchable.search("crashes")) == [("T-login", "M-5")]

    async def test_retitle_replaces_the_title_hit(self, searchable: SearchIndex) -> None:
        await searchable.append("T-login", 5, [TitleDelta(value="Session expiry")])
        assert await searchable.search("bug") == []
        assert found(await searchable.search("expiry")) == [("T-login", None)]
        await searchable.append("T-login", 6, [TitleDelta(value=None)])
        assert await searchable.search("expiry") == []

    async def test_deleted_thread_is_not_found(self, searchable: SearchIndex) -> None:
        assert await searchable.delete("T-login")
        assert await searchable.search("crashes") == []
        assert {h.thread_id for h in await searchable.search("caching")} == {"T-other"}

    async def test_a_failed_append_indexes_nothing(self, searchable: SearchIndex) -> None:
        with pytest.raises(Exception, match="version"):
            await searchable.append("T-login", 2, [MessageDelta.of(message(6, "zebra"))])
        assert await searchable.search("zebra") == []

    @pytest.mark.parametrize("query", ["", "   ", "!!! ---", '""'])
    async def test_query_without_a_word_is_refused(
        self, searchable: SearchIndex, query: str
    ) -> None:
        with pytest.raises(ValueError, match="no word"):
            await searchable.search(query)
