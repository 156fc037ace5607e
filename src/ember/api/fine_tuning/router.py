"""``/v1/fine_tuning/jobs``: create, list, retrieve, cancel, pause, resume, events, checkpoints;
and ``POST /v1/ember/fine_tuning/check``: the data check of a job to come, without the job."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ember.adapt.worker import fine_tuned_model_name
from ember.api.deps import current_caller, get_services
from ember.api.fine_tuning.protocol import CheckTrainingDataRequest, CreateFineTuningJobRequest
from ember.core.request_context import Caller
from ember.services.container import Services
from ember.store.fine_tuning import CheckpointRecord, JobRecord

router = APIRouter()
JOB = "/v1/fine_tuning/jobs/{fine_tuning_job_id}"


def _page(data: list[dict[str, Any]], has_more: bool) -> JSONResponse:
    return JSONResponse({"object": "list", "data": data, "has_more": has_more})


def _job(record: JobRecord) -> JSONResponse:
    return JSONResponse(record.job)


def _checkpoint(record: CheckpointRecord, job: JobRecord) -> dict[str, Any]:
    name = job.fine_tuned_model or fine_tuned_model_name(
        job.job["model"], job.internal.get("suffix"), job.id
    )
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": f"ftckpt-{record.seq}",
        "created_at": record.created_at,
        "fine_tuned_model_checkpoint": f"{name}:ckpt-step-{record.step}",
        "fine_tuning_job_id": record.job_id,
        "step_number": record.step,
        "metrics": record.metrics,
    }


@router.post("/v1/fine_tuning/jobs", response_model=None)
async def create_job(
    body: CreateFineTuningJobRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    # Reading and checking every line of the files may take a while: off the event loop.
    created = await asyncio.to_thread(services.fine_tuning.create, body.to_domain(), caller=who)
    return _job(created)


@router.post("/v1/ember/fine_tuning/check", response_model=None)
async def check_data(
    body: CheckTrainingDataRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    """What creating a job from these files would find: examples, formats, bad lines."""
    findings = await asyncio.to_thread(
        services.fine_tuning.check,
        body.training_file,
        validation_file=body.validation_file,
        method=body.method,
        model=body.model,
        caller=who,
    )
    return JSONResponse(findings)


@router.get("/v1/fine_tuning/jobs", response_model=None)
async def list_jobs(
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    records, has_more = services.fine_tuning.list_jobs(after=after, limit=limit, caller=who)
    return _page([r.job for r in records], has_more)


@router.get(JOB, response_model=None)
async def retrieve_job(
    fine_tuning_job_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return _job(services.fine_tuning.get(fine_tuning_job_id, caller=who))


@router.post(JOB + "/cancel", response_model=None)
async def cancel_job(
    fine_tuning_job_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    cancelled = await asyncio.to_thread(services.fine_tuning.cancel, fine_tuning_job_id, caller=who)
    return _job(cancelled)


@router.post(JOB + "/pause", response_model=None)
async def pause_job(
    fine_tuning_job_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return _job(services.fine_tuning.pause(fine_tuning_job_id, caller=who))


@router.post(JOB + "/resume", response_model=None)
async def resume_job(
    fine_tuning_job_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return _job(services.fine_tuning.resume(fine_tuning_job_id, caller=who))


@router.get(JOB + "/events", response_model=None)
async def list_events(
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=1000),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    events, has_more = services.fine_tuning.events(
        fine_tuning_job_id, after=after, limit=limit, caller=who
    )
    return _page([e.to_openai() for e in events], has_more)


@router.get(JOB + "/checkpoints", response_model=None)
async def list_checkpoints(
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: int = Query(default=10, ge=1, le=100),
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    job = services.fine_tuning.get(fine_tuning_job_id, caller=who)
    records, has_more = services.fine_tuning.checkpoints(
        fine_tuning_job_id, after=after, limit=limit, caller=who
    )
    return _page([_checkpoint(r, job) for r in records], has_more)
