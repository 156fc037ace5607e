"""Turn generation events into OpenAI ``text_completion`` objects and SSE chunks."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from openai.types import Completion

from ember.api.errors import sse_error_frame
from ember.api.sse import DONE, data_frame
from ember.core.types import TokenLogprob
from ember.errors import EmberError
from ember.services.generation_types import ChoiceEnd, ContentDelta, PreparedGeneration
from ember.services.text_generation import TextGenerationService

logger = logging.getLogger(__name__)


def _logprobs(items: list[TokenLogprob], offset: int) -> dict[str, Any]:
    offsets, position = [], offset
    for item in items:
        offsets.append(position)
        position += len(item.token)
    return {
        "tokens": [i.token for i in items],
        "token_logprobs": [i.logprob for i in items],
        "top_logprobs": [{t.token: t.logprob for t in i.top} for i in items],
        "text_offset": offsets,
    }


def _finish(reason: str) -> str:
    return "length" if reason == "cancelled" else reason


async def text_completion(
    service: TextGenerationService,
    batch: list[tuple[str, PreparedGeneration]],
    *,
    echo: bool,
) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for prompt, prepared in batch:
        base_index = len(choices)
        texts = [prompt if echo else "" for _ in range(prepared.n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(prepared.n)]
        reasons = ["stop"] * prepared.n
        async for event in service.run(prepared):
            if isinstance(event, ContentDelta):
                texts[event.index] += event.text
                logprobs[event.index].extend(event.logprobs)
            elif isinstance(event, ChoiceEnd):
                reasons[event.index] = _finish(event.finish_reason)
        for i in range(prepared.n):
            choices.append(
                {
                    "index": base_index + i,
                    "text": texts[i],
                    "finish_reason": reasons[i],
                    "logprobs": _logprobs(logprobs[i], len(prompt) if echo else 0)
                    if prepared.params.logprobs
                    else None,
                }
            )
        prompt_tokens += prepared.ctx.usage.prompt_tokens
        completion_tokens += prepared.ctx.usage.completion_tokens
    first = batch[0][1]
    body = {
        "id": "cmpl-" + secrets.token_hex(12),
        "object": "text_completion",
        "created": first.created,
        "model": first.spec.id,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": f"ember-{first.spec.engine}",
    }
    Completion.model_validate(body)
    return body


async def text_completion_stream(
    service: TextGenerationService,
    batch: list[tuple[str, PreparedGeneration]],
    *,
    echo: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    first = batch[0][1]
    base = {
        "id": "cmpl-" + secrets.token_hex(12),
        "object": "text_completion",
        "created": first.created,
        "model": first.spec.id,
        "system_fingerprint": f"ember-{first.spec.engine}",
    }

    def frame(index: int, text: str, reason: str | None, logprobs: Any = None) -> str:
        choice = {"index": index, "text": text, "finish_reason": reason, "logprobs": logprobs}
        return data_frame({**base, "choices": [choice]})

    prompt_tokens = completion_tokens = 0
    offset = 0
    try:
        for prompt, prepared in batch:
            if echo:
                for i in range(prepared.n):
                    yield frame(offset + i, prompt, None)
            async for event in service.run(prepared):
                if isinstance(event, ContentDelta):
                    lp = _logprobs(list(event.logprobs), 0) if prepared.params.logprobs else None
                    yield frame(offset + event.index, event.text, None, lp)
                elif isinstance(event, ChoiceEnd):
                    yield frame(offset + event.index, "", _finish(event.finish_reason))
            offset += prepared.n
            prompt_tokens += prepared.ctx.usage.prompt_tokens
            completion_tokens += prepared.ctx.usage.completion_tokens
        if include_usage:
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            yield data_frame({**base, "choices": [], "usage": usage})
        yield DONE
    except Exception as exc:
        if not isinstance(exc, EmberError):
            logger.exception("completion %s failed while streaming", base["id"])
        yield sse_error_frame(exc)
