"""The viewer's routes: sign-in, the thread list, a thread, and the fragments
its script fetches (older pages, new messages, file diffs).

An edge like the JSON routes: each route reads through the caller's
:class:`~threadline.store.ThreadStore` (a read-only view of their workspace)
and renders. A thread of another workspace is not in that store, so its URL
answers 404 exactly like an unknown id.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations.
import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from threadline.auth import authenticate
from threadline.cli.render import describe_delta
from threadline.errors import OperationNotFound, ThreadArchived, ThreadNotFound
from threadline.ids import parse_list_cursor
from threadline.model import Message, ThreadHead, ThreadPage
from threadline.recorders.base import ArchiveLedger, RecordedDelta
from threadline.recorders.roles import usage_index
from threadline.recorders.workspaces import Workspaces
from threadline.relations import ThreadTree
from threadline.viewer.render import (
    TreeItem,
    group_files,
    message_views,
    render,
    thread_rows,
)
from threadline.viewer.session import (
    COOKIE,
    SECURITY_HEADERS,
    Viewer,
    clear_sign_in_cookie,
    insecure_origin,
    safe_next,
    same_origin,
    set_sign_in_cookie,
    sign_in,
)

PAGE_SIZE = 50
"""Messages per page: the first render shows the newest page."""
TAIL_LIMIT = 200
"""At most this many new messages are appended live; beyond, the page reloads its newest page."""
LIST_SIZE = 50
HISTORY_SHOWN = 10
HISTORY_PAGE = 100
TREE_LIMIT = 500
SPAWNING_TOOLS = frozenset({"Task", "Agent"})
"""Tools whose call starts a sub-agent thread (Claude Code calls it Task)."""
SEARCH_LIMITS = (50, 200)
_SINCE = {"1d": 1, "7d": 7, "30d": 30}
_DAY_MS = 86_400_000

Status = Literal["all", "active", "archived"]
Since = Literal["", "1d", "7d", "30d"]


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Cache-Control": "no-store", **(extra or {})}


async def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    # Rendering (markdown above all) is CPU work: off the event loop.
    text = await asyncio.to_thread(render, template, **context)
    return HTMLResponse(text, status_code=status, headers=_headers())


def _to_login(request: Request, *, forget: bool) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(here, safe='')}", 303, headers=_headers())
    if forget:
        clear_sign_in_cookie(response)
    return response


def _unauthorized() -> JSONResponse:
    body = {"code": "unauthorized", "message": "Sign in again: the token is missing or not valid"}
    return JSONResponse(body, status_code=401, headers=_headers({"WWW-Authenticate": "Bearer"}))


def _not_found_json(thread_id: str) -> JSONResponse:
    body = {"code": "not_found", "message": f"Thread {thread_id} not found"}
    return JSONResponse(body, status_code=404, headers=_headers())


async def _not_found(viewer: Viewer, thread_id: str) -> HTMLResponse:
    return await _html("not_found.html", 404, viewer=viewer, thread_id=thread_id)


@dataclass(frozen=True)
class _Cursor:
    last_activity: int
    thread_id: str

    @classmethod
    def parse(cls, text: str) -> "_Cursor | None":
        parsed = parse_list_cursor(text)
        return None if parsed is None else cls(*parsed)

    @classmethod
    def of(cls, head: ThreadHead) -> str:
        return f"{head.last_activity}:{head.id}"


def viewer_router(storage: Callable[[], Workspaces]) -> APIRouter:
    """The viewer's routes over ``storage`` (the server's workspaces)."""
    router = APIRouter(include_in_schema=False)

    async def viewer_of(request: Request) -> Viewer | None:
        return await sign_in(request, storage)

    # -- signing in and out ----------------------------------------------------

    @router.get("/login")
    async def login_form(request: Request, next: str | None = None) -> Response:
        return await _html(
            "login.html",
            viewer=None,
            next=safe_next(next),
            error=None,
            insecure=insecure_origin(request),
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        target = safe_next((form.get("next") or ["/"])[0])
        if not same_origin(request):
            return await _html("forbidden.html", 403, viewer=None)
        token = (form.get("token") or [""])[0].strip()
        principal = await authenticate(storage(), token) if token else None
        if principal is None:
            return await _html(
                "login.html",
                401,
                viewer=None,
                next=target,
                error="That token is not valid. Make one with: threadline token create",
                insecure=insecure_origin(request),
            )
        response = RedirectResponse(target, 303, headers=_headers())
        set_sign_in_cookie(response, token)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if not same_origin(request):
            return await _html("forbidden.html", 403, viewer=None)
        response = RedirectResponse("/login", 303, headers=_headers())
        clear_sign_in_cookie(response)
        return response

    # -- the thread list ---------------------------------------------------------

    @router.get("/")
    async def thread_list(
        request: Request,
        q: Annotated[str, Query(max_length=1000)] = "",
        status: Status = "all",
        since: Since = "",
        cursor: Annotated[str | None, Query(max_length=300)] = None,
        more: bool = False,
    ) -> Response:
        viewer = await viewer_of(request)
        if viewer is None:
            return _to_login(request, forget=COOKIE in request.cookies)
        filters = {"q": q, "status": status, "since": since}
        if q.strip():
            limit = SEARCH_LIMITS[1] if more else SEARCH_LIMITS[0]
            try:
                hits = await viewer.store.search(q, limit=limit)
                problem = None
            except ValueError as exc:
                hits, problem = [], str(exc)
            return await _html(
                "list.html",
                viewer=viewer,
                filters=filters,
                hits=hits,
                search_problem=problem,
                more_hits=not more and len(hits) == limit,
                heads=None,
                costs={},
                next_cursor=None,
                paged=False,
            )
        after = _Cursor.parse(cursor) if cursor else None
        if cursor and after is None:
            return await _html("bad_request.html", 400, viewer=viewer, what="list cursor")
        heads, next_cursor = await _list_heads(viewer, status, after)
        if since:
            oldest = int(time.time() * 1000) - _SINCE[since] * _DAY_MS
            kept = [head for head in heads if head.last_activity >= oldest]
            if len(kept) < len(heads):  # newest first: every later page is older
                next_cursor = None
            heads = kept
        return await _html(
            "list.html",
            viewer=viewer,
            filters=filters,
            hits=None,
            search_problem=None,
            more_hits=False,
            heads=thread_rows(heads, await _models(viewer, heads)),
            costs=await viewer.store.thread_costs([h.id for h in heads if not h.archived]),
            next_cursor=next_cursor,
            paged=cursor is not None,
        )

    # -- a thread ------------------------------------------------------------------

    @router.get("/threads/{thread_id}")
    async def thread_page(
        request: Request,
        thread_id: str,
        before: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    ) -> Response:
        """The thread: its newest page of messages (or the page ending before
        position ``before``, for browsing without the script), and beside it
        costs, the tree, file changes and the newest versions."""
        viewer = await viewer_of(request)
        if viewer is None:
            return _to_login(request, forget=COOKIE in request.cookies)
        store = viewer.store
        try:
            page = await store.load_thread(thread_id, limit=PAGE_SIZE, before=before)
            head = page.head
            operations = await store.file_operations(thread_id, diffs=False)
            tree, tree_left_out, spawned = await _tree(viewer, thread_id)
            history = await store.history(thread_id, after=max(0, head.v - HISTORY_SHOWN))
            cost = (await store.thread_costs([thread_id]))[thread_id]
        except ThreadArchived:
            entry = await store.archived_thread(thread_id)
            if entry is None:  # restored meanwhile: show it
                return RedirectResponse(request.url.path, 303, headers=_headers())
            return await _html("archived.html", viewer=viewer, head=entry.head, entry=entry)
        except ThreadNotFound:  # also when deleted while this page was read
            return await _not_found(viewer, thread_id)
        changes = [diff.change for op in operations for diff in op.changes]
        return await _html(
            "thread.html",
            viewer=viewer,
            head=head,
            thread_cost=cost,
            views=await asyncio.to_thread(  # markdown and pricing: CPU work, off the loop
                message_views, page.messages, page.first_index, group_files(changes), spawned
            ),
            first_index=page.first_index,
            end_index=page.first_index + len(page.messages),
            has_more=page.has_more,
            at_end=page.first_index + len(page.messages) >= head.message_count,
            tree=tree,
            tree_left_out=tree_left_out,
            operations=operations,
            history=_history_rows(history),
            history_more=head.v > HISTORY_SHOWN,
        )

    @router.get("/threads/{thread_id}/costs")
    async def costs(request: Request, thread_id: str, fragment: bool = False) -> Response:
        """The cost report (by model, priced where responses reported no cost, and
        with the thread's sub-agents and summaries): fetched after the page shows,
        since it sums every response of the thread."""
        viewer = await viewer_of(request)
        if viewer is None:
            return _unauthorized() if fragment else _to_login(request, forget=False)
        store = viewer.store
        try:
            head = (await store.load_thread(thread_id, limit=0)).head
            own = await store.cost_report(thread_id, by="model")
            below = head.child_thread_ids or head.summary_thread_ids
            tree = await store.cost_report(thread_id, tree=True) if below else None
        except (ThreadNotFound, ThreadArchived):
            return _not_found_json(thread_id) if fragment else await _not_found(viewer, thread_id)
        if fragment:
            return await _html("_costs.html", head=head, own_cost=own, tree_cost=tree)
        return await _html(
            "costs.html",
            viewer=viewer,
            head=head,
            thread_cost=own.total,
            own_cost=own,
            tree_cost=tree,
        )

    @router.get("/threads/{thread_id}/messages")
    async def messages_fragment(
        request: Request,
        thread_id: str,
        before: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
        after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=TAIL_LIMIT)] = PAGE_SIZE,
    ) -> Response:
        """JSON for the page's script: ``html`` of the messages before position
        ``before`` (older, on scroll), or from position ``after`` on (new ones,
        live; ``reset`` when the page must replace its list instead, after a
        truncate or a burst of more than :data:`TAIL_LIMIT`)."""
        viewer = await viewer_of(request)
        if viewer is None:
            return _unauthorized()
        store = viewer.store
        try:
            if after is None:
                page = await store.load_thread(thread_id, limit=limit, before=before)
                reset = False
                messages = list(page.messages)
                first = page.first_index
            else:
                page = await store.load_thread(thread_id, limit=TAIL_LIMIT)
                reset = after > page.total_messages or page.first_index > after
                keep = PAGE_SIZE if reset else page.total_messages - after
                messages = list(page.messages[len(page.messages) - keep :]) if keep else []
                first = page.total_messages - len(messages)
        except (ThreadNotFound, ThreadArchived):
            return _not_found_json(thread_id)
        return JSONResponse(
            await _fragment(viewer, page, messages, first, reset=reset), headers=_headers()
        )

    @router.get("/threads/{thread_id}/files")
    async def file_changes(
        request: Request,
        thread_id: str,
        operation: Annotated[str | None, Query(max_length=1000)] = None,
        fragment: bool = False,
    ) -> Response:
        viewer = await viewer_of(request)
        if viewer is None:
            return _unauthorized() if fragment else _to_login(request, forget=False)
        try:
            page = await viewer.store.load_thread(thread_id, limit=0)
            operations = await viewer.store.file_operations(thread_id, operation_id=operation)
            cost = (await viewer.store.thread_costs([thread_id]))[thread_id]
        except (ThreadNotFound, ThreadArchived, OperationNotFound):
            if fragment:
                return _not_found_json(thread_id)
            return await _not_found(viewer, thread_id)
        if fragment:
            return await _html("_diffs.html", operations=operations, head=page.head)
        return await _html(
            "files.html",
            viewer=viewer,
            head=page.head,
            thread_cost=cost,
            operations=operations,
            operation=operation,
        )

    @router.get("/threads/{thread_id}/history")
    async def history_page(
        request: Request,
        thread_id: str,
        upto: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> Response:
        viewer = await viewer_of(request)
        if viewer is None:
            return _to_login(request, forget=COOKIE in request.cookies)
        try:
            head = (await viewer.store.load_thread(thread_id, limit=0)).head
            last = min(upto or head.v, head.v)
            records = await viewer.store.history(
                thread_id, after=max(0, last - HISTORY_PAGE), upto=last
            )
            cost = (await viewer.store.thread_costs([thread_id]))[thread_id]
        except (ThreadNotFound, ThreadArchived):
            return await _not_found(viewer, thread_id)
        first = records[0].v if records else 1
        return await _html(
            "history.html",
            viewer=viewer,
            head=head,
            thread_cost=cost,
            history=_history_rows(records),
            older=first - 1 if first > 1 else None,
            newer=min(head.v, last + HISTORY_PAGE) if last < head.v else None,
        )

    return router


async def _list_heads(
    viewer: Viewer, status: Status, after: _Cursor | None
) -> tuple[list[ThreadHead], str | None]:
    """One page of heads, newest activity first, and the cursor of the next."""
    store = viewer.store
    if status == "archived":
        key = None if after is None else (after.last_activity, after.thread_id)
        if not isinstance(store.recorder, ArchiveLedger):
            return [], None  # a backend without an archive ledger archives nothing
        entries = await store.recorder.list_archived(limit=LIST_SIZE + 1, after=key)
        heads = [entry.head for entry in entries]
        more = len(heads) > LIST_SIZE
        heads = heads[:LIST_SIZE]
        return heads, _Cursor.of(heads[-1]) if more and heads else None
    text = None if after is None else f"{after.last_activity}:{after.thread_id}"
    listed = await store.list_threads(
        limit=LIST_SIZE, cursor=text, include_archived=status == "all"
    )
    return list(listed.threads), listed.next_cursor


def _spawned(tree: ThreadTree, thread_id: str) -> dict[str, str]:
    """Tool call id → the sub-agent thread it started, for ``thread_id``'s sub-agents
    that recorded their tool call (imported Claude Code sessions do)."""
    found: dict[str, str] = {}
    for node in tree.nodes:
        if node.parent_id == thread_id and node.kind == "child" and node.head is not None:
            call = node.head.metadata.get("spawned_by_tool_call")
            if isinstance(call, str):
                found[call] = node.id
    return found


async def _models(viewer: Viewer, heads: Sequence[ThreadHead]) -> dict[str, list[str]]:
    """The models each listed thread's messages used, most used first (one query)."""
    ids = [head.id for head in heads if not head.archived]
    if not ids:
        return {}
    counts: dict[str, dict[str, int]] = {}
    for group in await usage_index(viewer.store.recorder, "The thread list").usage_rollup(ids):
        if group.model:
            per = counts.setdefault(group.thread_id, {})
            per[group.model] = per.get(group.model, 0) + group.messages
    return {tid: sorted(per, key=lambda m: (-per[m], m)) for tid, per in counts.items()}


async def _tree(viewer: Viewer, thread_id: str) -> tuple[TreeItem, int, dict[str, str]]:
    """The sub-agent and summary tree this thread belongs to, from its root (its
    first :data:`TREE_LIMIT` threads, depth first), how many were left out, and
    which of this thread's tool calls started which sub-agent thread."""
    store = viewer.store
    root = await store.get_root_thread(thread_id)
    tree: ThreadTree | None = None
    if root.head is not None:
        try:
            tree = await store.get_thread_tree(root.id)
        except ThreadNotFound:
            tree = None
    if tree is None:
        tree = await store.get_thread_tree(thread_id)
    items: dict[str, TreeItem] = {}
    shown = tree.nodes[:TREE_LIMIT]
    costs = await store.thread_costs([node.id for node in shown if node.head is not None])
    for node in shown:
        head = node.head
        # what the tree shows of a thread: its head, or for a held-back
        # sub-agent what its machine last knew of it
        title, messages, cost = None, None, costs.get(node.id)
        if head is not None:
            title, messages = head.title, head.message_count
        elif node.last_known is not None:
            known = node.last_known
            title, messages, cost = known.title, known.messages, known.cost
        item = TreeItem(
            id=node.id,
            kind=node.kind,
            title=title or node.id,
            messages=messages,
            cost=cost.cost_text() if cost is not None else None,
            state="ok"
            if head is not None
            else node.held_back or ("archived" if node.archived else "deleted"),
            current=node.id == thread_id,
        )
        items[node.id] = item
        if node.parent_id is not None and node.parent_id in items:
            items[node.parent_id].below.append(item)
    return items[tree.root_id], max(0, len(tree.nodes) - TREE_LIMIT), _spawned(tree, thread_id)


def _history_rows(records: list[RecordedDelta]) -> list[tuple[int, int, str, str]]:
    """(version, time, type, what it did), newest first."""
    return [(r.v, r.at, r.delta.type, describe_delta(r.delta)) for r in reversed(records)]


async def _fragment(
    viewer: Viewer, page: ThreadPage, messages: list[Message], first: int, *, reset: bool
) -> dict[str, Any]:
    files = {}
    spawned: dict[str, str] = {}
    if any(message.tool_calls for message in messages):
        files = group_files(await viewer.store.file_changes(page.head.id))
        if any(call.name in SPAWNING_TOOLS for m in messages for call in m.tool_calls):
            tree = await viewer.store.get_thread_tree(page.head.id)
            spawned = _spawned(tree, page.head.id)
    views = await asyncio.to_thread(message_views, messages, first, files, spawned)
    html = await asyncio.to_thread(render, "_messages.html", views=views)
    head = page.head
    cost = (await viewer.store.thread_costs([head.id]))[head.id]
    return {
        "html": html,
        "first_index": first,
        "end_index": first + len(messages),
        "has_more": first > 0,
        "reset": reset,
        "message_count": head.message_count,
        "v": head.v,
        "title": head.title,
        "cost": cost.cost_text(),
        "last_activity": head.last_activity,
    }
