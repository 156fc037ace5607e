"""``POST /v1/ember/guard/analyze`` and ``/redact``: PII spans in a text, and the text
with them replaced; ``GET /v1/ember/files/{file_id}/pii``: the PII in an uploaded file. The
analyzer is the app's own (``Services.analyzer``), the one the request pipeline uses.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field

from ember.api.deps import current_caller, get_services
from ember.api.wire import WireModel
from ember.core.request_context import Caller
from ember.guard.analyzer import Analyzer
from ember.guard.vault import Operator, apply_operator
from ember.services.container import Services
from ember.services.document_pii import file_pii

router = APIRouter()


class AnalyzeRequest(WireModel):
    """The body of ``POST /v1/ember/guard/analyze``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The text to scan.")
    language: Literal["zh", "en", "auto"] = Field(
        default="auto", description="Language of the text; `auto` judges by its CJK share."
    )
    entities: list[str] | None = Field(
        default=None, description="Entity types to look for (e.g. `PHONE`); all when omitted."
    )


def get_analyzer(services: Services = Depends(get_services)) -> Analyzer:
    return services.analyzer


class RedactRequest(AnalyzeRequest):
    """The body of ``POST /v1/ember/guard/redact``."""

    operator: Operator = Field(
        default="replace",
        description="`replace` with typed placeholders (`<PHONE_1>`), `mask` all but the last "
        "four characters, `hash`, or `drop`.",
    )


@router.post("/v1/ember/guard/analyze", tags=["ember"])
async def analyze(
    body: AnalyzeRequest, analyzer: Analyzer = Depends(get_analyzer)
) -> dict[str, Any]:
    # spaCy and jieba are CPU-bound: keep them off the event loop.
    spans = await asyncio.to_thread(analyzer.analyze, body.text, body.language, body.entities)
    return {"spans": [span.to_dict() for span in spans]}


@router.post("/v1/ember/guard/redact", tags=["ember"])
async def redact(body: RedactRequest, analyzer: Analyzer = Depends(get_analyzer)) -> dict[str, Any]:
    spans = await asyncio.to_thread(analyzer.analyze, body.text, body.language, body.entities)
    return {
        "text": apply_operator(body.text, spans, body.operator),
        "spans": [span.to_dict() for span in spans],
    }


@router.get("/v1/ember/files/{file_id}/pii", tags=["ember"])
async def pii_in_file(
    file_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> dict[str, Any]:
    """The PII the guard finds in an uploaded file's text: counts by entity type and the
    findings (``ember.services.document_pii``)."""
    return await asyncio.to_thread(file_pii, services.files, services.analyzer, file_id, caller=who)
