"""``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}`` and its ``input_items``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ember.api.aigc import labelled, stream_headers
from ember.api.deps import caller, get_services
from ember.api.responses.grounding import (
    file_search_tool,
    grounded_response,
    grounded_response_stream,
    label_headers,
)
from ember.api.responses.protocol import CreateResponseRequest
from ember.api.responses.serving import response_object, response_stream
from ember.api.sse import SSE_HEADERS
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: CreateResponseRequest, raw: Request, services: Services = Depends(get_services)
) -> Any:
    payload = await raw.json()
    tool = file_search_tool(payload)  # the file_search tool: a grounded answer
    if tool is not None:
        if body.stream:
            return StreamingResponse(
                grounded_response_stream(services, payload, tool, caller=caller(raw)),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        grounded = await grounded_response(services, payload, tool, caller=caller(raw))
        return JSONResponse(grounded, headers=label_headers(grounded))
    prepared = await services.responses.prepare(body.to_domain(), caller=caller(raw))
    if body.stream:
        return StreamingResponse(
            response_stream(services.responses, prepared),
            media_type="text/event-stream",
            headers=stream_headers(SSE_HEADERS, services.settings, prepared.generation.ctx),
        )
    answer = await response_object(services.responses, prepared)
    return labelled(answer, services.settings, prepared.generation.ctx)


@router.get("/v1/responses/{response_id}", response_model=None)
async def retrieve_response(response_id: str, services: Services = Depends(get_services)) -> Any:
    return JSONResponse(services.responses.get(response_id))


@router.delete("/v1/responses/{response_id}", response_model=None)
async def delete_response(response_id: str, services: Services = Depends(get_services)) -> Any:
    return JSONResponse(services.responses.delete(response_id))


@router.get("/v1/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: str,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    services: Services = Depends(get_services),
) -> Any:
    page = services.responses.input_items(response_id, limit=limit, order=order, after=after)
    return JSONResponse(page)
