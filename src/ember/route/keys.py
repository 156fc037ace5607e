"""API keys: creation (shown once), salted hashes, and authentication.

A key reads ``sk-ember-<id>-<secret>``. The store keeps the id, a random salt and
SHA-256(salt + secret); the secret itself is never stored. The id finds the row; the hash is
compared in constant time. Keys listed in the ``api_keys`` setting are the same thing without
a row: each authenticates as the tenant ``config`` with no limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ember.errors import InvalidRequestError, NotFoundError
from ember.route.limits import limits_of
from ember.settings import GuardPolicy, Settings
from ember.store import Store
from ember.store.keys import KeyRecord
from ember.store.ledger import Limits

PREFIX = "sk-ember-"
_CACHE_S = 2.0  # how long a looked-up key row is trusted before it is read again
PII_ACTIONS = ("allow", "redact", "block", "local_only")


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def guard_policy_for(settings: Settings, name: str | None) -> GuardPolicy | None:
    """The guard policy a key names: ``[guard_policies."NAME"]``, or a bare PII action."""
    if not name:
        return None
    if name in settings.guard_policies:
        return settings.guard_policies[name]
    if name in PII_ACTIONS:
        return settings.guard.model_copy(update={"pii": name})
    return None


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a stored key, or a key from the ``api_keys`` setting."""

    tenant: str
    key: KeyRecord | None = None


def create_key(
    store: Store,
    settings: Settings,
    *,
    name: str,
    models: list[str] | None = None,
    policy: str | None = None,
    budget_usd_day: float | None = None,
    budget_usd_month: float | None = None,
    budget_tokens_day: int | None = None,
    budget_tokens_month: int | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> tuple[str, KeyRecord]:
    """Store a new key; returns the key (the only time it exists in clear) and its record."""
    if not name.strip():
        raise InvalidRequestError("A key needs a name.", param="name")
    if store.find_key(name) is not None:
        raise InvalidRequestError(f"A key named '{name}' already exists.", param="name")
    check_limits(
        settings,
        policy=policy,
        budget_usd_day=budget_usd_day,
        budget_usd_month=budget_usd_month,
        budget_tokens_day=budget_tokens_day,
        budget_tokens_month=budget_tokens_month,
        rpm=rpm,
        tpm=tpm,
    )
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_hex(16)
    record = KeyRecord(
        id=key_id,
        name=name,
        salt=salt,
        hash=hash_secret(salt, secret),
        created_at=time.time(),
        models=models or None,
        policy=policy,
        budget_usd_day=budget_usd_day,
        budget_usd_month=budget_usd_month,
        budget_tokens_day=budget_tokens_day,
        budget_tokens_month=budget_tokens_month,
        rpm=rpm,
        tpm=tpm,
    )
    store.add_key(record)
    return f"{PREFIX}{key_id}-{secret}", record


def check_limits(settings: Settings, **fields: Any) -> None:
    """Refuse an unknown guard policy or a negative limit (400, naming the field)."""
    policy = fields.pop("policy", None)
    if policy is not None and guard_policy_for(settings, policy) is None:
        raise InvalidRequestError(
            f"Unknown guard policy '{policy}': name a [guard_policies.\"NAME\"] table or one "
            f"of {', '.join(PII_ACTIONS)}.",
            param="policy",
        )
    for label, value in fields.items():
        if value is not None and value < 0:
            raise InvalidRequestError(f"{label} cannot be negative.", param=label)


def update_key(
    store: Store, settings: Settings, name_or_id: str, changes: dict[str, Any]
) -> KeyRecord:
    """Change an active key's models, policy, budgets or rate limits; a field given as
    None is cleared (no limit of that kind), a field left out stays.

    The name is not among them: it is the key's tenant, under which its files, vector
    stores, conversations, jobs, usage and audit records are filed, and the ledger's
    reservations are counted. Requests see the new limits at once in this process
    (:meth:`KeyRing.forget`) and within :data:`_CACHE_S` in other replicas: the ledger
    reads a key's limits from the record each request authenticates with."""
    record = store.find_key(name_or_id)
    if record is None or record.revoked_at is not None:
        raise NotFoundError(f"No active key named or with id '{name_or_id}'.", param="key")
    fields = {name: value for name, value in changes.items() if name != "models"}
    check_limits(settings, **fields)
    if "models" in changes:
        changes = {**changes, "models": changes["models"] or None}
    updated = store.update_key(record.id, changes)
    if updated is None:  # revoked meanwhile
        raise NotFoundError(f"No active key named or with id '{name_or_id}'.", param="key")
    if limits_of(record) == Limits() and limits_of(updated) != Limits():
        # Without limits its requests reserved nothing: count them from the request log.
        store.recount_spending(updated.name)
    return updated


def revoke_key(store: Store, name_or_id: str) -> KeyRecord:
    record = store.find_key(name_or_id)
    if record is None or not store.revoke_key(record.id):
        raise NotFoundError(f"No active key named or with id '{name_or_id}'.", param="key")
    return record


class KeyRing:
    """Authenticates bearer tokens against the store and the ``api_keys`` setting."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.static = [key.get_secret_value().encode() for key in settings.api_keys]
        self._rows: dict[str, tuple[float, KeyRecord | None]] = {}
        self._any: tuple[float, bool] = (0.0, False)

    def required(self) -> bool:
        """Keys are required once any exists (configured or stored)."""
        if self.static:
            return True
        checked, present = self._any
        now = time.monotonic()
        if now - checked > _CACHE_S:
            present = self.store.count_active_keys() > 0
            self._any = (now, present)
        return present

    def forget(self) -> None:
        """Drop cached rows (after a create, update or revoke in this process)."""
        self._rows.clear()
        self._any = (0.0, False)

    def authenticate(self, token: str) -> Principal | None:
        supplied = token.encode()
        if any(hmac.compare_digest(supplied, key) for key in self.static):
            return Principal(tenant="config")
        if not token.startswith(PREFIX):
            return None
        key_id, sep, secret = token[len(PREFIX) :].partition("-")
        if not sep:
            return None
        now = time.monotonic()
        cached = self._rows.get(key_id)
        if cached is None or now - cached[0] > _CACHE_S:
            cached = (now, self.store.get_key(key_id))
            self._rows[key_id] = cached
        record = cached[1]
        if record is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(hash_secret(record.salt, secret), record.hash):
            return None
        return Principal(tenant=record.name, key=record)
