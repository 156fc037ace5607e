"""A grounded chat completion: ``extra_body={"ember": {"vector_store_ids": [...]}}``.

The answer is a normal ``chat.completion`` (or its chunks) drawn from those vector stores,
checked sentence by sentence against its sources, with a top-level ``ember`` object
(``abstained``, ``groundedness``, ``citations``, ...). The Responses twin is
:mod:`ember.api.responses.grounding`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ember.api.aigc import label_grounded
from ember.api.chat.protocol import ChatCompletionRequest
from ember.api.ember_extension import EmberOptions
from ember.api.sse import DONE, data_frame
from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import InvalidRequestError
from ember.services.container import Services
from ember.services.responses import new_id


async def grounded_chat_completion(
    services: Services,
    request: ChatCompletionRequest,
    store_ids: list[str],
    question: str,
    *,
    caller: Caller = ANONYMOUS,
) -> tuple[dict[str, Any], str]:
    """The ``chat.completion`` answering ``question`` (the last user message) from
    ``store_ids``, and its AIGC label header."""
    if not question.strip():
        raise InvalidRequestError("The last user message is empty.", param="messages")
    options = request.ember or EmberOptions()
    answer = await services.grounding.answer(
        question,
        store_ids,
        model=request.model or "default",
        mode=options.mode,
        max_results=options.max_num_results,
        filters=options.filters,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        self_check=options.self_check,
        caller=caller,
    )
    body: dict[str, Any] = {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model or request.model,
        "system_fingerprint": "ember-grounded",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
        "ember": answer.ember(),
    }
    ChatCompletion.model_validate(body)
    return body, label_grounded(body, services.settings, answer)


async def grounded_chat_completion_stream(
    body: dict[str, Any], *, include_usage: bool
) -> AsyncIterator[str]:
    """A finished grounded chat completion as ``chat.completion.chunk`` events.

    Every sentence is checked against its sources before anything is sent (an unsupported
    sentence is removed, or the whole answer abstains), so the checked answer arrives as one
    content chunk; the last chunk carries ``finish_reason`` and the ``ember`` object."""
    head = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body["model"],
        "system_fingerprint": body["system_fingerprint"],
    }
    content = body["choices"][0]["message"]["content"]
    chunks: list[dict[str, Any]] = [
        {**head, "choices": [_delta({"role": "assistant", "content": ""})]},
        {**head, "choices": [_delta({"content": content})]},
        {**head, "choices": [_delta({}, finish_reason="stop")], "ember": body["ember"]},
    ]
    if include_usage:
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        yield data_frame(chunk)
    yield DONE


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
