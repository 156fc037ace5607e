"""``/v1/files``: multipart upload, list, retrieve, content and delete (OpenAI's Files API)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from ember.api.deps import current_caller, get_services
from ember.core.request_context import Caller
from ember.errors import InvalidRequestError
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/files", response_model=None)
async def create_file(
    file: UploadFile = File(...),
    purpose: str = Form(...),
    expires_anchor: str | None = Form(default=None, alias="expires_after[anchor]"),
    expires_seconds: int | None = Form(default=None, alias="expires_after[seconds]"),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    if expires_seconds is not None:
        if expires_anchor not in (None, "created_at"):
            raise InvalidRequestError(
                "expires_after.anchor must be 'created_at'.", param="expires_after.anchor"
            )
        if not 3600 <= expires_seconds <= 2592000:
            raise InvalidRequestError(
                "expires_after.seconds must be between 3600 and 2592000.",
                param="expires_after.seconds",
            )
    data = await file.read()
    record = await asyncio.to_thread(
        services.files.create,
        file.filename or "file",
        purpose,
        data,
        expires_after_seconds=expires_seconds,
        caller=who,
    )
    return JSONResponse(record.to_openai())


@router.get("/v1/files", response_model=None)
async def list_files(
    purpose: str | None = None,
    limit: int = Query(default=10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    records, has_more = services.files.list(
        purpose=purpose, limit=limit, order=order, after=after, caller=who
    )
    data = [record.to_openai() for record in records]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


@router.get("/v1/files/{file_id}", response_model=None)
async def retrieve_file(
    file_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> Any:
    return JSONResponse(services.files.get(file_id, caller=who).to_openai())


@router.get("/v1/files/{file_id}/content", response_model=None)
async def file_content(
    file_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> Response:
    record = services.files.get(file_id, caller=who)
    data = await asyncio.to_thread(services.files.read, file_id, caller=who)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f"attachment; filename*=UTF-8''{_quote(record.filename)}"},
    )


@router.delete("/v1/files/{file_id}", response_model=None)
async def delete_file(
    file_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> Any:
    record = await asyncio.to_thread(services.files.delete, file_id, caller=who)
    return JSONResponse({"id": record.id, "object": "file", "deleted": True})


def _quote(name: str) -> str:
    return quote(name, safe="")
