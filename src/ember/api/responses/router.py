"""``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}`` and its ``input_items``; and
``GET /v1/ember/mcp_servers``, the MCP servers its ``mcp`` tools may name."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ember.api.aigc import labelled, stream_headers
from ember.api.deps import caller, current_caller, get_services
from ember.api.responses.grounding import grounded_response, grounded_response_stream
from ember.api.responses.protocol import CreateResponseRequest
from ember.api.responses.serving import response_object, response_stream
from ember.api.sse import event_stream
from ember.core.request_context import Caller
from ember.guard.aigc import HEADER
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: CreateResponseRequest, raw: Request, services: Services = Depends(get_services)
) -> Any:
    tool = body.file_search()  # the file_search tool: a grounded answer
    if tool is not None:
        if body.stream:
            body.question()  # bad input is a 400 before the stream starts
            return event_stream(grounded_response_stream(services, body, tool, caller=caller(raw)))
        grounded, label = await grounded_response(services, body, tool, caller=caller(raw))
        return JSONResponse(grounded, headers={HEADER: label})
    prepared = await services.responses.prepare(body.to_domain(), caller=caller(raw))
    if body.background:
        return JSONResponse(services.background.start(prepared))
    if body.stream:
        await services.text.admit(prepared.generation)  # a full queue: 503 before the first byte
        return event_stream(
            response_stream(services.responses, prepared),
            stream_headers(services.settings, prepared.generation.ctx),
        )
    answer = await response_object(services.responses, prepared)
    return labelled(answer, services.settings, prepared.generation.ctx)


@router.get("/v1/responses/{response_id}", response_model=None)
async def retrieve_response(
    response_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.responses.get(response_id, caller=who))


@router.delete("/v1/responses/{response_id}", response_model=None)
async def delete_response(
    response_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.responses.delete(response_id, caller=who))


@router.post("/v1/responses/{response_id}/cancel", response_model=None)
async def cancel_response(
    response_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(await services.background.cancel(response_id, caller=who))


@router.get("/v1/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: str,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    page = services.responses.input_items(
        response_id, limit=limit, order=order, after=after, caller=who
    )
    return JSONResponse(page)


@router.get("/v1/ember/mcp_servers", response_model=None)
async def list_mcp_servers(services: Services = Depends(get_services)) -> Any:
    """The ``[mcp.LABEL]`` servers an ``mcp`` tool may name: what each says of itself, never
    its command, URL, headers or environment (those may hold secrets)."""
    data = [
        {
            "object": "ember.mcp_server",
            "server_label": label,
            "description": config.description,
            "transport": "stdio" if config.command else "streamable_http",
            "location": config.location,
            "trusted": config.trusted,
        }
        for label, config in sorted(services.settings.mcp.items())
    ]
    return JSONResponse({"object": "list", "data": data})
