"""The routing policy: which targets may serve a request, in which order, and why.

Pure functions of the route, the targets' descriptions and their health, so the decision
table is tested without a server. The steps, in order:

1. **sensitivity**: a sensitive request (the guard found PII, or the policy is
   ``local_only``) may only go to local or ``trusted`` targets. No exception path: when none
   is eligible the request is refused.
2. **cost ceilings**: targets priced above the route's ``max_input_price`` /
   ``max_output_price`` (USD per million tokens) are dropped.
3. **latency objective**: targets whose measured latency (EWMA) exceeds
   ``latency_objective_ms`` rank after those that meet it (unmeasured targets meet it);
   targets whose breaker is open rank last.
4. **weights**: within the first rank, the first target is drawn by weight; the rest keep
   the configured order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ember.route.health import TargetHealth
from ember.settings import RouteConfig


@dataclass(frozen=True)
class Target:
    """One place a request can go: a local model or a provider's model."""

    name: str  # "local/MODEL" or "PROVIDER/MODEL"
    provider: str  # "local" or the provider's name
    model: str
    local: bool
    trusted: bool = False
    input_price: float = 0.0
    output_price: float = 0.0

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / 1e6


@dataclass(frozen=True)
class RoutePlan:
    targets: tuple[Target, ...]
    reason: str


def plan_route(
    route: RouteConfig,
    targets: list[Target],
    *,
    sensitive: bool,
    health: dict[str, TargetHealth] | None = None,
    rng: random.Random | None = None,
) -> RoutePlan:
    """Order the eligible targets for one request; ``targets`` is empty when none may serve."""
    health = health or {}
    reasons: list[str] = []
    eligible = list(targets)
    if sensitive:
        kept = [t for t in eligible if t.local or t.trusted]
        if len(kept) < len(eligible):
            reasons.append("sensitive: local/trusted only")
        eligible = kept
    priced = [
        t
        for t in eligible
        if (route.max_input_price is None or t.input_price <= route.max_input_price)
        and (route.max_output_price is None or t.output_price <= route.max_output_price)
    ]
    if len(priced) < len(eligible):
        reasons.append("cost ceiling")
    eligible = priced

    def rank(target: Target) -> int:
        state = health.get(target.name)
        if state is not None and state.is_open():
            return 2
        objective = route.latency_objective_ms
        if objective is not None and state is not None and state.ewma_ms is not None:
            return 0 if state.ewma_ms <= objective else 1
        return 0

    ranks = [rank(t) for t in eligible]
    if any(r == 1 for r in ranks):
        reasons.append("latency objective")
    if any(r == 2 for r in ranks):
        reasons.append("breaker open")
    ordered = [t for _, t in sorted(zip(ranks, eligible, strict=True), key=lambda p: p[0])]
    if ordered and route.weights:
        best = min(ranks)
        first_rank = [t for t, r in zip(eligible, ranks, strict=True) if r == best]
        weights = [max(route.weights.get(t.name, 0.0), 0.0) for t in first_rank]
        if sum(weights) > 0:
            pick = (rng or random).choices(first_rank, weights=weights, k=1)[0]
            ordered.remove(pick)
            ordered.insert(0, pick)
            reasons.append("weighted")
    if not reasons:
        reasons.append("first eligible")
    return RoutePlan(tuple(ordered), ", ".join(reasons))
