"""``/v1/conversations`` (create, retrieve, update, delete) and its ``items``; and
``GET /v1/ember/conversations``, the caller's conversations (OpenAI's API has no list)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ember.api.conversations.protocol import (
    AddItemsRequest,
    CreateConversationRequest,
    UpdateConversationRequest,
    items_of,
)
from ember.api.deps import current_caller, get_services
from ember.core.request_context import Caller
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/conversations", response_model=None)
async def create_conversation(
    body: CreateConversationRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    items = items_of(body.items or [])
    return JSONResponse(services.conversations.create(dict(body.metadata or {}), items, caller=who))


@router.get("/v1/ember/conversations", response_model=None)
async def list_conversations(
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(
        services.conversations.list_conversations(limit=limit, after=after, caller=who)
    )


@router.get("/v1/conversations/{conversation_id}", response_model=None)
async def retrieve_conversation(
    conversation_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.conversations.get(conversation_id, caller=who))


@router.post("/v1/conversations/{conversation_id}", response_model=None)
async def update_conversation(
    conversation_id: str,
    body: UpdateConversationRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(
        services.conversations.update(conversation_id, dict(body.metadata), caller=who)
    )


@router.delete("/v1/conversations/{conversation_id}", response_model=None)
async def delete_conversation(
    conversation_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.conversations.delete(conversation_id, caller=who))


@router.post("/v1/conversations/{conversation_id}/items", response_model=None)
async def add_items(
    conversation_id: str,
    body: AddItemsRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    items = items_of(body.items)
    return JSONResponse(services.conversations.add_items(conversation_id, items, caller=who))


@router.get("/v1/conversations/{conversation_id}/items", response_model=None)
async def list_items(
    conversation_id: str,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    page = services.conversations.list_items(
        conversation_id, limit=limit, order=order, after=after, caller=who
    )
    return JSONResponse(page)


@router.get("/v1/conversations/{conversation_id}/items/{item_id}", response_model=None)
async def retrieve_item(
    conversation_id: str,
    item_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.conversations.item(conversation_id, item_id, caller=who))


@router.delete("/v1/conversations/{conversation_id}/items/{item_id}", response_model=None)
async def delete_item(
    conversation_id: str,
    item_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.conversations.delete_item(conversation_id, item_id, caller=who))
