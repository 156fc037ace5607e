"""Prometheus metrics, one registry per app (so tests can build several apps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from ember.services.pipeline import RequestContext

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters and histograms exposed on ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "ember_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "ember_http_request_duration_seconds",
            "Time to the response's first byte, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "ember_prompt_tokens", "Prompt tokens read.", ["model"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "ember_completion_tokens",
            "Tokens generated.",
            ["model"],
            registry=self.registry,
        )
        self.generation_requests = Counter(
            "ember_generation_requests",
            "Inference requests by endpoint, model and outcome.",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "ember_time_to_first_token_seconds",
            "Time from request to first generated token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.generation_latency = Histogram(
            "ember_generation_duration_seconds",
            "Whole generation time.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "ember_models_loaded", "Models loaded in memory.", registry=self.registry
        )

    def observe_generation(self, ctx: RequestContext) -> None:
        self.generation_requests.labels(ctx.endpoint, ctx.model, ctx.status).inc()
        self.prompt_tokens.labels(ctx.model).inc(ctx.usage.prompt_tokens)
        self.completion_tokens.labels(ctx.model).inc(ctx.usage.completion_tokens)
        self.generation_latency.labels(ctx.model).observe(ctx.latency_ms / 1000)
        ttft = ctx.time_to_first_token
        if ttft is not None:
            self.time_to_first_token.labels(ctx.model).observe(ttft)

    def render(self) -> bytes:
        return generate_latest(self.registry)
