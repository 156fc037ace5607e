"""Turn chat events into OpenAI chat completion objects and SSE chunks."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ember.api.errors import sse_error_frame
from ember.api.sse import DONE, data_frame
from ember.core.types import TokenLogprob, ToolCall
from ember.errors import EmberError
from ember.services.generation_types import (
    ChoiceEnd,
    ContentDelta,
    PreparedGeneration,
    ToolCallDelta,
)
from ember.services.text_generation import TextGenerationService

logger = logging.getLogger(__name__)


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def logprob_dict(item: TokenLogprob) -> dict[str, Any]:
    return {
        "token": item.token,
        "logprob": item.logprob,
        "bytes": list(item.bytes),
        "top_logprobs": [
            {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in item.top
        ],
    }


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def usage_dict(prepared: PreparedGeneration) -> dict[str, int]:
    usage = prepared.ctx.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


async def chat_completion(
    service: TextGenerationService, prepared: PreparedGeneration
) -> dict[str, Any]:
    """Run the whole generation and return a ``chat.completion`` object."""
    want_logprobs = prepared.params.logprobs
    choices: list[dict[str, Any]] = [
        {
            "index": i,
            "message": {"role": "assistant", "content": "", "refusal": None},
            "finish_reason": "stop",
            "logprobs": {"content": [], "refusal": None} if want_logprobs else None,
        }
        for i in range(prepared.n)
    ]
    calls: list[list[ToolCall]] = [[] for _ in range(prepared.n)]
    async for event in service.run(prepared):
        choice = choices[event.index]
        if isinstance(event, ContentDelta):
            choice["message"]["content"] += event.text
            if want_logprobs:
                choice["logprobs"]["content"].extend(logprob_dict(lp) for lp in event.logprobs)
        elif isinstance(event, ToolCallDelta):
            calls[event.index].append(event.call)
        elif isinstance(event, ChoiceEnd):
            choice["finish_reason"] = (
                "length" if event.finish_reason == "cancelled" else event.finish_reason
            )
    for choice, made in zip(choices, calls, strict=True):
        if made:
            choice["message"]["tool_calls"] = [tool_call_dict(c) for c in made]
            if not choice["message"]["content"].strip():
                choice["message"]["content"] = None
    body = {
        "id": completion_id(),
        "object": "chat.completion",
        "created": prepared.created,
        "model": prepared.spec.id,
        "choices": choices,
        "usage": usage_dict(prepared),
        "system_fingerprint": f"ember-{prepared.spec.engine}",
    }
    ChatCompletion.model_validate(body)  # the response must be what the SDK expects
    return body


async def chat_completion_stream(
    service: TextGenerationService, prepared: PreparedGeneration, *, include_usage: bool
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` SSE frames, then ``[DONE]``."""
    base = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": prepared.created,
        "model": prepared.spec.id,
        "system_fingerprint": f"ember-{prepared.spec.engine}",
    }

    def chunk(index: int, delta: dict[str, Any], **extra: Any) -> str:
        payload = {
            **base,
            "choices": [{"index": index, "delta": delta, "finish_reason": None, **extra}],
        }
        if include_usage:
            payload["usage"] = None
        return data_frame(payload)

    started: set[int] = set()
    try:
        async for event in service.run(prepared):
            if event.index not in started:
                started.add(event.index)
                yield chunk(event.index, {"role": "assistant", "content": ""})
            if isinstance(event, ContentDelta):
                extra: dict[str, Any] = {}
                if prepared.params.logprobs:
                    extra["logprobs"] = {
                        "content": [logprob_dict(lp) for lp in event.logprobs],
                        "refusal": None,
                    }
                yield chunk(event.index, {"content": event.text}, **extra)
            elif isinstance(event, ToolCallDelta):
                call = event.call
                yield chunk(
                    event.index,
                    {
                        "tool_calls": [
                            {
                                "index": event.position,
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    },
                )
                yield chunk(
                    event.index,
                    {
                        "tool_calls": [
                            {"index": event.position, "function": {"arguments": call.arguments}}
                        ]
                    },
                )
            elif isinstance(event, ChoiceEnd):
                reason = "length" if event.finish_reason == "cancelled" else event.finish_reason
                payload = {
                    **base,
                    "choices": [{"index": event.index, "delta": {}, "finish_reason": reason}],
                }
                if include_usage:
                    payload["usage"] = None
                ChatCompletionChunk.model_validate(payload)
                yield data_frame(payload)
        if include_usage:
            yield data_frame({**base, "choices": [], "usage": usage_dict(prepared)})
        yield DONE
    except Exception as exc:
        if not isinstance(exc, EmberError):
            logger.exception("chat completion %s failed while streaming", base["id"])
        yield sse_error_frame(exc)
