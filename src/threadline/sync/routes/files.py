"""The file-change routes: a thread's file log and the contents it names.

``GET`` / ``POST /v1/threads/{id}/files`` read and append a thread's file log
(:meth:`~threadline.recorders.roles.FileLog.copy_file_changes`: changes keep
the numbers, versions and times the recording machine gave them);
``POST /v1/contents/missing`` says which contents the server lacks, so a
client pushes only those; ``GET /v1/contents/{hash}`` reads a content and the
bases it is a delta of. All scoped to the caller's workspace.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes'
# annotations, which name aliases local to files_router.
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.convertors import Convertor, register_url_convertor

from threadline.errors import ContentMissing, InvalidFileChange, ThreadNotFound, VersionConflict
from threadline.sync import files_wire as fw
from threadline.sync import protocol as wire
from threadline.sync.routes.context import ERRORS, Caller, Problem, ServerContext, ServerRoute
from threadline.sync.routes.deltas import json_answer


class _HashConvertor(Convertor[str]):
    """A path segment that is a content hash (64 lowercase hex digits), so that
    ``/v1/contents/missing`` is not also a ``GET /v1/contents/{hash}`` path (its
    405 would advertise a GET that the schema does not document)."""

    regex = "[0-9a-f]{64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("content_hash", _HashConvertor())


def files_router(ctx: ServerContext) -> APIRouter:
    """``/v1/threads/{id}/files``, ``/v1/contents/missing`` and ``/v1/contents/{hash}``."""
    router = APIRouter(tags=["files"], responses=ERRORS, route_class=ServerRoute)
    Auth = Annotated[Caller, Depends(ctx.caller)]
    ThreadIdPath = Annotated[str, PathParam(pattern=wire.THREAD_ID_PATTERN, examples=["T-example"])]

    @router.get("/v1/threads/{thread_id}/files")
    async def get_files(
        thread_id: ThreadIdPath,
        who: Auth,
        after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> fw.FileChangesPage:
        """The thread's file changes numbered after ``after``, oldest first (up
        to 1000), and how many its file log holds."""
        if await who.recorder.head(thread_id) is None:
            raise ThreadNotFound(thread_id)
        found = await who.recorder.file_changes(thread_id)
        return fw.FileChangesPage(
            thread_id=thread_id,
            count=len(found),
            changes=[c for c in found if c.seq > after][: fw.MAX_FILE_CHANGES],
        )

    @router.post(
        "/v1/threads/{thread_id}/files",
        response_model=fw.FilePushAccepted,
        responses={409: {"model": fw.FilePushConflict, "description": "Not after `after`"}},
    )
    async def push_files(thread_id: ThreadIdPath, body: fw.FilePush, who: Auth) -> Response:
        """Append file changes recorded elsewhere, with the contents the server
        lacks; 409 with the server's count if its file log does not hold
        exactly ``after`` changes."""
        try:
            count = await who.recorder.copy_file_changes(
                thread_id, body.after, body.changes, [c.stored() for c in body.contents]
            )
        except VersionConflict as exc:
            conflict = fw.FilePushConflict(
                message=(
                    f"The file log of thread {thread_id} holds {exc.actual} changes, "
                    f"not {body.after}"
                ),
                count=exc.actual,
            )
            return json_answer(conflict, 409)
        except (ContentMissing, InvalidFileChange) as exc:
            raise Problem(422, "invalid_file_change", str(exc)) from exc
        ctx.changed(who)
        return json_answer(fw.FilePushAccepted(count=count))

    @router.post("/v1/contents/missing")
    async def missing_contents(body: fw.ContentQuery, who: Auth) -> fw.MissingContents:
        """Which of ``hashes`` the workspace does not store."""
        stored = await who.recorder.content_depths(body.hashes)
        return fw.MissingContents(
            missing=[h for h in dict.fromkeys(body.hashes) if h not in stored]
        )

    @router.get("/v1/contents/{content_hash:content_hash}")
    async def get_content(
        content_hash: Annotated[str, PathParam(pattern=fw.HASH_PATTERN)], who: Auth
    ) -> fw.ContentChain:
        """A stored content and its bases, as stored (zstd frames, base64)."""
        chain = await who.recorder.content_chain(content_hash)
        if not chain:
            raise Problem(404, "not_found", f"No content {content_hash} is stored")
        return fw.ContentChain(contents=[fw.WireContent.of(c) for c in chain])

    return router
