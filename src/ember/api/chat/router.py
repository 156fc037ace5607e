"""``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ember.api.aigc import labelled, stream_headers
from ember.api.chat.grounded import grounded_chat_completion, grounded_chat_completion_stream
from ember.api.chat.protocol import ChatCompletionRequest
from ember.api.chat.serving import chat_completion, chat_completion_stream
from ember.api.deps import caller, get_services, route_headers
from ember.api.sse import event_stream
from ember.guard.aigc import HEADER
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, raw: Request, services: Services = Depends(get_services)
) -> Any:
    request = body.to_domain()
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    store_ids = body.grounding_store_ids()  # ember.vector_store_ids: a grounded answer
    if store_ids is not None:
        question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        answer, label = await grounded_chat_completion(
            services, body, store_ids, question or "", caller=caller(raw)
        )
        if body.stream:
            return event_stream(
                grounded_chat_completion_stream(answer, include_usage=include_usage),
                {HEADER: label},
            )
        return JSONResponse(answer, headers={HEADER: label})
    who = caller(raw, cache_opt_in=bool(body.ember and body.ember.cache))
    prepared = await services.text.prepare_chat(request, endpoint="chat.completions", caller=who)
    headers = route_headers(prepared.ctx)
    if body.stream:
        await services.text.admit(prepared)  # a full queue is a 503 before the first byte
        return event_stream(
            chat_completion_stream(services.text, prepared, include_usage=include_usage),
            {**stream_headers(services.settings, prepared.ctx), **headers},
        )
    answer = await chat_completion(services.text, prepared)
    response = labelled(answer, services.settings, prepared.ctx)
    response.headers.update(headers)
    return response
