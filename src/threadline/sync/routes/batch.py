"""The batch route: up to 50 pushes in one request and one commit
(``POST /v1/sync/batch``), each answered alone or, atomic, all or none."""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to batch_router.
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from threadline.deltas import Delta
from threadline.errors import ThreadExists, ThreadlineError, VersionConflict
from threadline.recorders.base import ThreadRecorder
from threadline.sync import protocol as wire
from threadline.sync.errors import answer_of
from threadline.sync.push import Revive, append_all, explain_refusal, push_each
from threadline.sync.push import accepted as accepted_push
from threadline.sync.routes.context import ERRORS, Caller, ServerContext, ServerRoute
from threadline.sync.routes.deltas import json_answer
from threadline.sync.routes.handlers import server_failure
from threadline.sync.server_archive import ServerArchive

Outcome = wire.PushAccepted | wire.PushConflict | ThreadlineError


def batch_result(thread_id: str, outcome: Outcome) -> wire.BatchResult:
    """One push's outcome as its batch result: the status it alone would get."""
    if isinstance(outcome, wire.PushAccepted):
        return wire.BatchResult(thread_id=thread_id, status=200, accepted=outcome)
    if isinstance(outcome, wire.PushConflict):
        return wire.BatchResult(thread_id=thread_id, status=409, conflict=outcome)
    if isinstance(outcome, VersionConflict):  # as a push answers it: with the version
        conflict = wire.PushConflict(message=str(outcome), version=outcome.actual, missing=[])
        return wire.BatchResult(thread_id=thread_id, status=409, conflict=conflict)
    status, code, message = answer_of(outcome)
    if status >= 500:  # the details to the log, an error id to the client
        body = server_failure(status, code, message, outcome).body
        error = wire.ErrorBody.model_validate_json(bytes(body))
    else:
        error = wire.ErrorBody(code=code, message=str(outcome))
    return wire.BatchResult(thread_id=thread_id, status=status, error=error)


async def _refused_atomic(
    recorder: ThreadRecorder,
    appends: list[tuple[str, int, list[Delta]]],
    exc: ThreadlineError,
    max_missing: int,
) -> wire.BatchResponse:
    """The answer to an atomic batch that ``exc`` refused: the push that failed
    gets its own answer, the others 424 (not applied)."""
    failed = getattr(exc, "thread_id", None)
    results: list[wire.BatchResult] = []
    for thread_id, base, deltas in appends:
        if thread_id != failed:
            results.append(
                wire.BatchResult(
                    thread_id=thread_id,
                    status=424,
                    error=wire.ErrorBody(
                        code="not_applied",
                        message="Another push of the batch failed: "
                        + (answer_of(exc)[2] if answer_of(exc)[0] >= 500 else str(exc)),
                    ),
                )
            )
            continue
        failed = None  # only its first push gets the real answer
        outcome: Outcome = exc
        if isinstance(exc, VersionConflict | ThreadExists):
            try:
                outcome = await explain_refusal(
                    recorder, thread_id, base, deltas, max_missing=max_missing
                )
            except ThreadlineError as missing:
                outcome = missing
            if isinstance(outcome, wire.PushAccepted):  # in already, but the batch is not
                outcome = exc
        results.append(batch_result(thread_id, outcome))
    return wire.BatchResponse(results=results)


async def push_atomic(
    recorder: ThreadRecorder,
    appends: list[tuple[str, int, list[Delta]]],
    max_missing: int,
    revive: Revive,
) -> wire.BatchResponse:
    """All the pushes in one commit, or none."""
    try:
        heads = await append_all(recorder, appends, revive=revive)
    except ThreadlineError as exc:
        return await _refused_atomic(recorder, appends, exc, max_missing)
    return wire.BatchResponse(
        results=[
            wire.BatchResult(thread_id=a[0], status=200, accepted=accepted_push(h))
            for a, h in zip(appends, heads, strict=True)
        ]
    )


def batch_router(ctx: ServerContext, archive: ServerArchive) -> APIRouter:
    """``POST /v1/sync/batch``."""
    router = APIRouter(tags=["sync"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]
    max_missing = ctx.limits.max_page_size

    async def batch_as(who: Caller, body: wire.BatchRequest) -> Response:
        for item in body.pushes:
            ctx.check_push(item.thread_id, item.base_version, item.deltas)
        appends = [(p.thread_id, p.base_version, p.deltas) for p in body.pushes]
        revive = archive.reviver(who)
        if body.atomic:
            return json_answer(await push_atomic(who.recorder, appends, max_missing, revive))
        outcomes = await push_each(who.recorder, appends, max_missing=max_missing, revive=revive)
        results = [batch_result(p.thread_id, o) for p, o in zip(body.pushes, outcomes, strict=True)]
        if any(r.accepted is not None and not r.accepted.replayed for r in results):
            ctx.changed(who)
        return json_answer(wire.BatchResponse(results=results))

    class BatchRoute(ServerRoute):
        async def shortcut(self, request: Request) -> Response | None:
            found = await ctx.common_case(request, wire.BatchRequest)
            return None if found is None else await batch_as(*found)

    async def push_batch(body: wire.BatchRequest, who: Auth) -> Response:
        """Up to 50 pushes in one request and one commit, each with its own result
        (or, with ``atomic``, all accepted or none)."""
        return await batch_as(who, body)

    router.add_api_route(
        "/v1/sync/batch",
        push_batch,
        methods=["POST"],
        response_model=wire.BatchResponse,
        route_class_override=BatchRoute,
    )
    return router
