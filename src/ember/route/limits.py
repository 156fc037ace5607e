"""Budgets and rate limits per key, held in the database so that every replica shares them.

A request made with a key that has any limit reserves its worst case (prompt estimate plus
the completion tokens it may produce, at the route's highest prices) before it runs, and
settles the actual figures when it ends. The check and the reservation are one transaction
under the key's lock in the database (``ember.store.ledger``): concurrent requests, in one
process or in replicas sharing a PostgreSQL database, never let more through than a limit
allows. Keys without limits cost no database work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ember.errors import EmberError, QuotaExceededError, RateLimitError
from ember.store import Store
from ember.store.keys import KeyRecord
from ember.store.ledger import Limits, Refusal, period_starts

# How often old reservation rows are deleted (seconds).
PRUNE_EVERY_S = 3600.0


@dataclass
class Reservation:
    tenant: str
    usd: float
    tokens: int
    at: float
    id: int | None = None  # None: the key has no limits, nothing was written


def limits_of(key: KeyRecord) -> Limits:
    return Limits(
        rpm=key.rpm,
        tpm=key.tpm,
        usd_day=key.budget_usd_day,
        usd_month=key.budget_usd_month,
        tokens_day=key.budget_tokens_day,
        tokens_month=key.budget_tokens_month,
    )


class Ledger:
    def __init__(self, store: Store, *, clock: object = time.time) -> None:
        self.store = store
        self.clock = clock
        self._pruned_at = 0.0

    def reserve(self, key: KeyRecord, *, usd: float, tokens: int) -> Reservation:
        """Check every limit of ``key`` and hold the worst case; raises 429 when over.

        Blocking (a database transaction): call it off the event loop."""
        now = float(self.clock())  # type: ignore[operator]
        limits = limits_of(key)
        if limits == Limits():
            return Reservation(key.name, usd, tokens, now)
        day, month = period_starts(now)
        held = self.store.ledger.reserve(
            key.name, limits, usd=usd, tokens=tokens, now=now, day_start=day, month_start=month
        )
        if isinstance(held, Refusal):
            raise _refusal_error(key, held, usd=usd, tokens=tokens, now=now)
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.store.ledger.prune(month)
        return Reservation(key.name, usd, tokens, now, held)

    def settle(self, reservation: Reservation, *, usd: float, tokens: int) -> None:
        """Replace the held worst case with what the request actually used (blocking)."""
        if reservation.id is not None:
            self.store.ledger.settle(reservation.id, usd=usd, tokens=tokens)


def _refusal_error(
    key: KeyRecord, refusal: Refusal, *, usd: float, tokens: int, now: float
) -> EmberError:
    window = refusal.window
    if refusal.limit == "rpm":
        oldest = window.oldest_in_minute if window.oldest_in_minute is not None else now
        wait = max(1, int(60 - (now - oldest)) + 1)
        return RateLimitError(
            f"Rate limit reached for key '{key.name}': {key.rpm} requests per minute.",
            headers={"retry-after": str(wait)},
        )
    if refusal.limit == "tpm":
        return RateLimitError(
            f"Rate limit reached for key '{key.name}': {key.tpm} tokens per minute "
            f"({window.tokens_minute} used, this request may need {tokens}).",
            headers={"retry-after": "60"},
        )
    label, limit, spent, need = {
        "usd_day": ("daily USD", key.budget_usd_day, window.usd_day, usd),
        "usd_month": ("monthly USD", key.budget_usd_month, window.usd_month, usd),
        "tokens_day": ("daily token", key.budget_tokens_day, window.tokens_day, tokens),
        "tokens_month": ("monthly token", key.budget_tokens_month, window.tokens_month, tokens),
    }[refusal.limit]
    return QuotaExceededError(
        f"The {label} budget of key '{key.name}' would be exceeded "
        f"({spent:g} of {limit:g} spent; this request may cost up to {need:g})."
    )
