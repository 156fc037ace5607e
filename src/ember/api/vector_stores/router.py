"""``/v1/vector_stores``: stores, ``/files``, ``/file_batches`` and ``/search``."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ember.api.deps import current_caller, get_services
from ember.api.vector_stores.protocol import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
)
from ember.core.request_context import Caller
from ember.services.container import Services

router = APIRouter()
Order = Literal["asc", "desc"]
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


@router.post("/v1/vector_stores", response_model=None)
async def create_vector_store(
    body: CreateVectorStoreRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    created = await asyncio.to_thread(
        services.vector_stores.create,
        name=body.name,
        file_ids=body.file_ids,
        metadata=body.metadata,
        chunking_strategy=body.chunking_strategy,
        expires_after=body.expires_after,
        caller=who,
    )
    return JSONResponse(created)


@router.get("/v1/vector_stores", response_model=None)
async def list_vector_stores(
    limit: int = Query(default=20, ge=1, le=100),
    order: Order = "desc",
    after: str | None = None,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(
        services.vector_stores.list_stores(limit=limit, order=order, after=after, caller=who)
    )


@router.get("/v1/vector_stores/{vector_store_id}", response_model=None)
async def retrieve_vector_store(
    vector_store_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.vector_stores.get(vector_store_id, caller=who))


@router.post("/v1/vector_stores/{vector_store_id}", response_model=None)
async def update_vector_store(
    vector_store_id: str,
    body: UpdateVectorStoreRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    changes = body.model_dump(exclude_unset=True)
    return JSONResponse(services.vector_stores.update(vector_store_id, changes, caller=who))


@router.delete("/v1/vector_stores/{vector_store_id}", response_model=None)
async def delete_vector_store(
    vector_store_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(
        await asyncio.to_thread(services.vector_stores.delete, vector_store_id, caller=who)
    )


@router.post("/v1/vector_stores/{vector_store_id}/search", response_model=None)
async def search_vector_store(
    vector_store_id: str,
    body: SearchRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    ranking = body.ranking_options
    page = await services.vector_stores.search(
        vector_store_id,
        body.query,
        max_num_results=body.max_num_results,
        filters=body.filters,
        score_threshold=ranking.score_threshold if ranking else 0.0,
        mode=body.ember.retrieval if body.ember else "hybrid",
        caller=who,
    )
    return JSONResponse(page)


@router.post("/v1/vector_stores/{vector_store_id}/files", response_model=None)
async def create_vector_store_file(
    vector_store_id: str,
    body: CreateVectorStoreFileRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    created = services.vector_stores.add_file(
        vector_store_id,
        body.file_id,
        attributes=body.attributes,
        chunking_strategy=body.chunking_strategy,
        caller=who,
    )
    return JSONResponse(created)


@router.get("/v1/vector_stores/{vector_store_id}/files", response_model=None)
async def list_vector_store_files(
    vector_store_id: str,
    limit: int = Query(default=20, ge=1, le=100),
    order: Order = "desc",
    after: str | None = None,
    filter: FileStatus | None = None,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    page = services.vector_stores.list_files(
        vector_store_id, limit=limit, order=order, after=after, status=filter, caller=who
    )
    return JSONResponse(page)


@router.get("/v1/vector_stores/{vector_store_id}/files/{file_id}", response_model=None)
async def retrieve_vector_store_file(
    vector_store_id: str,
    file_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.vector_stores.get_file(vector_store_id, file_id, caller=who))


@router.post("/v1/vector_stores/{vector_store_id}/files/{file_id}", response_model=None)
async def update_vector_store_file(
    vector_store_id: str,
    file_id: str,
    body: UpdateVectorStoreFileRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    updated = services.vector_stores.update_file(
        vector_store_id, file_id, body.attributes, caller=who
    )
    return JSONResponse(updated)


@router.delete("/v1/vector_stores/{vector_store_id}/files/{file_id}", response_model=None)
async def delete_vector_store_file(
    vector_store_id: str,
    file_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    deleted = await asyncio.to_thread(
        services.vector_stores.delete_file, vector_store_id, file_id, caller=who
    )
    return JSONResponse(deleted)


@router.get("/v1/vector_stores/{vector_store_id}/files/{file_id}/content", response_model=None)
async def vector_store_file_content(
    vector_store_id: str,
    file_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.vector_stores.file_content(vector_store_id, file_id, caller=who))


@router.post("/v1/vector_stores/{vector_store_id}/file_batches", response_model=None)
async def create_file_batch(
    vector_store_id: str,
    body: CreateFileBatchRequest,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    created = await asyncio.to_thread(
        services.vector_stores.create_batch,
        vector_store_id,
        body.file_ids,
        attributes=body.attributes,
        chunking_strategy=body.chunking_strategy,
        files=body.files,
        caller=who,
    )
    return JSONResponse(created)


@router.get("/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", response_model=None)
async def retrieve_file_batch(
    vector_store_id: str,
    batch_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.vector_stores.get_batch(vector_store_id, batch_id, caller=who))


@router.post(
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", response_model=None
)
async def cancel_file_batch(
    vector_store_id: str,
    batch_id: str,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    return JSONResponse(services.vector_stores.cancel_batch(vector_store_id, batch_id, caller=who))


@router.get(
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", response_model=None
)
async def list_file_batch_files(
    vector_store_id: str,
    batch_id: str,
    limit: int = Query(default=20, ge=1, le=100),
    order: Order = "desc",
    after: str | None = None,
    filter: FileStatus | None = None,
    services: Services = Depends(get_services),
    who: Caller = Depends(current_caller),
) -> Any:
    services.vector_stores.get_batch(vector_store_id, batch_id, caller=who)
    page = services.vector_stores.list_files(
        vector_store_id,
        limit=limit,
        order=order,
        after=after,
        status=filter,
        batch_id=batch_id,
        caller=who,
    )
    return JSONResponse(page)
