"""The stages every inference request passes through.

A request becomes a typed :class:`~ember.core.request_context.RequestContext` (the planner,
``ember.services.planner``, makes it); each :class:`RequestStage` sees it before the
engine runs (``on_request``: may rewrite the messages or refuse the request by raising an
``EmberError``), may transform the streamed output (``output_filter``), and sees the finished
request (``on_complete``). The order is the flow drawn in docs/ARCHITECTURE.md:

    guard in -> route -> engine -> guard out -> audit/usage

Today the built-in stage is usage accounting (the request log and Prometheus counters); the
guard, router and audit packages add theirs through :meth:`Pipeline.add` without touching the
API or the engines.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ember.core.request_context import OutputFilter, RequestContext
from ember.store import Store

logger = logging.getLogger(__name__)


class RequestStage(Protocol):
    name: str

    async def on_request(self, ctx: RequestContext) -> None: ...

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None: ...

    async def on_complete(self, ctx: RequestContext) -> None: ...


class Pipeline:
    """An ordered list of stages."""

    def __init__(self, stages: list[RequestStage] | None = None) -> None:
        self.stages: list[RequestStage] = list(stages or [])

    def add(self, stage: RequestStage, *, before: str | None = None) -> None:
        if before is None:
            self.stages.append(stage)
            return
        names = [s.name for s in self.stages]
        self.stages.insert(names.index(before) if before in names else len(names), stage)

    async def on_request(self, ctx: RequestContext) -> None:
        for stage in self.stages:
            await stage.on_request(ctx)

    def output_filters(self, ctx: RequestContext) -> list[OutputFilter]:
        filters = (stage.output_filter(ctx) for stage in self.stages)
        return [f for f in filters if f is not None]

    async def on_complete(self, ctx: RequestContext) -> None:
        for stage in reversed(self.stages):
            try:
                await stage.on_complete(ctx)
            except Exception:  # a bookkeeping failure must not fail a served answer
                logger.exception("stage %s failed after the request", stage.name)


class UsageStage:
    """Records every request's tokens and latency in the store and in the metrics."""

    name = "usage"

    def __init__(self, store: Store, metrics: Any | None = None) -> None:
        self.store = store
        self.metrics = metrics

    async def on_request(self, ctx: RequestContext) -> None:
        return None

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        self.store.log_request(
            endpoint=ctx.endpoint,
            model=ctx.model,
            prompt_tokens=ctx.usage.prompt_tokens,
            completion_tokens=ctx.usage.completion_tokens,
            latency_ms=ctx.latency_ms,
            status=ctx.status,
            tenant=ctx.tenant,
            target=ctx.route.target,
            cost_usd=ctx.route.cost_usd,
            cache_hit=ctx.cache.hit,
            route_reason=ctx.route.reason,
        )
        if self.metrics is not None:
            self.metrics.observe_generation(ctx)
