"""``GET /v1/models``, ``GET /v1/models/{id}``, and Ember's load/unload endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ember.api.deps import current_caller, get_services
from ember.core.request_context import Caller
from ember.errors import ModelNotFoundError
from ember.models.spec import ModelSpec
from ember.services.container import Services

router = APIRouter()


def model_object(spec: ModelSpec, *, model_id: str | None = None) -> dict[str, Any]:
    return {
        "id": model_id or spec.id,
        "object": "model",
        "created": spec.created,
        "owned_by": spec.owned_by,
    }


def _visible(spec: ModelSpec, who: Caller) -> bool:
    """Every model is everyone's but a tenant's fine-tuned ones, which are that tenant's."""
    return spec.owner is None or who.may_see(spec.owner)


@router.get("/v1/models")
async def list_models(
    services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> dict[str, Any]:
    specs = {k: s for k, s in services.registry.specs().items() if _visible(s, who)}
    data = [model_object(spec) for spec in specs.values()]
    for alias, target in services.registry.aliases().items():
        if alias in specs:
            continue
        try:
            spec = services.registry.resolve(target)
        except Exception:  # an alias to a missing model is listed by `ember models`, not here
            continue
        if not _visible(spec, who):
            continue
        data.append(model_object(spec, model_id=alias))
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(
    model_id: str, services: Services = Depends(get_services), who: Caller = Depends(current_caller)
) -> dict[str, Any]:
    spec = services.registry.resolve(model_id)
    if not _visible(spec, who):
        raise ModelNotFoundError(model_id)
    return model_object(spec, model_id=model_id)


@router.get("/v1/ember/models/loaded")
async def loaded_models(services: Services = Depends(get_services)) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": entry.spec.id,
                "engine": entry.spec.engine,
                "memory_bytes": entry.engine.memory_bytes,
                "loaded_at": int(entry.loaded_at),
                "last_used": int(entry.last_used),
                "load_seconds": round(entry.load_seconds, 3),
                "pid": entry.engine.pid,
                "alive": entry.engine.alive,
                "restarts": services.manager.restarts.get(entry.spec.id, 0),
            }
            for entry in services.manager.loaded()
        ],
        "budget_bytes": services.manager.budget_bytes,
    }


@router.post("/v1/ember/models/{model_id:path}/load")
async def load_model(model_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    spec = services.registry.resolve(model_id)
    await services.manager.get(spec)
    services.metrics.models_loaded.set(len(services.manager.loaded()))
    return {"id": spec.id, "object": "model", "loaded": True}


@router.post("/v1/ember/models/{model_id:path}/unload")
async def unload_model(model_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    spec = services.registry.resolve(model_id)
    was_loaded = await services.manager.unload(spec.id)
    services.metrics.models_loaded.set(len(services.manager.loaded()))
    return {"id": spec.id, "object": "model", "loaded": False, "was_loaded": was_loaded}
