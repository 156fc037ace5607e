"""``POST /v1/ember/models/pull`` and ``GET /v1/ember/models/pulls[/{id}]`` (admin key).

A pull writes to the server's disk and registers a model every caller can then use, so it
takes the admin key. The POST answers once the pull is planned (202 with the job, or the 4xx
that names what cannot be pulled); the download runs on (``ember.services.model_pulls``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from ember.api.deps import get_services, require_admin_key
from ember.api.wire import WireModel
from ember.services.container import Services

router = APIRouter(dependencies=[Depends(require_admin_key)], tags=["ember"])


class PullRequest(WireModel):
    """What ``ember models pull`` takes: a repo, and optionally files, revision and id."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=1, max_length=200)
    revision: str = Field(default="main", min_length=1, max_length=200)
    files: list[str] | None = Field(default=None, max_length=1000)
    model_id: str | None = Field(default=None, min_length=1, max_length=200)


@router.post("/v1/ember/models/pull", response_model=None)
async def start_pull(body: PullRequest, services: Services = Depends(get_services)) -> Any:
    # Listing the repo on the hub takes a round trip or more: off the event loop.
    job = await asyncio.to_thread(
        services.pulls.start,
        body.repo,
        revision=body.revision,
        files=body.files or None,
        model_id=body.model_id,
    )
    return JSONResponse(job, status_code=202)


@router.get("/v1/ember/models/pulls")
async def list_pulls(services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"object": "list", "data": services.pulls.list_jobs()}


@router.get("/v1/ember/models/pulls/{pull_id}")
async def retrieve_pull(pull_id: str, services: Services = Depends(get_services)) -> Any:
    return services.pulls.get(pull_id)
