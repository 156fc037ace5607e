"""The router: a routed model name → a plan of targets.

``Router`` knows the routes, their targets, the providers' clients, every target's health
and the requests in flight on each; ``ember.services.planner`` asks it for a plan once the
guard has seen the request, and ``ember.route.remote`` generates on the plan's remote targets
(counting itself in ``in_flight`` while it does). The active health checks
(``ember.route.probe``) run from ``start`` until ``close``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ember.errors import ContentPolicyViolationError, EmberError, InvalidRequestError
from ember.route.health import TargetHealth
from ember.route.policy import RoutePlan, Target, plan_route
from ember.route.probe import HealthChecks
from ember.route.provider_kinds import open_provider
from ember.settings import RouteConfig, Settings

if TYPE_CHECKING:
    # Only its fields are used; the typed request context in ``ember.core`` replaces it.
    from ember.core.request_context import RequestContext

LOCAL = "local"


def is_sensitive(ctx: RequestContext) -> bool:
    """The guard found personal data that reaches the model, or the policy is local_only."""
    guard = ctx.guard.findings
    action = guard.get("pii_action")
    if action == "local_only" or ctx.guard.local_only:
        return True
    return bool(guard.get("pii")) and action != "redact"


class Router:
    """Routes, their targets, the providers' clients, every target's health and load."""

    def __init__(self, settings: Settings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.providers = {
            name: open_provider(name, config) for name, config in settings.providers.items()
        }
        self.health: dict[str, TargetHealth] = {}
        self.targets: dict[str, list[Target]] = {
            name: [self._target(spec) for spec in route.targets]
            for name, route in settings.routes.items()
        }
        self.in_flight: Counter[str] = Counter()  # remote requests open, by target name
        self.checks = HealthChecks(
            settings.providers,
            (t for targets in self.targets.values() for t in targets),
            self.health,
        )

    def _target(self, spec: str) -> Target:
        provider, sep, model = spec.partition("/")
        if not sep or not model:
            raise ValueError(f"route target {spec!r} must be 'local/MODEL' or 'PROVIDER/MODEL'")
        if provider == LOCAL:
            self.health.setdefault(spec, TargetHealth())
            return Target(spec, LOCAL, model, local=True, trusted=True)
        config = self.settings.providers.get(provider)
        if config is None:
            raise ValueError(f"route target {spec!r} names no provider [providers.{provider}]")
        self.health.setdefault(
            spec,
            TargetHealth(
                failure_threshold=config.breaker_failures, cooldown_s=config.breaker_cooldown_s
            ),
        )
        return Target(
            spec,
            provider,
            model,
            local=False,
            trusted=config.trusted,
            input_price=config.input_price,
            output_price=config.output_price,
        )

    def handles(self, model: str) -> bool:
        return model in self.settings.routes

    def max_prices(self, model: str) -> tuple[float, float]:
        """The highest input and output prices (USD per M tokens) a request may incur."""
        targets = self.targets.get(model, [])
        return (
            max((t.input_price for t in targets), default=0.0),
            max((t.output_price for t in targets), default=0.0),
        )

    def plan(self, model: str, *, sensitive: bool) -> RoutePlan:
        route: RouteConfig = self.settings.routes[model]
        return plan_route(
            route,
            self.targets[model],
            sensitive=sensitive,
            health=self.health,
            load=self.in_flight,
            rng=self.rng,
        )

    def start(self) -> None:
        """Start the active health checks (inside the server's event loop)."""
        self.checks.start()

    async def close(self) -> None:
        await self.checks.close()
        for provider in self.providers.values():
            await provider.close()

    def status(self) -> Iterator[tuple[str, TargetHealth, int]]:
        """Every remote target's health and requests in flight, for ``/metrics``."""
        for name, health in sorted(self.health.items()):
            if not name.startswith(f"{LOCAL}/"):
                yield name, health, self.in_flight[name]

    def refuse_empty(self, model: str, *, sensitive: bool) -> EmberError:
        if sensitive:
            return ContentPolicyViolationError(
                f"The request is sensitive (personal data or a local_only policy) and the "
                f"route '{model}' has no local or trusted target.",
                param="model",
            )
        return InvalidRequestError(
            f"No target of the route '{model}' passes its cost ceilings.",
            param="model",
            code="no_eligible_target",
        )
