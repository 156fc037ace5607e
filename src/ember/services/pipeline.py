"""The stages every inference request passes through.

A request becomes a :class:`RequestContext`; each :class:`RequestStage` sees it before the
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
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from ember.core.types import ChatMessage, Usage
from ember.store import Store

logger = logging.getLogger(__name__)


class OutputFilter(Protocol):
    """Transforms streamed output; may hold text back until ``flush`` at the end."""

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


@dataclass
class RequestContext:
    """What the stages know about one request."""

    endpoint: str
    model: str
    messages: list[ChatMessage] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    status: str = "ok"
    attributes: dict[str, Any] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex}")
    output_text: str = ""  # every choice's text and tool-call arguments, as sent
    max_tokens: int | None = None  # the completion tokens asked for, when bounded

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started


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
            tenant=ctx.attributes.get("tenant"),
            target=ctx.attributes.get("route"),
            cost_usd=float(ctx.attributes.get("cost_usd", 0.0)),
            cache_hit=bool(ctx.attributes.get("cache_hit")),
            route_reason=ctx.attributes.get("route_reason"),
        )
        if self.metrics is not None:
            self.metrics.observe_generation(ctx)
