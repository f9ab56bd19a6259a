"""RemoteRecorder: the storage roles a sync server serves over its HTTP API (httpx).

One recorder is one workspace: the one the token belongs to. Appends are
pushes (``POST /v1/threads/{id}/deltas``), so the server decides version
checks; a 409 becomes :class:`VersionConflict` (or :class:`ThreadExists` for
a create), a 404 :class:`ThreadNotFound`. A push the server already has (a
retry after a lost answer) succeeds without writing twice. ``load`` folds the
thread's log, fetched by pages of deltas (a log never changes below its head,
so pages fold consistently).

HTTP errors are translated in one place, :meth:`RemoteRecorder._send`:
unreachable, timeouts and 5xx become :class:`RemoteUnavailable` (retryable),
401 and 413 :class:`RemoteRefused`, 422 :class:`InvalidDelta`.

Archiving runs on the server, next to its storage and its cold storage:
:meth:`RemoteRecorder.archive_on_server` and :meth:`RemoteRecorder.restore_on_server`
ask it to (``POST /v1/archive``, ``/v1/threads/{id}/restore``), and the server
restores an archived thread by itself when it is pushed to; reading its deltas
or messages answers 409 ``thread_archived`` (a GET changes nothing), and this
client then restores it with a POST and reads again. The client therefore
has the roles the server offers over HTTP (the thread log, links, usage,
search, the change feed) and not the archive ledger or the file log (file
logs are not synced): the type checker refuses those on it, and a
:class:`~threadline.store.ThreadStore` over it raises
:class:`~threadline.errors.RoleUnavailable` for them.
Writer leases are this client's own: across machines, the server's version
check is what keeps writers apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from threadline.deltas import Delta, fold
from threadline.errors import (
    InvalidDelta,
    RemoteRefused,
    RemoteUnavailable,
    StoreClosed,
    ThreadArchived,
    ThreadExists,
    ThreadlineError,
    ThreadNotFound,
    VersionConflict,
    WriterBusy,
)
from threadline.files.log import FileChange, StoredContent
from threadline.model import Message, Thread, ThreadHead
from threadline.recorders.roles import (
    Append,
    Change,
    ChangeFeed,
    LinkGraph,
    LinkIndex,
    RecordedDelta,
    SearchIndex,
    ThreadLink,
    UsageGroup,
    UsageIndex,
    WriterLease,
)
from threadline.search import SearchHit
from threadline.sync import errors as wire_errors
from threadline.sync import files_wire as fw
from threadline.sync import protocol as wire
from threadline.sync.compression import encode_body

_PAGE = 1000  # the server's default max page size
_M = TypeVar("_M", bound=BaseModel)


class _LocalLease(WriterLease):
    def __init__(self, held: set[str], thread_id: str) -> None:
        self._held = held
        self.thread_id = thread_id

    def release(self) -> None:
        self._held.discard(self.thread_id)


def _path(thread_id: str) -> str:
    return "/v1/threads/" + quote(thread_id, safe="")


class RemoteRecorder(LinkIndex, UsageIndex, SearchIndex, ChangeFeed):
    """The threads of the token's workspace on a sync server at ``base_url``.

    Its roles are the thread log, the link, usage and search indexes and the
    change feed; it has no :class:`ArchiveLedger` and no :class:`FileLog`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )
        self._leases: set[str] = set()
        self._closed = False

    @property
    def location(self) -> str:
        return self._base_url

    # -- HTTP -------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send a request; statuses in ``ok`` are returned, 404 and 409 too (the
        caller knows what they mean), anything else raised as a threadline error."""
        if self._closed:
            raise StoreClosed()
        try:
            response = await self._client.request(
                method, url, json=json, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise RemoteUnavailable(self.location, f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in ok or status in (404, 409):
            return response
        code, detail = _answer(response)
        raise wire_errors.error_of(wire_errors.Answered(status, code, detail, self.location))

    async def _get(self, url: str, model: type[_M], **params: Any) -> _M | None:
        response = await self._send("GET", url, params=params)
        if response.status_code == 404:
            return None
        if response.status_code == 409:
            code, detail = _answer(response)
            raise wire_errors.error_of(wire_errors.Answered(409, code, detail, self.location))
        return model.model_validate_json(response.content)

    async def _get_content(
        self, thread_id: str, suffix: str, model: type[_M], **params: Any
    ) -> _M | None:
        """A GET of a thread's content; an archived thread is restored (POST) and
        read again, as a local store restores on read."""
        try:
            return await self._get(_path(thread_id) + suffix, model, **params)
        except ThreadArchived:
            await self.restore_on_server(thread_id)
        return await self._get(_path(thread_id) + suffix, model, **params)

    # -- writes -------------------------------------------------------------------

    async def append(
        self, thread_id: str, expected_version: int, deltas: Sequence[Delta]
    ) -> ThreadHead:
        if not deltas:
            raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        body = wire.PushRequest(base_version=expected_version, deltas=list(deltas))
        response = await self._send(
            "POST", _path(thread_id) + "/deltas", json=body.model_dump(mode="json")
        )
        if response.status_code == 404:
            raise ThreadNotFound(thread_id)
        if response.status_code == 409:
            conflict = wire.PushConflict.model_validate_json(response.content)
            if expected_version == 0:
                raise ThreadExists(thread_id)
            raise VersionConflict(thread_id, expected_version, conflict.version)
        return wire.PushAccepted.model_validate_json(response.content).head

    async def _batch(self, appends: Sequence[Append], *, atomic: bool) -> list[wire.BatchResult]:
        body = wire.BatchRequest(
            pushes=[
                wire.BatchPush(thread_id=t, base_version=v, deltas=list(d)) for t, v, d in appends
            ],
            atomic=atomic,
        )
        response = await self._send("POST", "/v1/sync/batch", json=body.model_dump(mode="json"))
        return wire.BatchResponse.model_validate_json(response.content).results

    async def push_batch(
        self, pushes: Sequence[Append], *, compress: bool = False
    ) -> list[wire.BatchResult]:
        """One ``POST /v1/sync/batch`` of up to 50 independent pushes, answered
        with each push's own result (a 409 carries the server's version and the
        deltas the push lacked): what the sync service sends. The body is
        zstd-compressed when large, or always with ``compress``
        (:mod:`threadline.sync.compression`)."""
        body = wire.BatchRequest(
            pushes=[
                wire.BatchPush(thread_id=t, base_version=v, deltas=list(d)) for t, v, d in pushes
            ]
        )
        content, encoding = encode_body(body.model_dump_json().encode(), force=compress)
        response = await self._send(
            "POST",
            "/v1/sync/batch",
            content=content,
            headers={"Content-Type": "application/json", **encoding},
        )
        if response.status_code != 200:
            raise RemoteRefused(self.location, response.status_code, _message(response))
        return wire.BatchResponse.model_validate_json(response.content).results

    async def append_many(self, appends: Sequence[Append]) -> list[ThreadHead]:
        if len(appends) > wire.MAX_BATCH:
            raise InvalidDelta(f"At most {wire.MAX_BATCH} appends commit together on a server")
        for thread_id, _, deltas in appends:
            if not deltas:
                raise InvalidDelta(f"Nothing to append to thread {thread_id}")
        results = await self._batch(appends, atomic=True)
        heads: list[ThreadHead] = []
        for (thread_id, base, _), result in zip(appends, results, strict=True):
            if result.accepted is None:
                if result.status == 424:
                    continue
                raise _error_of(thread_id, base, result)
            heads.append(result.accepted.head)
        if len(heads) != len(appends):
            raise InvalidDelta("The server applied none of the batch")
        return heads

    async def append_each(self, appends: Sequence[Append]) -> list[ThreadHead | ThreadlineError]:
        outcomes: list[ThreadHead | ThreadlineError] = []
        for start in range(0, len(appends), wire.MAX_BATCH):
            chunk = appends[start : start + wire.MAX_BATCH]
            sendable = [a for a in chunk if a[2]]
            results = iter(await self._batch(sendable, atomic=False) if sendable else [])
            for thread_id, base, deltas in chunk:
                if not deltas:
                    outcomes.append(InvalidDelta(f"Nothing to append to thread {thread_id}"))
                    continue
                result = next(results)
                outcomes.append(
                    result.accepted.head
                    if result.accepted is not None
                    else _error_of(thread_id, base, result)
                )
        return outcomes

    async def delete(self, thread_id: str, *, version: int | None = None) -> bool:
        params = None if version is None else {"version": version}
        response = await self._send("DELETE", _path(thread_id), params=params, ok=(204,))
        if response.status_code == 409:
            conflict = wire.PushConflict.model_validate_json(response.content)
            raise VersionConflict(thread_id, version or 0, conflict.version)
        return response.status_code == 204

    async def delete_many(self, thread_ids: Sequence[str]) -> list[bool]:
        return [await self.delete(thread_id) for thread_id in thread_ids]

    # -- file changes (threadline.sync.files_wire) ------------------------------

    async def read_file_log(self, thread_id: str, *, after: int = 0) -> fw.FileChangesPage:
        """The server's file changes of the thread after ``after`` (a page) and
        how many it holds; :class:`ThreadNotFound` if it has no such thread."""
        found = await self._get(_path(thread_id) + "/files", fw.FileChangesPage, after=after)
        if found is None:
            raise ThreadNotFound(thread_id)
        return found

    async def push_file_changes(
        self,
        thread_id: str,
        after: int,
        changes: Sequence[FileChange],
        contents: Sequence[StoredContent],
    ) -> int:
        """Append ``changes`` to the server's file log of the thread, which must
        hold ``after`` changes (else :class:`VersionConflict` with its count),
        with ``contents`` (only those it lacks: :meth:`missing_contents`)."""
        body = fw.FilePush(
            after=after,
            changes=list(changes),
            contents=[fw.WireContent.of(c) for c in contents],
        )
        content, encoding = encode_body(body.model_dump_json().encode())
        response = await self._send(
            "POST",
            _path(thread_id) + "/files",
            content=content,
            headers={"Content-Type": "application/json", **encoding},
        )
        if response.status_code == 404:
            raise ThreadNotFound(thread_id)
        if response.status_code == 409:
            conflict = fw.FilePushConflict.model_validate_json(response.content)
            raise VersionConflict(thread_id, after, conflict.count)
        return fw.FilePushAccepted.model_validate_json(response.content).count

    async def missing_contents(self, hashes: Sequence[str]) -> list[str]:
        """Which of ``hashes`` the server does not store."""
        missing: list[str] = []
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), fw.MAX_HASHES):
            body = fw.ContentQuery(hashes=unique[start : start + fw.MAX_HASHES])
            response = await self._send(
                "POST", "/v1/contents/missing", json=body.model_dump(mode="json")
            )
            missing += fw.MissingContents.model_validate_json(response.content).missing
        return missing

    async def remote_content_chain(self, content_hash: str) -> list[StoredContent]:
        """A content the server stores and its bases (empty if it has none)."""
        found = await self._get(f"/v1/contents/{content_hash}", fw.ContentChain)
        return [] if found is None else [c.stored() for c in found.contents]

    # -- reads --------------------------------------------------------------------

    async def head(self, thread_id: str) -> ThreadHead | None:
        page = await self._get(_path(thread_id), wire.MessagesPage, limit=0)
        # An archived thread is not active: its kept head is not a head (as on SQLite).
        return None if page is None or page.archived else page.head

    async def load(self, thread_id: str) -> Thread | None:
        log = await self.deltas(thread_id)
        return fold(r.delta for r in log) if log else None

    async def load_many(self, thread_ids: Sequence[str]) -> dict[str, Thread]:
        found: dict[str, Thread] = {}
        for thread_id in dict.fromkeys(thread_ids):
            thread = await self.load(thread_id)
            if thread is not None:
                found[thread_id] = thread
        return found

    async def heads_many(self, thread_ids: Sequence[str]) -> dict[str, ThreadHead]:
        found: dict[str, ThreadHead] = {}
        for thread_id in dict.fromkeys(thread_ids):
            head = await self.head(thread_id)
            if head is not None:
                found[thread_id] = head
        return found

    async def page(
        self, thread_id: str, *, limit: int, offset: int = 0, before: int | None = None
    ) -> tuple[ThreadHead, list[Message]] | None:
        params: dict[str, int] = {"limit": min(limit, _PAGE), "offset": offset}
        if before is not None:
            params["before"] = before
        found = await self._get_content(thread_id, "/messages", wire.MessagesPage, **params)
        if found is None:
            return None
        messages = list(found.messages)
        # Longer than a server page: older pages, read at the same version.
        while len(messages) < limit and found.has_more:
            older = await self._get_content(
                thread_id,
                "/messages",
                wire.MessagesPage,
                limit=min(limit - len(messages), _PAGE),
                before=found.first_index,
            )
            if older is None or older.head.v != found.head.v:
                return await self.page(thread_id, limit=limit, offset=offset, before=before)
            messages = list(older.messages) + messages
            found = older
        return found.head, messages

    async def deltas(
        self, thread_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[RecordedDelta]:
        records: list[RecordedDelta] = []
        since = max(0, after)
        while upto is None or since < upto:
            limit = _PAGE if upto is None else min(_PAGE, upto - since)
            found = await self._get_content(
                thread_id, "/deltas", wire.DeltasPage, since=since, limit=limit
            )
            if found is None:
                return []
            records += [RecordedDelta(thread_id, d.v, d.at, d.delta) for d in found.deltas]
            if not found.has_more or not found.deltas:
                break
            since = found.deltas[-1].v
        return records

    async def list_heads(
        self, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[ThreadHead]:
        heads: list[ThreadHead] = []
        cursor = None if after is None else f"{after[0]}:{after[1]}"
        while len(heads) < limit:
            params: dict[str, Any] = {"limit": min(limit - len(heads), _PAGE), "archived": False}
            if cursor is not None:
                params["cursor"] = cursor
            found = await self._get("/v1/threads", wire.ThreadList, **params)
            assert found is not None
            heads += [listed.as_head() for listed in found.threads]
            cursor = found.next_cursor
            if cursor is None:
                break
        return heads

    async def changes_since(self, cursor: int, *, limit: int) -> list[Change]:
        changes: list[Change] = []
        while len(changes) < limit:
            found = await self._get(
                "/v1/changes",
                wire.ChangesPage,
                since=cursor,
                limit=min(limit - len(changes), _PAGE),
            )
            assert found is not None
            changes += [Change(c.cursor, c.thread_id, c.v, c.deleted, c.at) for c in found.changes]
            cursor = found.cursor
            if not found.has_more:
                break
        return changes

    # -- relationships, costs, search -------------------------------------------------

    async def _graph(self, thread_id: str, direction: str) -> LinkGraph:
        found = await self._get(_path(thread_id) + f"/{direction}", wire.WireGraph)
        if found is None:  # neither exists nor is linked
            return LinkGraph((), {})
        return LinkGraph(
            tuple(ThreadLink(link.parent_id, link.child_id, link.kind) for link in found.links),
            dict(found.heads),
            frozenset(found.archived),
            frozenset(found.deleted),
        )

    async def subtree(self, thread_id: str) -> LinkGraph:
        return await self._graph(thread_id, "subtree")

    async def ancestry(self, thread_id: str) -> LinkGraph:
        return await self._graph(thread_id, "ancestry")

    async def usage_rollup(
        self, thread_ids: Sequence[str] | None = None, *, subtrees: bool = False
    ) -> list[UsageGroup]:
        params: dict[str, Any] = {"subtrees": subtrees}
        if thread_ids is not None:
            if not thread_ids:
                return []
            params["thread_id"] = list(dict.fromkeys(thread_ids))
        found = await self._get("/v1/usage", wire.UsageReport, **params)
        assert found is not None
        return [UsageGroup(**g.model_dump()) for g in found.groups]

    async def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        found = await self._get("/v1/search", wire.SearchResults, q=query, limit=limit)
        assert found is not None
        return [
            SearchHit(
                thread_id=h.thread_id,
                message_id=h.message_id,
                kind=h.kind,
                snippet=h.snippet,
                highlights=tuple(h.highlights),
                score=h.score,
                thread_title=h.thread_title,
            )
            for h in found.hits
        ]

    # -- cold storage, on the server ------------------------------------------------

    async def archive_on_server(
        self,
        *,
        older_than: timedelta | None = None,
        thread_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Have the server move to its cold storage the threads inactive for
        ``older_than``, or ``thread_ids`` (each with its sub-agent threads);
        returns the ids moved (with ``dry_run``, those that would be).
        :class:`ThreadNotFound` for an unknown id (then nothing moves)."""
        body: wire.ArchiveInactive | wire.ArchiveThese
        if (older_than is None) == (thread_ids is None):
            raise ValueError("Give either older_than or thread_ids")
        if older_than is not None:
            days = older_than.total_seconds() / 86_400
            body = wire.ArchiveInactive(older_than_days=days, dry_run=dry_run)
        else:
            body = wire.ArchiveThese(thread_ids=list(thread_ids or ()), dry_run=dry_run)
        response = await self._send("POST", "/v1/archive", json=body.model_dump(mode="json"))
        if response.status_code == 404 and thread_ids is not None and len(thread_ids) == 1:
            raise ThreadNotFound(thread_ids[0])
        if response.status_code != 200:
            raise RemoteRefused(self.location, response.status_code, _message(response))
        return wire.ArchiveResult.model_validate_json(response.content).thread_ids

    async def restore_on_server(self, thread_id: str, *, with_subagents: bool = True) -> list[str]:
        """Have the server bring an archived thread back (with its archived
        sub-agent threads unless ``with_subagents`` is false); the ids restored,
        ``[]`` if it is active."""
        response = await self._send(
            "POST", _path(thread_id) + "/restore", params={"with_subagents": with_subagents}
        )
        if response.status_code == 404:
            raise ThreadNotFound(thread_id)
        if response.status_code != 200:
            raise RemoteRefused(self.location, response.status_code, _message(response))
        return wire.RestoreResult.model_validate_json(response.content).thread_ids

    # -- leases and lifecycle -------------------------------------------------------

    def acquire_lease(self, thread_id: str) -> WriterLease:
        if self._closed:
            raise StoreClosed()
        if thread_id in self._leases:
            raise WriterBusy(thread_id)
        self._leases.add(thread_id)
        return _LocalLease(self._leases, thread_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()


def _message(response: httpx.Response) -> str:
    return _answer(response)[1]


def _answer(response: httpx.Response) -> tuple[str, str]:
    """The ``code`` and ``message`` of an error answer (``""`` and its text if
    it is not an :class:`~threadline.sync.protocol.ErrorBody`)."""
    try:
        body = wire.ErrorBody.model_validate_json(response.content)
    except ValueError:
        return "", response.text[:200] or response.reason_phrase
    return body.code, body.message


def _error_of(thread_id: str, base: int, result: wire.BatchResult) -> ThreadlineError:
    """A batch result that is not accepted, as the error its push alone would
    raise (the table of :mod:`threadline.sync.errors`)."""
    body = result.error or result.conflict
    code = body.code if body is not None else ""
    message = body.message if body is not None else f"status {result.status}"
    version = result.conflict.version if result.conflict is not None else None
    answer = wire_errors.Answered(
        result.status, code, message, thread_id, thread_id=thread_id, base=base, version=version
    )
    return wire_errors.error_of(answer)
