"""/sources: a place to upload a source tarball before creating a build from it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from kapal.api.deps import CtxDep, UserDep
from kapal.services.sources import create_source, upload_source, uploaded_source

router = APIRouter()


@router.post("/sources", status_code=201)
def post_source(ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    blob = create_source(ctx, user)
    return {"source_blob": {"get_url": blob.get_url, "put_url": blob.put_url}}


# The URL's secret is the credential, as with a signed storage URL: no token needed.
@router.put("/sources/{source_id}/{secret}")
async def put_source(source_id: str, secret: str, request: Request, ctx: CtxDep) -> Response:
    await upload_source(ctx, source_id, secret, request.stream())
    return Response(status_code=200)


@router.get("/sources/{source_id}/{secret}")
async def get_source(source_id: str, secret: str, ctx: CtxDep) -> FileResponse:
    path = await run_in_threadpool(uploaded_source, ctx, source_id, secret)
    return FileResponse(path, media_type="application/gzip")
