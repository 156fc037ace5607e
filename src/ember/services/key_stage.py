"""The keys stage: who is asking decides the tenant's policy, models, budgets and limits.

For a request made with a stored API key it applies the key's model list (403
``model_not_allowed``) and guard policy, holds the key's budgets and rate limits (a
reservation at the start, settled with the real cost at the end; a cache hit costs
nothing), and bounds an unbounded answer when the key has a budget.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ember.core.request_context import OutputFilter, RequestContext
from ember.errors import PermissionDeniedError
from ember.route.keys import guard_policy_for
from ember.route.limits import Ledger, Reservation
from ember.route.remote import estimate_tokens
from ember.route.router import Router
from ember.settings import Settings

DEFAULT_COMPLETION_ALLOWANCE = 1024


class KeyStage:
    """Applies the caller's key (see the module docstring)."""

    name = "keys"

    def __init__(self, settings: Settings, ledger: Ledger, router: Router) -> None:
        self.settings = settings
        self.ledger = ledger
        self.router = router

    async def on_request(self, ctx: RequestContext) -> None:
        key = ctx.caller.key
        if key is None:
            return
        if key.models is not None and ctx.model not in key.models:
            raise PermissionDeniedError(
                f"The key '{key.name}' may not use the model '{ctx.model}'.",
                param="model",
                code="model_not_allowed",
            )
        policy = guard_policy_for(self.settings, key.policy)
        if policy is not None:
            ctx.guard.key_policy = policy
        completion = ctx.max_tokens or DEFAULT_COMPLETION_ALLOWANCE
        if ctx.max_tokens is None and _has_budget(key):
            ctx.max_tokens_cap = completion
        prompt = estimate_tokens(ctx.messages)
        in_price, out_price = self.router.max_prices(ctx.model)
        usd = (prompt * in_price + completion * out_price) / 1e6
        ctx.reservation = await asyncio.to_thread(
            self.ledger.reserve, key, usd=usd, tokens=prompt + completion
        )

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        reservation = ctx.reservation
        if not isinstance(reservation, Reservation):
            return
        if reservation.id is None:
            return
        if ctx.cache.hit:
            usd, tokens = 0.0, 0
        else:
            usd, tokens = ctx.route.cost_usd, ctx.usage.total_tokens
        await asyncio.to_thread(self.ledger.settle, reservation, usd=usd, tokens=tokens)


def _has_budget(key: Any) -> bool:
    return any(
        getattr(key, name) is not None
        for name in (
            "budget_usd_day",
            "budget_usd_month",
            "budget_tokens_day",
            "budget_tokens_month",
            "tpm",
        )
    )
