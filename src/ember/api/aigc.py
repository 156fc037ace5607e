"""The implicit AIGC label on API responses: the ``ember.aigc`` body object and header."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from ember.core.request_context import RequestContext
from ember.guard.aigc import HEADER, attach, header_value, implicit_label
from ember.settings import Settings


def labelled(
    body: dict[str, Any], settings: Settings, ctx: RequestContext, *more: RequestContext
) -> JSONResponse:
    """A finished generation's JSON response, labelled in the body and the header.

    ``more``: the other generations answered in the same response (a completions request
    with several prompts); the digest covers every one's text, in the order of the choices.
    """
    text = ctx.output_text + "".join(other.output_text for other in more)
    label = implicit_label(settings.aigc_producer, ctx.request_id, text)
    return JSONResponse(attach(body, label), headers={HEADER: header_value(label)})


def stream_headers(base: dict[str, str], settings: Settings, ctx: RequestContext) -> dict[str, str]:
    """Headers of a streamed generation: the label, without the digest of text not yet written."""
    label = implicit_label(settings.aigc_producer, ctx.request_id)
    return {**base, HEADER: header_value(label)}
