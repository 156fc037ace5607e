"""``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from ember.api.aigc import labelled, stream_headers
from ember.api.chat.protocol import ChatCompletionRequest
from ember.api.chat.serving import chat_completion, chat_completion_stream
from ember.api.deps import get_services
from ember.api.sse import SSE_HEADERS
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, services: Services = Depends(get_services)
) -> Any:
    request = body.to_domain()
    prepared = await services.text.prepare_chat(request, endpoint="chat.completions")
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            chat_completion_stream(services.text, prepared, include_usage=include_usage),
            media_type="text/event-stream",
            headers=stream_headers(SSE_HEADERS, services.settings, prepared.ctx),
        )
    answer = await chat_completion(services.text, prepared)
    return labelled(answer, services.settings, prepared.ctx)
