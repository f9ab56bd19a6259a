"""An OpenAI Agents SDK session backed by threadline
(``pip install 'threadline[openai-agents]'``)::

    session = ThreadlineSession("user-42", "threads.db")
    result = await Runner.run(agent, "Hello", session=session)

One threadline thread per session id, with a deterministic id
(:func:`session_thread_id`), so several processes on one store converge on
it. Each item becomes a message: a ``message`` item by its role (``developer``
→ ``system``), a ``function_call`` an assistant message with its tool call,
a ``function_call_output`` a tool result; anything else (reasoning, built-in
tool calls, ...) an assistant message without text. The item itself is kept
in the message's metadata (``"openai_agents"``), so :meth:`ThreadlineSession.get_items`
returns exactly what was added. :meth:`~ThreadlineSession.pop_item` and
:meth:`~ThreadlineSession.clear_session` are truncates at the version they
read, so the history stays readable in the thread's log.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
from agents.items import TResponseInputItem
from agents.memory.session import SessionABC
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)
from pydantic import JsonValue

from threadline.deltas import Delta, MessageDelta, ThreadCreate, TruncateDelta
from threadline.errors import ThreadExists, VersionConflict
from threadline.integrations.portal import Portal
from threadline.model import Message, Role, ToolCall, ToolResult
from threadline.store import ThreadStore

__all__ = ["ThreadlineSession", "session_thread_id"]

_T = TypeVar("_T")

ITEM_KEY = "openai_agents"
"""The key of a message's metadata that holds the SDK's item."""

_NAMESPACE = uuid.UUID("0b7e8f0e-3a52-4d8e-9d0c-6f70656e6169")


def session_thread_id(session_id: str) -> str:
    """The threadline thread of an Agents SDK session id (the same everywhere)."""
    return f"T-{uuid.uuid5(_NAMESPACE, session_id)}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict):
            text = part.get("text") or part.get("refusal")
            if isinstance(text, str):
                parts.append(text)
    return "\n".join(parts)


def item_message(item: TResponseInputItem) -> Message:
    """The threadline message that holds one session item."""
    raw: JsonValue = orjson.loads(orjson.dumps(item))
    assert isinstance(raw, dict)
    kind = raw.get("type", "message" if "role" in raw else None)
    role: Role = "assistant"
    content = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    if kind == "message":
        given = raw.get("role")
        role = "user" if given == "user" else "system" if given in ("system", "developer") else role
        content = _text(raw.get("content"))
    elif kind == "function_call":
        try:
            arguments = orjson.loads(str(raw.get("arguments") or "{}"))
        except orjson.JSONDecodeError:
            arguments = {"arguments": raw.get("arguments")}
        tool_calls = (
            ToolCall(
                id=str(raw.get("call_id") or raw.get("id") or ""),
                name=str(raw.get("name") or ""),
                input=arguments if isinstance(arguments, dict) else {"value": arguments},
            ),
        )
    elif kind == "function_call_output":
        role = "user"
        output = raw.get("output")
        tool_results = (
            ToolResult(
                tool_call_id=str(raw.get("call_id") or ""),
                output=output if isinstance(output, str) else _text(output),
            ),
        )
    return Message(
        role=role,
        content=content,
        tool_calls=tool_calls,
        tool_results=tool_results,
        metadata={ITEM_KEY: raw},
    )


class ThreadlineSession(SessionABC):
    """The SDK's ``Session`` on a :class:`ThreadStore` (see the module's docstring).

    ``path`` is a SQLite store to open on first use (closed by :meth:`close`;
    ``None``: the default store, ``":memory:"``: a throwaway one); ``store``
    an open store to use instead (left open)."""

    def __init__(
        self,
        session_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        store: ThreadStore | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self.thread_id = session_thread_id(session_id)
        self._path = path
        self._store = store
        self._owns_store = store is None
        self._closed = False
        # A store it opens itself lives on a loop of its own: the SDK's callers
        # may use one session from several threads and event loops at once.
        self._portal: Portal | None = Portal("threadline-agents-session") if store is None else None
        self._opening: asyncio.Lock | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def _ready(self) -> ThreadStore:
        """The store, opened on first use (on the portal's loop, the only loop
        that runs this for a store the session opens; :meth:`_run` has checked
        that the session is open)."""
        if self._store is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:  # one store, however many first calls race
                if self._store is None:
                    self._store = await ThreadStore.open(self._path)
        return self._store

    async def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self.closed:
            coro.close()
            raise RuntimeError(f"{type(self).__name__} is closed")
        if self._portal is None:
            return await coro
        return await self._portal.run(coro)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first; with ``limit`` (or the session
        settings' limit) only the newest ``limit`` (none for 0)."""
        return await self._run(self._get_items(limit))

    async def _get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        store = await self._ready()
        count = resolve_session_limit(limit, self.session_settings)
        if count == 0:
            return []
        head = await store.recorder.head(self.thread_id)
        if head is None or head.message_count == 0:
            return []
        wanted = head.message_count if count is None or count < 0 else count
        page = await store.recorder.page(self.thread_id, limit=wanted)
        messages = page[1] if page else []
        return [message.metadata[ITEM_KEY] for message in messages]  # type: ignore[misc]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append items as messages, in one atomic append."""
        return await self._run(self._add_items(items))

    async def _add_items(self, items: list[TResponseInputItem]) -> None:
        store = await self._ready()
        if not items:
            return
        deltas: list[Delta] = [MessageDelta.of(item_message(item)) for item in items]
        while True:  # each conflict means another writer appended first
            head = await store.recorder.head(self.thread_id)
            try:
                if head is None:
                    create = ThreadCreate(
                        id=self.thread_id,
                        title=f"Agents session {self.session_id}",
                        metadata={ITEM_KEY: {"session_id": self.session_id}},
                    )
                    await store.append_deltas(self.thread_id, 0, [create, *deltas])
                else:
                    await store.append_deltas(self.thread_id, head.v, deltas)
                return
            except (VersionConflict, ThreadExists):
                continue

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (a truncate; it stays in the log)."""
        return await self._run(self._pop_item())

    async def _pop_item(self) -> TResponseInputItem | None:
        store = await self._ready()
        while True:
            page = await store.recorder.page(self.thread_id, limit=1)
            if page is None or not page[1]:
                return None
            head, (last,) = page
            try:
                await store.append_deltas(
                    self.thread_id, head.v, [TruncateDelta(from_index=head.message_count - 1)]
                )
            except VersionConflict:
                continue
            return last.metadata[ITEM_KEY]  # type: ignore[return-value]

    async def clear_session(self) -> None:
        """Remove every item (a truncate; the thread's log keeps them)."""
        return await self._run(self._clear_session())

    async def _clear_session(self) -> None:
        store = await self._ready()
        while True:
            head = await store.recorder.head(self.thread_id)
            if head is None or head.message_count == 0:
                return
            try:
                await store.append_deltas(self.thread_id, head.v, [TruncateDelta(from_index=0)])
            except VersionConflict:
                continue
            return

    def close(self) -> None:
        """Close the store this session opened; later calls raise ``RuntimeError``."""
        self._closed = True
        store, self._store = self._store, None
        portal, self._portal = self._portal, None
        if portal is None:
            return
        try:
            if store is not None:
                portal.call(store.close())
        finally:
            portal.close()
