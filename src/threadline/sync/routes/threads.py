"""The threads routes: create, list, read (head and messages), delete, and a
thread's relations (related, subtree, ancestry)."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to threads_router.
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from threadline.deltas import Delta, MessageDelta, ThreadCreate
from threadline.errors import ThreadNotFound, VersionConflict
from threadline.ids import new_thread_id, now_ms, parse_list_cursor
from threadline.model import ThreadHead
from threadline.recorders.base import LinkGraph, ThreadRecorder
from threadline.sync import protocol as wire
from threadline.sync.push import accepted as accepted_push
from threadline.sync.routes.context import ERRORS, Caller, Problem, ServerContext, ServerRoute
from threadline.sync.server_archive import ServerArchive


def _page_bounds(count: int, limit: int, offset: int, before: int | None) -> tuple[int, int]:
    end = max(0, (count if before is None else min(before, count)) - offset)
    return max(0, end - limit), end


def _cursor_of(head: ThreadHead) -> str:
    return f"{head.last_activity}:{head.id}"


def _parse_list_cursor(cursor: str) -> tuple[int, str]:
    parsed = parse_list_cursor(cursor)
    if parsed is None:
        raise Problem(422, "invalid_cursor", f"Not a thread list cursor: {cursor!r}")
    return parsed


async def messages_page(
    recorder: ThreadRecorder, thread_id: str, limit: int, offset: int, before: int | None
) -> wire.MessagesPage:
    """A page of messages as ``GET /v1/threads/{id}/messages`` answers it."""
    found = await recorder.page(thread_id, limit=limit, offset=offset, before=before)
    if found is None:
        raise ThreadNotFound(thread_id)
    head, messages = found
    start, _ = _page_bounds(head.message_count, limit, offset, before)
    return wire.MessagesPage(head=head, messages=messages, first_index=start, has_more=start > 0)


async def _linked(
    recorder: ThreadRecorder, parent: str | None, origin: str | None, *, archived: bool
) -> list[ThreadHead]:
    """Heads of the sub-agents of ``parent`` and/or the summaries of ``origin``,
    newest activity first (with ``archived``, the kept heads of archived ones too)."""
    wanted: list[str] = []
    for source, kind in ((parent, "child"), (origin, "summary")):
        if source is None:
            continue
        graph = await recorder.subtree(source)
        ids = [
            link.child_id for link in graph.links if link.parent_id == source and link.kind == kind
        ]
        if wanted and parent is not None and origin is not None:
            wanted = [i for i in wanted if i in ids]
        else:
            wanted = ids
    unique = list(dict.fromkeys(wanted))
    heads = await recorder.heads_many(unique)
    if archived:
        for thread_id in (i for i in unique if i not in heads):
            entry = await recorder.archived(thread_id)
            if entry is not None:
                heads[thread_id] = entry.head
    return sorted(heads.values(), key=lambda h: (h.last_activity, h.id), reverse=True)


async def _listed(
    recorder: ThreadRecorder,
    limit: int,
    after: tuple[int, str] | None,
    parent: str | None,
    origin: str | None,
    archived: bool,
) -> list[ThreadHead]:
    """The heads a listing chooses from, newest activity first (up to ``limit + 1``
    of the plain listing; all linked ones with ``parent`` or ``origin``)."""
    if parent is not None or origin is not None:
        heads = await _linked(recorder, parent, origin, archived=archived)
        if after is not None:
            heads = [h for h in heads if (h.last_activity, h.id) < after]
        return heads
    heads = await recorder.list_heads(limit=limit + 1, after=after)
    if archived:
        kept = await recorder.list_archived(limit=limit + 1, after=after)
        heads = sorted(
            [*heads, *(entry.head for entry in kept)],
            key=lambda h: (h.last_activity, h.id),
            reverse=True,
        )
    return heads


def _related(thread_id: str, down: LinkGraph, up: LinkGraph) -> wire.Related:
    head = down.heads.get(thread_id)
    if head is None:
        raise ThreadNotFound(thread_id)
    below = [link for link in down.links if link.parent_id == thread_id]
    children = [link.child_id for link in below if link.kind == "child"]
    summaries = [link.child_id for link in below if link.kind == "summary"]
    parents = [
        link.parent_id for link in up.links if link.child_id == thread_id and link.kind == "child"
    ]
    parent_id = head.parent_thread_id or (parents[0] if parents else None)
    return wire.Related(
        thread=head,
        parent=up.heads.get(parent_id) if parent_id else None,
        summaries=[down.heads[i] for i in dict.fromkeys(summaries) if i in down.heads],
        children=[down.heads[i] for i in dict.fromkeys(children) if i in down.heads],
    )


def _wire_graph(thread_id: str, graph: LinkGraph) -> wire.WireGraph:
    """The graph on the wire; 404 for a thread that neither exists nor is linked."""
    if not graph.links and thread_id not in graph.heads:
        raise ThreadNotFound(thread_id)
    return wire.WireGraph(
        links=[
            wire.WireLink(parent_id=link.parent_id, child_id=link.child_id, kind=link.kind)
            for link in graph.links
        ],
        heads=graph.heads,
        archived=sorted(graph.archived),
        deleted=sorted(graph.deleted),
    )


def threads_router(ctx: ServerContext, archive: ServerArchive) -> APIRouter:
    """``/v1/threads`` (create, list), ``/v1/threads/{id}`` (read, delete), its
    ``/messages``, ``/related``, ``/subtree`` and ``/ancestry``."""
    router = APIRouter(tags=["threads"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]
    ThreadIdPath = Annotated[str, PathParam(pattern=wire.THREAD_ID_PATTERN, examples=["T-example"])]
    Limit = Annotated[int, Query(ge=0, le=ctx.limits.max_page_size)]

    @router.post(
        "/v1/threads",
        status_code=201,
        responses={409: {"model": wire.ErrorBody, "description": "Id taken"}},
    )
    async def create_thread(body: wire.CreateThread, who: Auth) -> wire.PushAccepted:
        """Create a thread (version 1, one more per initial message)."""
        create = ThreadCreate(
            id=body.id or new_thread_id(),
            created=body.created if body.created is not None else now_ms(),
            title=body.title,
            parent_thread_id=body.parent_thread_id,
            origin_thread_id=body.origin_thread_id,
            env=body.env,
            metadata=body.metadata,
        )
        deltas: list[Delta] = [create, *(MessageDelta.of(m) for m in body.messages)]
        ctx.check_push(create.id, 0, deltas)
        head = await who.recorder.append(create.id, 0, deltas)
        ctx.changed(who)
        return accepted_push(head)

    @router.get("/v1/threads")
    async def list_threads(
        who: Auth,
        limit: Limit = 50,
        cursor: Annotated[
            str | None,
            Query(max_length=300, json_schema_extra={"pattern": wire.LIST_CURSOR_PATTERN}),
        ] = None,
        parent: Annotated[str | None, Query(pattern=wire.THREAD_ID_PATTERN)] = None,
        origin: Annotated[str | None, Query(pattern=wire.THREAD_ID_PATTERN)] = None,
        active_since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        archived: bool = True,
    ) -> wire.ThreadList:
        """Threads by newest activity first: all, the sub-agents of ``parent``, or
        the summaries of ``origin``; only those active since ``active_since`` (ms).
        Archived threads are listed too (``archived: true``, their kept metadata)
        unless ``archived=false``."""
        after = _parse_list_cursor(cursor) if cursor else None
        heads = await _listed(who.recorder, limit, after, parent, origin, archived)
        if active_since is not None:
            heads = [h for h in heads if h.last_activity >= active_since]
        more = len(heads) > limit
        heads = heads[:limit]
        return wire.ThreadList(
            threads=[wire.ListedHead.of(h) for h in heads],
            next_cursor=_cursor_of(heads[-1]) if more and heads else None,
        )

    @router.get("/v1/threads/{thread_id}")
    async def get_thread(
        thread_id: ThreadIdPath, who: Auth, limit: Limit = 50
    ) -> wire.MessagesPage:
        """The head and the newest ``limit`` messages; for an archived thread its
        kept metadata, no messages and ``archived: true``."""
        entry = None
        if await who.recorder.head(thread_id) is None:
            entry = await who.recorder.archived(thread_id)
        if entry is not None:
            return wire.MessagesPage(
                head=entry.head, messages=[], first_index=0, has_more=False, archived=True
            )
        return await messages_page(who.recorder, thread_id, limit, 0, None)

    @router.get("/v1/threads/{thread_id}/messages")
    async def get_messages(
        thread_id: ThreadIdPath,
        who: Auth,
        limit: Limit = 50,
        before: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> wire.MessagesPage:
        """Up to ``limit`` messages ending before position ``before`` (default: the
        newest), skipping ``offset`` more; oldest first. An archived thread answers
        409 ``thread_archived``: restore it (POST) first."""
        return await archive.active_only(
            who, thread_id, lambda: messages_page(who.recorder, thread_id, limit, offset, before)
        )

    @router.delete(
        "/v1/threads/{thread_id}",
        status_code=204,
        responses={409: {"model": wire.PushConflict, "description": "Changed since `version`"}},
    )
    async def delete_thread(
        thread_id: ThreadIdPath,
        who: Auth,
        version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> Response:
        """Delete a thread and its log; the change feed shows a tombstone. With
        ``version``, only if the thread is still at that version (a delete that
        did not see a later change does not win): else 409 with the server's
        version, nothing deleted."""
        try:
            found = await who.recorder.delete(thread_id, version=version)
        except VersionConflict as exc:
            conflict = wire.PushConflict(
                message=(
                    f"Thread {thread_id} is at version {exc.actual}, not {version}: "
                    "it changed since the delete saw it, so it is kept"
                ),
                version=exc.actual,
                missing=[],
            )
            return Response(
                conflict.model_dump_json(), status_code=409, media_type="application/json"
            )
        if not found:
            raise ThreadNotFound(thread_id)
        ctx.changed(who)
        return Response(status_code=204)

    @router.get("/v1/threads/{thread_id}/related")
    async def related(thread_id: ThreadIdPath, who: Auth) -> wire.Related:
        """The thread's parent, its summaries and its sub-agent threads."""
        down = await who.recorder.subtree(thread_id)
        if thread_id not in down.heads:
            raise ThreadNotFound(thread_id)
        return _related(thread_id, down, await who.recorder.ancestry(thread_id))

    @router.get("/v1/threads/{thread_id}/subtree")
    async def subtree(thread_id: ThreadIdPath, who: Auth) -> wire.WireGraph:
        """Every link below the thread (sub-agents, summaries, theirs, ...)."""
        return _wire_graph(thread_id, await who.recorder.subtree(thread_id))

    @router.get("/v1/threads/{thread_id}/ancestry")
    async def ancestry(thread_id: ThreadIdPath, who: Auth) -> wire.WireGraph:
        """Every link above the thread (its parent or source, theirs, ...)."""
        return _wire_graph(thread_id, await who.recorder.ancestry(thread_id))

    return router
