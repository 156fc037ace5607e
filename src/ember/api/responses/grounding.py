"""``file_search`` in ``/v1/responses``: a grounded answer on the wire.

``tools: [{"type": "file_search", "vector_store_ids": [...]}]`` answers with a
``file_search_call`` item and a message whose ``output_text`` carries ``file_citation``
annotations, as OpenAI does, plus a top-level ``ember`` object (``abstained``,
``groundedness``, ``citations``, ...). ``"ember": {"mode": "extractive"}`` answers by quoting
the sources only. The chat twin is :mod:`ember.api.chat.grounded`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.responses import Response

from ember.api.aigc import label_grounded
from ember.api.ember_extension import EmberOptions, FileSearchTool
from ember.api.responses.protocol import CreateResponseRequest
from ember.api.responses.serving import error_event
from ember.api.sse import event_frame
from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import EmberError
from ember.ground.answer import GroundedAnswer
from ember.services.container import Services
from ember.services.responses import message_item, new_id
from ember.store.database import StoredResponse

logger = logging.getLogger(__name__)


def _usage(answer: GroundedAnswer) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _settings_fields(request: CreateResponseRequest, tool: FileSearchTool) -> dict[str, Any]:
    """The request settings a file_search ``response`` object echoes, in progress or done."""
    return {
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 0.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [tool.echo()],
        "truncation": "disabled",
        "store": request.store is not False,
        "metadata": request.metadata or {},
    }


def _results(answer: GroundedAnswer) -> list[dict[str, Any]]:
    """``file_search_call.results``: the passages the answer was drawn from."""
    return [
        {
            "file_id": hit.file_id,
            "filename": hit.filename,
            "score": round(hit.score, 6),
            "text": hit.text,
            "attributes": hit.attributes,
        }
        for hit in answer.sources
    ]


async def grounded_response(
    services: Services,
    request: CreateResponseRequest,
    tool: FileSearchTool,
    *,
    response_id: str | None = None,
    created_at: int | None = None,
    caller: Caller = ANONYMOUS,
) -> tuple[dict[str, Any], str]:
    """The finished ``response`` object of a file_search request and its AIGC label header;
    stored (so GET /v1/responses/{id} and its input_items work) unless ``store: false``."""
    question = request.question()
    options = request.ember or EmberOptions()
    created_at = created_at or int(time.time())
    answer = await services.grounding.answer(
        question,
        tool.vector_store_ids,
        model=request.model or "default",
        mode=options.mode,
        max_results=tool.max_num_results,
        filters=tool.filters,
        max_tokens=request.max_output_tokens,
        caller=caller,
        self_check=options.self_check,
    )
    annotations = [
        {"type": "file_citation", "index": offset, "file_id": c.file_id, "filename": c.filename}
        for offset, c in answer.citation_offsets
    ]
    body: dict[str, Any] = {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": created_at,
        "completed_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": answer.model or request.model,
        "output": [
            {
                "id": new_id("fs"),
                "type": "file_search_call",
                "status": "completed",
                "queries": [question],
                "results": _results(answer)
                if "file_search_call.results" in (request.include or [])
                else None,
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
        **_settings_fields(request, tool),
        "background": False,
        "user": request.user,
        "usage": _usage(answer),
        "ember": answer.ember(),
    }
    Response.model_validate(body)
    label = label_grounded(body, services.settings, answer)
    if request.store is not False:
        services.store.save_response(
            StoredResponse(
                id=body["id"],
                model=body["model"],
                created_at=created_at,
                previous_response_id=None,
                conversation=[message_item("user", [question])],
                response=body,
                owner=caller.owner,
            )
        )
    return body, label


async def grounded_response_stream(
    services: Services,
    request: CreateResponseRequest,
    tool: FileSearchTool,
    *,
    caller: Caller = ANONYMOUS,
) -> AsyncIterator[str]:
    """A file_search response as Responses stream events.

    The search is announced at once (``response.created``, the ``file_search_call`` item and
    its ``in_progress`` and ``searching`` events); the answer follows when every sentence has
    been checked against its sources, as one ``output_text`` delta with its
    ``file_citation`` annotations, then ``response.completed``. A failure after the first
    event is an ``error`` event. Call :meth:`CreateResponseRequest.question` first: bad
    input is a 400 before the stream starts."""
    question = request.question()
    response_id, created_at = new_id("resp"), int(time.time())
    call_id = new_id("fs")
    skeleton = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": request.model,
        "output": [],
        **_settings_fields(request, tool),
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
        yield event_frame(event, sequence)
        sequence += 1
    try:
        body, _label = await grounded_response(
            services, request, tool, response_id=response_id, created_at=created_at, caller=caller
        )
    except Exception as exc:
        if not isinstance(exc, EmberError):
            logger.exception("grounded response %s failed while streaming", response_id)
        yield event_frame(error_event(exc), sequence)
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
        yield event_frame(event, sequence)
        sequence += 1
