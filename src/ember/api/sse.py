"""Server-sent events: how every streaming endpoint frames what it sends.

Chat and text completions send ``data: <chunk>`` frames ending with ``data: [DONE]``
(:func:`data_frame`, :data:`DONE`); the Responses API sends typed events, each
``event: <type>`` with a ``sequence_number`` (:func:`event_frame`). Every stream goes out
through :func:`event_stream`, with the same headers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = "data: [DONE]\n\n"


def data_frame(payload: Mapping[str, Any]) -> str:
    """One ``data:`` frame (a chunk, or an error after the stream started)."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def event_frame(payload: Mapping[str, Any], sequence_number: int) -> str:
    """One typed Responses event: ``event: <type>`` and its data, numbered."""
    numbered = {**payload, "sequence_number": sequence_number}
    return f"event: {numbered['type']}\ndata: {json.dumps(numbered, ensure_ascii=False)}\n\n"


def event_stream(
    frames: AsyncIterator[str], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """The HTTP response that sends ``frames`` as they come (``headers`` added to the
    stream's own)."""
    return StreamingResponse(
        frames, media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )
