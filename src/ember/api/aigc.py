"""The implicit AIGC label on API responses: the ``ember.aigc`` body object and header."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from ember.core.request_context import RequestContext
from ember.ground.answer import GroundedAnswer
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


def stream_headers(settings: Settings, ctx: RequestContext) -> dict[str, str]:
    """Headers of a streamed generation: the label, without the digest of text not yet written."""
    label = implicit_label(settings.aigc_producer, ctx.request_id)
    return {HEADER: header_value(label)}


def label_grounded(body: dict[str, Any], settings: Settings, answer: GroundedAnswer) -> str:
    """Label a grounded answer's body in place; returns the ``x-ember-aigc`` header value.

    ProduceID is the generation's request id (its audit record), or the response's id when
    nothing was generated (an abstention or an extractive answer)."""
    label = implicit_label(settings.aigc_producer, answer.request_id or body["id"], answer.text)
    attach(body, label)
    return header_value(label)
