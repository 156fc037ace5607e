"""``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ember.api.aigc import labelled, stream_headers
from ember.api.chat.protocol import ChatCompletionRequest
from ember.api.chat.serving import chat_completion, chat_completion_stream
from ember.api.deps import caller, get_services, route_headers
from ember.api.responses.grounding import (
    chat_store_ids,
    grounded_chat_completion,
    grounded_chat_completion_stream,
    label_headers,
)
from ember.api.sse import SSE_HEADERS
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, raw: Request, services: Services = Depends(get_services)
) -> Any:
    request = body.to_domain()
    store_ids = chat_store_ids(await raw.json())  # ember.vector_store_ids: a grounded answer
    if store_ids is not None:
        question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        answer = await grounded_chat_completion(
            services, await raw.json(), store_ids, question or "", caller=caller(raw)
        )
        if body.stream:
            return StreamingResponse(
                grounded_chat_completion_stream(
                    answer,
                    include_usage=bool(body.stream_options and body.stream_options.include_usage),
                ),
                media_type="text/event-stream",
                headers=label_headers(answer, SSE_HEADERS),
            )
        return JSONResponse(answer, headers=label_headers(answer))
    who = caller(raw, cache_opt_in=bool(body.ember and body.ember.get("cache")))
    prepared = await services.text.prepare_chat(request, endpoint="chat.completions", caller=who)
    headers = route_headers(prepared.ctx)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            chat_completion_stream(services.text, prepared, include_usage=include_usage),
            media_type="text/event-stream",
            headers={**stream_headers(SSE_HEADERS, services.settings, prepared.ctx), **headers},
        )
    answer = await chat_completion(services.text, prepared)
    response = labelled(answer, services.settings, prepared.ctx)
    response.headers.update(headers)
    return response
