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
   targets whose breaker is open rank after those, and targets whose last active health
   check failed (down, or their model not listed) rank last.
4. **balance**, within the first rank:

   * ``order`` (the default): the configured order, except that with ``weights`` the first
     target is drawn by weight;
   * ``load``: the fewest requests in flight first, counted per unit of weight (a target of
     weight 2 takes twice the concurrent requests of one of weight 1; without ``weights``
     every target weighs 1, and a target left out of ``weights`` comes last), then the lowest
     measured latency (an unmeasured target first, so it gets measured); a tie on both is
     drawn by weight.

   Later ranks keep the configured order: they are the fail-over.

The requests in flight (``load``) are this process's own: each replica balances the
requests it sends, and what other replicas send shows in the latency it measures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ember.route.health import TargetHealth
from ember.settings import RouteConfig

_RNG = random.Random()


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
    health: Mapping[str, TargetHealth] | None = None,
    load: Mapping[str, int] | None = None,
    rng: random.Random | None = None,
) -> RoutePlan:
    """Order the eligible targets for one request; ``targets`` is empty when none may serve.

    ``load``: the requests in flight per target name (absent: none)."""
    health = health or {}
    load = load or {}
    rng = rng or _RNG
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
        if state is not None and not state.checked_ok:
            return 3
        if state is not None and state.is_open():
            return 2
        objective = route.latency_objective_ms
        if objective is not None and state is not None and state.ewma_ms is not None:
            return 0 if state.ewma_ms <= objective else 1
        return 0

    ranks = [rank(t) for t in eligible]
    demoted = ((1, "latency objective"), (2, "breaker open"), (3, "health check failed"))
    for value, reason in demoted:
        if value in ranks:
            reasons.append(reason)
    ordered = [t for _, t in sorted(zip(ranks, eligible, strict=True), key=lambda p: p[0])]
    if ordered:
        best = min(ranks)
        first_rank = [t for t, r in zip(eligible, ranks, strict=True) if r == best]
        rest = ordered[len(first_rank) :]
        if route.balance == "load":
            # Only remote calls are counted in flight: local targets follow the balanced ones.
            remote = [t for t in first_rank if not t.local]
            local = [t for t in first_rank if t.local]
            balanced = _least_loaded(route, remote, health, load, rng) if remote else []
            ordered = [*balanced, *local, *rest]
            reasons.append("least load")
        elif route.weights:
            weights = [max(route.weights.get(t.name, 0.0), 0.0) for t in first_rank]
            if sum(weights) > 0:
                pick = rng.choices(first_rank, weights=weights, k=1)[0]
                ordered.remove(pick)
                ordered.insert(0, pick)
                reasons.append("weighted")
    if not reasons:
        reasons.append("first eligible")
    return RoutePlan(tuple(ordered), ", ".join(reasons))


def _least_loaded(
    route: RouteConfig,
    targets: list[Target],
    health: Mapping[str, TargetHealth],
    load: Mapping[str, int],
    rng: random.Random,
) -> list[Target]:
    """One rank ordered by requests in flight per weight, then measured latency; the first
    of a tie drawn by weight."""

    def weight(target: Target) -> float:
        return max(route.weights.get(target.name, 0.0), 0.0) if route.weights else 1.0

    def key(target: Target) -> tuple[float, float]:
        share = weight(target)
        busy = load.get(target.name, 0) / share if share > 0 else math.inf
        state = health.get(target.name)
        latency = state.ewma_ms if state is not None and state.ewma_ms is not None else 0.0
        return busy, latency

    ordered = sorted(targets, key=key)
    tied = [t for t in ordered if key(t) == key(ordered[0])]
    weights = [weight(t) for t in tied]
    if len(tied) > 1 and sum(weights) > 0:
        pick = rng.choices(tied, weights=weights, k=1)[0]
        ordered.remove(pick)
        ordered.insert(0, pick)
    return ordered
