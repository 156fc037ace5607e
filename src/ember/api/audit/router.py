"""``GET /v1/ember/audit`` and ``GET /v1/ember/audit/verify`` (admin key).

Read-only: the chain's newest records, as stored and hashed (``verdicts`` is JSON text), and
its verification, the same the ``ember audit tail`` and ``ember audit verify`` commands show
(``ember.store.audit`` explains the chain). Both wait for queued rows and read the database,
so they run off the event loop. The admin key is needed because the log spans every tenant.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query

from ember.api.deps import get_services, require_admin_key
from ember.services.container import Services

router = APIRouter(dependencies=[Depends(require_admin_key)], tags=["ember"])


@router.get("/v1/ember/audit")
async def audit_tail(
    limit: int = Query(default=50, ge=1, le=1000),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """The newest ``limit`` records, newest first."""
    records = await asyncio.to_thread(services.store.tail_audit, limit)
    return {"object": "list", "data": [record.to_dict() for record in reversed(records)]}


@router.get("/v1/ember/audit/verify")
async def audit_verify(services: Services = Depends(get_services)) -> dict[str, Any]:
    """Recompute the hash chain: ``ok``, records checked, and the first bad record if any."""
    result = await asyncio.to_thread(services.store.verify_audit)
    return {
        "object": "ember.audit_verification",
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
        "head_hash": result.head_hash,
    }
