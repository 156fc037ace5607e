"""Turn response events into a ``response`` object or Responses SSE events.

A stream is ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, its content events (``content_part`` and ``output_text``
for a message, ``function_call_arguments`` for a call) and ``response.output_item.done``,
and last ``response.completed`` or ``response.incomplete``. Every frame carries
``event: <type>`` and a ``sequence_number``; a failure after the first byte becomes an
``error`` event and ends the stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ember.api.sse import event_frame
from ember.errors import EmberError
from ember.services.responses import (
    Item,
    ItemAdded,
    ItemDone,
    PreparedResponse,
    ResponseEvent,
    ResponseFinished,
    ResponseService,
    ResponseStarted,
    TextDelta,
    output_text_part,
)

logger = logging.getLogger(__name__)


async def response_object(service: ResponseService, prepared: PreparedResponse) -> Item:
    """Run the whole generation and return the finished ``response`` object."""
    async for event in service.run(prepared):
        if isinstance(event, ResponseFinished):
            return event.response
    raise EmberError("The response ended without being finished.")


def stream_events(event: ResponseEvent) -> list[dict[str, Any]]:
    """The Responses stream events (without sequence numbers) for one service event."""
    if isinstance(event, ResponseStarted):
        return [
            {"type": "response.created", "response": event.response},
            {"type": "response.in_progress", "response": event.response},
        ]
    if isinstance(event, ItemAdded):
        added = {"type": "response.output_item.added", "output_index": event.output_index}
        events: list[dict[str, Any]] = [{**added, "item": event.item}]
        progress = _IN_PROGRESS.get(event.item["type"])
        where = {"item_id": event.item["id"], "output_index": event.output_index}
        if progress is not None:
            events.append({"type": progress, **where})
        if event.item["type"] == "file_search_call":
            events.append({"type": "response.file_search_call.searching", **where})
        if event.item["type"] == "message":
            events.append(
                {
                    "type": "response.content_part.added",
                    "item_id": event.item["id"],
                    "output_index": event.output_index,
                    "content_index": 0,
                    "part": output_text_part(""),
                }
            )
        return events
    if isinstance(event, TextDelta):
        return [
            {
                "type": "response.output_text.delta",
                "item_id": event.item_id,
                "output_index": event.output_index,
                "content_index": 0,
                "delta": event.text,
                "logprobs": [],
            }
        ]
    if isinstance(event, ItemDone):
        return [*_item_content_done(event), _item_done(event)]
    status = event.response["status"]
    kind = "response.completed" if status == "completed" else f"response.{status}"
    return [{"type": kind, "response": event.response}]


# The event that says a server-side item started, by item type.
_IN_PROGRESS = {
    "mcp_call": "response.mcp_call.in_progress",
    "mcp_list_tools": "response.mcp_list_tools.in_progress",
    "file_search_call": "response.file_search_call.in_progress",
}


def _item_content_done(event: ItemDone) -> list[dict[str, Any]]:
    item = event.item
    where = {"item_id": item["id"], "output_index": event.output_index}
    kind = item["type"]
    if kind == "mcp_call":
        failed = item.get("error") is not None
        return [
            {"type": "response.mcp_call_arguments.delta", **where, "delta": item["arguments"]},
            {"type": "response.mcp_call_arguments.done", **where, "arguments": item["arguments"]},
            {"type": f"response.mcp_call.{'failed' if failed else 'completed'}", **where},
        ]
    if kind == "mcp_list_tools":
        failed = item.get("error") is not None
        return [{"type": f"response.mcp_list_tools.{'failed' if failed else 'completed'}", **where}]
    if kind == "file_search_call":
        return [{"type": "response.file_search_call.completed", **where}]
    if kind == "mcp_approval_request":
        return []
    if item["type"] == "function_call":
        return [
            {
                "type": "response.function_call_arguments.delta",
                **where,
                "delta": item["arguments"],
            },
            {
                "type": "response.function_call_arguments.done",
                **where,
                "name": item["name"],
                "arguments": item["arguments"],
            },
        ]
    events: list[dict[str, Any]] = []
    for index, part in enumerate(item["content"]):
        events.append(
            {
                "type": "response.output_text.done",
                **where,
                "content_index": index,
                "text": part["text"],
                "logprobs": [],
            }
        )
        events.append(
            {"type": "response.content_part.done", **where, "content_index": index, "part": part}
        )
    return events


def _item_done(event: ItemDone) -> dict[str, Any]:
    return {
        "type": "response.output_item.done",
        "output_index": event.output_index,
        "item": event.item,
    }


def error_event(exc: BaseException) -> dict[str, Any]:
    """The ``error`` stream event: the SSE twin of ``ember.api.errors.error_response``."""
    ember = exc if isinstance(exc, EmberError) else EmberError("The server failed while streaming.")
    error = ember.to_dict()
    return {
        "type": "error",
        "code": error["code"],
        "message": error["message"],
        "param": error["param"],
    }


async def response_stream(
    service: ResponseService, prepared: PreparedResponse
) -> AsyncIterator[str]:
    """SSE frames for one response, ending with its final event or an ``error`` event."""
    sequence = 0
    try:
        async for event in service.run(prepared):
            for payload in stream_events(event):
                yield event_frame(payload, sequence)
                sequence += 1
    except Exception as exc:
        if not isinstance(exc, EmberError):
            logger.exception("response %s failed while streaming", prepared.id)
        yield event_frame(error_event(exc), sequence)
