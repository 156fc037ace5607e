"""``/v1/ember/keys`` (admin key) and ``GET /v1/ember/usage``."""

from __future__ import annotations

import hmac
import time
from typing import Any, get_args

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field

from ember.api.deps import bearer_token, get_services, require_admin_key
from ember.api.wire import WireModel
from ember.errors import AuthenticationError, InvalidRequestError
from ember.route.keys import create_key, revoke_key, update_key
from ember.services.container import Services
from ember.store.usage import UsageGroup

admin = APIRouter(dependencies=[Depends(require_admin_key)])
usage_router = APIRouter()


class KeyCreate(WireModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    models: list[str] | None = None
    policy: str | None = None
    budget_usd_day: float | None = Field(default=None, ge=0)
    budget_usd_month: float | None = Field(default=None, ge=0)
    budget_tokens_day: int | None = Field(default=None, ge=0)
    budget_tokens_month: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)


@admin.post("/v1/ember/keys")
async def create(body: KeyCreate, services: Services = Depends(get_services)) -> dict[str, Any]:
    key, record = create_key(services.store, services.settings, **body.model_dump())
    services.keys.forget()
    return {**record.public(), "key": key}


class KeyUpdate(WireModel):
    """The fields to change; a field sent as null is cleared, one left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    models: list[str] | None = None
    policy: str | None = None
    budget_usd_day: float | None = Field(default=None, ge=0)
    budget_usd_month: float | None = Field(default=None, ge=0)
    budget_tokens_day: int | None = Field(default=None, ge=0)
    budget_tokens_month: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)


@admin.post("/v1/ember/keys/{key}")
async def update(
    key: str, body: KeyUpdate, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """Change a key's models, policy, budgets or rate limits (the ``ember`` extension)."""
    changes = body.model_dump(include=body.model_fields_set)
    name = changes.pop("name", None)
    current = services.store.find_key(key)
    if name is not None and current is not None and name != current.name:
        raise InvalidRequestError(
            "A key cannot be renamed: its name is its tenant, which owns its files, vector "
            "stores, conversations and jobs and names it in usage and the audit log. Create "
            "a new key instead.",
            param="name",
        )
    record = update_key(services.store, services.settings, key, changes)
    services.keys.forget()
    return record.public()


@admin.get("/v1/ember/keys")
async def list_keys(services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"object": "list", "data": [k.public() for k in services.store.list_keys()]}


@admin.delete("/v1/ember/keys/{key}")
async def revoke(key: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    record = revoke_key(services.store, key)
    services.keys.forget()
    return {"id": record.id, "object": "ember.key", "name": record.name, "deleted": True}


GROUPS: tuple[str, ...] = get_args(UsageGroup)
MAX_USAGE_DAYS = 36_500  # a century: any longer window is every row, and keeps the date math finite


@usage_router.get("/v1/ember/usage")
async def usage(
    request: Request,
    group_by: str = "key,model",
    days: float = Query(default=30, gt=0, le=MAX_USAGE_DAYS),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """Usage grouped by ``key``, ``model``, ``target`` and/or ``day`` over the last ``days``.
    The admin key sees every key; any other key sees its own usage only."""
    tenant = _usage_tenant(request, services)
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise InvalidRequestError(
            f"group_by takes {', '.join(GROUPS)}; not {', '.join(unknown)}.", param="group_by"
        )
    rows = services.store.usage_report(
        groups,  # type: ignore[arg-type]
        since=time.time() - days * 86400,
        tenant=tenant,
    )
    return {
        "object": "list",
        "group_by": groups,
        "data": [
            {
                **row.group,
                "requests": row.requests,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "cost_usd": round(row.cost_usd, 8),
                "cache_hits": row.cache_hits,
                "refusals": row.refusals,
                "avg_latency_ms": round(row.avg_latency_ms, 2),
            }
            for row in rows
        ],
    }


def _usage_tenant(request: Request, services: Services) -> str | None:
    token = bearer_token(request)
    admin_key = services.settings.admin_key
    if (
        token
        and admin_key
        and hmac.compare_digest(token.encode(), admin_key.get_secret_value().encode())
    ):
        return None
    principal = services.keys.authenticate(token) if token else None
    if principal is None:
        if services.keys.required() or admin_key is not None:
            raise AuthenticationError("Usage needs a valid API key or the admin key.")
        return None
    return principal.tenant if principal.key is not None else None
