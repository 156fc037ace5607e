"""Budgets and rate limits per key, enforced atomically.

Every check-and-reserve is one synchronous call on the event loop, so concurrent requests
cannot interleave inside it: a request reserves its worst case (prompt estimate plus the
completion tokens it may produce, at the route's highest prices) before it runs, and settles
the actual figures when it ends. Spending so far comes from the store (the request log) the
first time a key is seen in a day or month, then is kept here.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ember.errors import QuotaExceededError, RateLimitError
from ember.store import Store
from ember.store.keys import KeyRecord


def _period_starts(now: float) -> tuple[float, float]:
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


@dataclass
class _Account:
    day_start: float = -1.0
    month_start: float = -1.0
    usd_day: float = 0.0
    usd_month: float = 0.0
    tokens_day: int = 0
    tokens_month: int = 0
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)


@dataclass
class Reservation:
    tenant: str
    usd: float
    tokens: int
    at: float


class Ledger:
    def __init__(self, store: Store, *, clock: object = time.time) -> None:
        self.store = store
        self.clock = clock
        self.accounts: dict[str, _Account] = {}

    def _account(self, key: KeyRecord, now: float) -> _Account:
        account = self.accounts.setdefault(key.name, _Account())
        day, month = _period_starts(now)
        if account.month_start != month:
            account.month_start = month
            account.usd_month, account.tokens_month = self.store.spent_since(key.name, month)
        if account.day_start != day:
            account.day_start = day
            account.usd_day, account.tokens_day = self.store.spent_since(key.name, day)
        return account

    def reserve(self, key: KeyRecord, *, usd: float, tokens: int) -> Reservation:
        """Check every limit of ``key`` and hold the worst case; raises 429 when over."""
        now = float(self.clock())  # type: ignore[operator]
        account = self._account(key, now)
        while account.requests and account.requests[0] <= now - 60:
            account.requests.popleft()
        while account.tokens and account.tokens[0][0] <= now - 60:
            account.tokens.popleft()
        if key.rpm is not None and len(account.requests) >= key.rpm:
            wait = max(1, int(60 - (now - account.requests[0])) + 1)
            raise RateLimitError(
                f"Rate limit reached for key '{key.name}': {key.rpm} requests per minute.",
                headers={"retry-after": str(wait)},
            )
        minute_tokens = sum(n for _, n in account.tokens)
        if key.tpm is not None and minute_tokens + tokens > key.tpm:
            raise RateLimitError(
                f"Rate limit reached for key '{key.name}': {key.tpm} tokens per minute "
                f"({minute_tokens} used, this request may need {tokens}).",
                headers={"retry-after": "60"},
            )
        for label, limit, spent, need in (
            ("daily USD", key.budget_usd_day, account.usd_day, usd),
            ("monthly USD", key.budget_usd_month, account.usd_month, usd),
            ("daily token", key.budget_tokens_day, account.tokens_day, tokens),
            ("monthly token", key.budget_tokens_month, account.tokens_month, tokens),
        ):
            if limit is not None and spent + need > limit:
                raise QuotaExceededError(
                    f"The {label} budget of key '{key.name}' would be exceeded "
                    f"({spent:g} of {limit:g} spent; this request may cost up to {need:g})."
                )
        account.requests.append(now)
        account.tokens.append((now, tokens))
        account.usd_day += usd
        account.usd_month += usd
        account.tokens_day += tokens
        account.tokens_month += tokens
        return Reservation(key.name, usd, tokens, now)

    def settle(self, reservation: Reservation, *, usd: float, tokens: int) -> None:
        """Replace the held worst case with what the request actually used."""
        account = self.accounts.get(reservation.tenant)
        if account is None:
            return
        day, month = _period_starts(reservation.at)
        if account.day_start == day:
            account.usd_day += usd - reservation.usd
            account.tokens_day += tokens - reservation.tokens
        if account.month_start == month:
            account.usd_month += usd - reservation.usd
            account.tokens_month += tokens - reservation.tokens
        for i, (at, n) in enumerate(account.tokens):
            if at == reservation.at and n == reservation.tokens:
                account.tokens[i] = (at, tokens)
                break
