"""API key rows and usage queries (issue 6); :class:`ember.store.Store` exposes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ember.store.tables import ApiKeyRow, RequestLogRow

UsageGroup = Literal["key", "model", "target", "day"]


@dataclass
class KeyRecord:
    """An API key as stored: never the key itself, only its salted hash."""

    id: str
    name: str
    salt: str
    hash: str
    created_at: float
    models: list[str] | None = None
    policy: str | None = None
    budget_usd_day: float | None = None
    budget_usd_month: float | None = None
    budget_tokens_day: int | None = None
    budget_tokens_month: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    revoked_at: float | None = None

    def public(self) -> dict[str, Any]:
        """What the admin API and the CLI show (no salt, no hash)."""
        return {
            "id": self.id,
            "object": "ember.key",
            "name": self.name,
            "models": self.models,
            "policy": self.policy,
            "budget_usd_day": self.budget_usd_day,
            "budget_usd_month": self.budget_usd_month,
            "budget_tokens_day": self.budget_tokens_day,
            "budget_tokens_month": self.budget_tokens_month,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "created_at": int(self.created_at),
            "revoked": self.revoked_at is not None,
        }


_FIELDS = (
    "policy",
    "budget_usd_day",
    "budget_usd_month",
    "budget_tokens_day",
    "budget_tokens_month",
    "rpm",
    "tpm",
)


def to_row(record: KeyRecord) -> ApiKeyRow:
    return ApiKeyRow(
        id=record.id,
        name=record.name,
        salt=record.salt,
        hash=record.hash,
        models=json.dumps(record.models) if record.models is not None else None,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        **{name: getattr(record, name) for name in _FIELDS},
    )


def from_row(row: ApiKeyRow) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        salt=row.salt,
        hash=row.hash,
        created_at=row.created_at,
        models=json.loads(row.models) if row.models else None,
        revoked_at=row.revoked_at,
        **{name: getattr(row, name) for name in _FIELDS},
    )


@dataclass
class UsageRow:
    group: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    avg_latency_ms: float = 0.0


def _utc_day(session: Session, seconds: Any) -> Any:
    """``YYYY-MM-DD`` (UTC) of a Unix time column, in the session's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", func.to_timestamp(seconds)), "YYYY-MM-DD")
    return func.date(seconds, "unixepoch")


def usage_report(
    session: Session,
    group_by: list[UsageGroup],
    *,
    since: float | None = None,
    tenant: str | None = None,
) -> list[UsageRow]:
    columns: dict[str, Any] = {
        "key": func.coalesce(RequestLogRow.tenant, ""),
        "model": RequestLogRow.model,
        "target": func.coalesce(RequestLogRow.target, ""),
        "day": _utc_day(session, RequestLogRow.created_at),
    }
    keys = [columns[name].label(name) for name in group_by]
    query = select(
        *keys,
        func.count(),
        func.sum(RequestLogRow.prompt_tokens),
        func.sum(RequestLogRow.completion_tokens),
        func.sum(RequestLogRow.cost_usd),
        func.sum(RequestLogRow.cache_hit),
        func.avg(RequestLogRow.latency_ms),
    )
    if since is not None:
        query = query.where(RequestLogRow.created_at >= since)
    if tenant is not None:
        query = query.where(RequestLogRow.tenant == tenant)
    if keys:
        query = query.group_by(*keys).order_by(*keys)
    out = []
    for row in session.execute(query).all():
        n = len(group_by)
        out.append(
            UsageRow(
                group={name: str(row[i] or "") for i, name in enumerate(group_by)},
                requests=int(row[n] or 0),
                prompt_tokens=int(row[n + 1] or 0),
                completion_tokens=int(row[n + 2] or 0),
                cost_usd=float(row[n + 3] or 0.0),
                cache_hits=int(row[n + 4] or 0),
                avg_latency_ms=float(row[n + 5] or 0.0),
            )
        )
    return [row for row in out if row.requests]
