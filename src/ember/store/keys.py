"""API key rows (issue 6); :class:`ember.store.Store` exposes them. Usage reports are in
``ember.store.usage``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ember.store.tables import ApiKeyRow


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


# What an update may change: a key's name and secret are its identity and stay.
UPDATABLE = ("models", *_FIELDS)


def to_columns(changes: dict[str, Any]) -> dict[str, Any]:
    """An update's fields as ``api_keys`` column values (``models`` is stored as JSON)."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    columns = dict(changes)
    if "models" in columns:
        columns["models"] = json.dumps(columns["models"]) if columns["models"] else None
    return columns


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
