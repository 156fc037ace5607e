"""``POST /v1/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ember.api.aigc import labelled, stream_headers
from ember.api.completions.protocol import CompletionRequest
from ember.api.completions.serving import text_completion, text_completion_stream
from ember.api.deps import caller, get_services, route_headers
from ember.api.sse import event_stream
from ember.services.container import Services

router = APIRouter()


@router.post("/v1/completions", response_model=None)
async def create_completion(
    body: CompletionRequest, raw: Request, services: Services = Depends(get_services)
) -> Any:
    params = body.sampling_params(
        max_tokens=body.max_tokens if body.max_tokens is not None else 16,
        logprobs=body.logprobs is not None,
        top_logprobs=body.logprobs or 0,
    )
    batch = []
    for prompt in body.prompts():
        prepared = await services.text.prepare_completion(
            body.model,
            prompt,
            params,
            n=body.n or 1,
            stream=bool(body.stream),
            caller=caller(raw),
        )
        batch.append((prompt, prepared))
    echo = bool(body.echo)
    if body.stream:
        await services.text.admit(batch[0][1])  # a full queue is a 503 before the first byte
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return event_stream(
            text_completion_stream(services.text, batch, echo=echo, include_usage=include_usage),
            {
                **stream_headers(services.settings, batch[0][1].ctx),
                **route_headers(batch[0][1].ctx),
            },
        )
    answer = await text_completion(services.text, batch, echo=echo)
    contexts = [prepared.ctx for _, prepared in batch]
    response = labelled(answer, services.settings, *contexts)
    response.headers.update(route_headers(batch[0][1].ctx))
    return response
