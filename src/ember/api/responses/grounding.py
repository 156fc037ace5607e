"""Grounded answers on the wire: ``file_search`` in ``/v1/responses``, and the chat extension.

* ``/v1/responses`` with ``tools: [{"type": "file_search", "vector_store_ids": [...]}]``
  answers with a ``file_search_call`` item and a message whose ``output_text`` carries
  ``file_citation`` annotations, as OpenAI does.
* ``/v1/chat/completions`` with ``extra_body={"ember": {"vector_store_ids": [...]}}``
  answers a normal chat completion from those stores.

Both add a top-level ``ember`` object (``abstained``, ``groundedness``, ``citations``, ...).
``"ember": {"mode": "extractive"}`` answers by quoting the sources only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from ember.api.responses.serving import error_event
from ember.api.responses.serving import frame as _response_frame
from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import EmberError, InvalidRequestError, UnsupportedParameterError
from ember.ground import filters as attribute_filters
from ember.ground.answer import GroundedAnswer
from ember.guard.aigc import HEADER, attach, header_value, implicit_label
from ember.services.container import Services
from ember.services.responses import message_item, new_id
from ember.store.database import StoredResponse

logger = logging.getLogger(__name__)


def _ember_options(raw: dict[str, Any]) -> dict[str, Any]:
    options = raw.get("ember")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidRequestError("ember must be an object.", param="ember")
    mode = options.get("mode", "generative")
    if mode not in ("generative", "extractive"):
        raise InvalidRequestError(
            "ember.mode must be 'generative' or 'extractive'.", param="ember.mode"
        )
    if options.get("self_check") is not None and not isinstance(options["self_check"], bool):
        raise InvalidRequestError("ember.self_check must be a boolean.", param="ember.self_check")
    return options


def _store_ids(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"{param} must be a non-empty list of ids.", param=param)
    return value


def file_search_tool(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The request's ``file_search`` tool, validated, or None."""
    tools = raw.get("tools") or []
    found = [t for t in tools if isinstance(t, dict) and t.get("type") == "file_search"]
    if not found:
        return None
    if len(found) != len(tools):
        raise UnsupportedParameterError(
            "file_search cannot be combined with other tools yet.", param="tools"
        )
    tool = found[0]
    index = tools.index(tool)
    _store_ids(tool.get("vector_store_ids"), f"tools[{index}].vector_store_ids")
    if tool.get("filters") is not None:
        attribute_filters.validate(tool["filters"], f"tools[{index}].filters")
    limit = tool.get("max_num_results")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= 50):
        raise InvalidRequestError(
            "max_num_results must be from 1 to 50.", param=f"tools[{index}].max_num_results"
        )
    return tool


def _question(raw_input: Any) -> str:
    """The last user message's text of a Responses ``input``."""
    if isinstance(raw_input, str):
        return raw_input
    for item in reversed(raw_input or []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            texts = [p.get("text", "") for p in content or [] if isinstance(p, dict)]
            return "\n".join(t for t in texts if t)
    raise InvalidRequestError("file_search needs a user message in input.", param="input")


def _usage_responses(answer: GroundedAnswer) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _settings_fields(raw: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    """The request settings a file_search ``response`` object echoes, in progress or done."""
    return {
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 0.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [tool],
        "truncation": "disabled",
        "store": raw.get("store") is not False,
        "metadata": raw.get("metadata") or {},
    }


def _checked_question(raw: dict[str, Any]) -> str:
    question = _question(raw.get("input"))
    if not question.strip():
        raise InvalidRequestError("The question is empty.", param="input")
    _ember_options(raw)
    return question


async def grounded_response(
    services: Services,
    raw: dict[str, Any],
    tool: dict[str, Any],
    *,
    response_id: str | None = None,
    created_at: int | None = None,
    caller: Caller = ANONYMOUS,
) -> dict[str, Any]:
    """The finished ``response`` object of a file_search request; stored (so GET
    /v1/responses/{id} and its input_items work) unless the request says ``store: false``."""
    question = _checked_question(raw)
    options = _ember_options(raw)
    created_at = created_at or int(time.time())
    answer = await services.grounding.answer(
        question,
        tool["vector_store_ids"],
        model=raw.get("model") or "default",
        mode=options.get("mode", "generative"),
        max_results=tool.get("max_num_results"),
        filters=tool.get("filters"),
        max_tokens=raw.get("max_output_tokens"),
        caller=caller,
        self_check=options.get("self_check"),
    )
    include = raw.get("include") or []
    results = None
    if "file_search_call.results" in include:
        results = [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": round(hit.score, 6),
                "text": hit.text,
                "attributes": hit.attributes,
            }
            for hit in answer.sources
        ]
    annotations = [
        {"type": "file_citation", "index": offset, "file_id": c.file_id, "filename": c.filename}
        for offset, c in answer.citation_offsets
    ]
    store = raw.get("store") is not False
    body: dict[str, Any] = {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": created_at,
        "completed_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": raw.get("instructions"),
        "max_output_tokens": raw.get("max_output_tokens"),
        "model": answer.model or raw.get("model"),
        "output": [
            {
                "id": new_id("fs"),
                "type": "file_search_call",
                "status": "completed",
                "queries": [question],
                "results": results,
            },
            {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": answer.text,
                        "annotations": annotations,
                        "logprobs": [],
                    }
                ],
            },
        ],
        **_settings_fields(raw, tool),
        "background": False,
        "user": raw.get("user"),
        "usage": _usage_responses(answer),
        "ember": answer.ember(),
    }
    Response.model_validate(body)
    _label(services, body, answer)
    if store:
        services.store.save_response(
            StoredResponse(
                id=body["id"],
                model=body["model"],
                created_at=created_at,
                previous_response_id=None,
                conversation=[message_item("user", [question])],
                response=body,
            )
        )
    return body


async def grounded_response_stream(
    services: Services, raw: dict[str, Any], tool: dict[str, Any], *, caller: Caller = ANONYMOUS
) -> AsyncIterator[str]:
    """A file_search response as Responses stream events.

    The search is announced at once (``response.created``, the ``file_search_call`` item and
    its ``in_progress`` and ``searching`` events); the answer follows when every sentence has
    been checked against its sources, as one ``output_text`` delta with its
    ``file_citation`` annotations, then ``response.completed``. A failure after the first
    event is an ``error`` event."""
    question = _checked_question(raw)  # bad input is a 400 before the stream starts
    response_id, created_at = new_id("resp"), int(time.time())
    call_id = new_id("fs")
    skeleton = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": raw.get("instructions"),
        "max_output_tokens": raw.get("max_output_tokens"),
        "model": raw.get("model"),
        "output": [],
        **_settings_fields(raw, tool),
    }
    searching = {
        "id": call_id,
        "type": "file_search_call",
        "status": "in_progress",
        "queries": [question],
        "results": None,
    }
    call = {"output_index": 0, "item_id": call_id}
    head: list[dict[str, Any]] = [
        {"type": "response.created", "response": skeleton},
        {"type": "response.in_progress", "response": skeleton},
        {"type": "response.output_item.added", "output_index": 0, "item": searching},
        {"type": "response.file_search_call.in_progress", **call},
        {"type": "response.file_search_call.searching", **call},
    ]
    sequence = 0
    for event in head:
        yield _response_frame(event, sequence)
        sequence += 1
    try:
        body = await grounded_response(
            services, raw, tool, response_id=response_id, created_at=created_at, caller=caller
        )
    except Exception as exc:
        if not isinstance(exc, EmberError):
            logger.exception("grounded response %s failed while streaming", response_id)
        yield _response_frame(error_event(exc), sequence)
        return
    found, message = body["output"]
    found["id"] = call_id
    part = message["content"][0]
    where = {"item_id": message["id"], "output_index": 1, "content_index": 0}
    in_progress = {**message, "status": "in_progress", "content": []}
    empty = {**part, "text": "", "annotations": []}
    tail: list[dict[str, Any]] = [
        {"type": "response.file_search_call.completed", **call},
        {"type": "response.output_item.done", "output_index": 0, "item": found},
        {"type": "response.output_item.added", "output_index": 1, "item": in_progress},
        {"type": "response.content_part.added", **where, "part": empty},
        {"type": "response.output_text.delta", **where, "delta": part["text"], "logprobs": []},
        *(
            {
                "type": "response.output_text.annotation.added",
                **where,
                "annotation_index": index,
                "annotation": annotation,
            }
            for index, annotation in enumerate(part["annotations"])
        ),
        {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {"type": "response.completed", "response": body},
    ]
    for event in tail:
        yield _response_frame(event, sequence)
        sequence += 1


def chat_store_ids(raw: dict[str, Any]) -> list[str] | None:
    """``ember.vector_store_ids`` of a chat request, or None when it is not grounded."""
    options = _ember_options(raw)
    if "vector_store_ids" not in options:
        return None
    ids = _store_ids(options["vector_store_ids"], "ember.vector_store_ids")
    limit = options.get("max_num_results")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= 50):
        raise InvalidRequestError(
            "ember.max_num_results must be from 1 to 50.", param="ember.max_num_results"
        )
    if options.get("filters") is not None:
        attribute_filters.validate(options["filters"], "ember.filters")
    if raw.get("tools"):
        raise UnsupportedParameterError(
            "Tools cannot be combined with ember.vector_store_ids.", param="tools"
        )
    return ids


async def grounded_chat_completion(
    services: Services,
    raw: dict[str, Any],
    store_ids: list[str],
    question: str,
    *,
    caller: Caller = ANONYMOUS,
) -> dict[str, Any]:
    if not question.strip():
        raise InvalidRequestError("The last user message is empty.", param="messages")
    options = _ember_options(raw)
    answer = await services.grounding.answer(
        question,
        store_ids,
        model=raw.get("model") or "default",
        mode=options.get("mode", "generative"),
        max_results=options.get("max_num_results"),
        filters=options.get("filters"),
        max_tokens=raw.get("max_completion_tokens") or raw.get("max_tokens"),
        self_check=options.get("self_check"),
        caller=caller,
    )
    body: dict[str, Any] = {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model or raw.get("model"),
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
    return _label(services, body, answer)


def _label(services: Services, body: dict[str, Any], answer: GroundedAnswer) -> dict[str, Any]:
    """The implicit AIGC label (``ember.aigc``) of a grounded answer: ProduceID is the
    generation's request id (its audit record), or the response's id when nothing was
    generated (an abstention or an extractive answer)."""
    label = implicit_label(
        services.settings.aigc_producer, answer.request_id or body["id"], answer.text
    )
    return attach(body, label)


def label_headers(body: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` plus the ``x-ember-aigc`` header of a labelled grounded answer."""
    return {**(base or {}), HEADER: header_value(body["ember"]["aigc"])}


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
        yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
