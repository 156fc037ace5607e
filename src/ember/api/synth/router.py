"""Routes of ``/v1/ember/synth_jobs``: create, list, retrieve, cancel.

A job turns a vector store's documents (or uploaded files) into question/answer pairs
written by a local model, checked and deduplicated, and stores them as a ``fine-tune`` file
(``output_file_id``) ready for ``POST /v1/fine_tuning/jobs``. See docs/API.md.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from ember.api.deps import current_caller, get_services
from ember.api.wire import WireModel
from ember.core.request_context import Caller
from ember.services.container import Services
from ember.services.synth_jobs import SynthRequest

router = APIRouter()
JOBS = "/v1/ember/synth_jobs"


class CreateSynthJobRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "default"
    vector_store_id: str | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=100)
    questions_per_passage: Annotated[int, Field(ge=1, le=10)] = 3
    max_passages: Annotated[int, Field(ge=1, le=2000)] = 200
    system: str | None = None
    seed: int = 0

    def to_domain(self) -> SynthRequest:
        return SynthRequest(
            model=self.model,
            vector_store_id=self.vector_store_id,
            file_ids=tuple(self.file_ids),
            questions_per_passage=self.questions_per_passage,
            max_passages=self.max_passages,
            system=self.system,
            seed=self.seed,
        )


@router.post(JOBS, response_model=None)
async def create_job(
    body: CreateSynthJobRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    # Parsing the documents may take a while: off the event loop.
    created = await asyncio.to_thread(services.synth.create, body.to_domain(), caller=who)
    return JSONResponse(created)


@router.get(JOBS, response_model=None)
async def list_jobs(
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    jobs, has_more = services.synth.list_jobs(after=after, limit=limit, caller=who)
    return JSONResponse(
        {
            "object": "list",
            "data": jobs,
            "first_id": jobs[0]["id"] if jobs else None,
            "last_id": jobs[-1]["id"] if jobs else None,
            "has_more": has_more,
        }
    )


@router.get(JOBS + "/{job_id}", response_model=None)
async def retrieve_job(
    job_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> Any:
    return JSONResponse(services.synth.get(job_id, caller=who))


@router.post(JOBS + "/{job_id}/cancel", response_model=None)
async def cancel_job(
    job_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> Any:
    return JSONResponse(services.synth.cancel(job_id, caller=who))
