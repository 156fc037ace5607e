"""Prometheus metrics, one registry per app (so tests can build several apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ember.core.request_context import RequestContext
    from ember.engines.base import BatchStats
    from ember.route.health import TargetHealth

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters and histograms exposed on ``GET /metrics``."""

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica  # every sample is labelled with it (replicas behind one LB)
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

    def watch_batches(self, stats: Callable[[], Iterable[tuple[str, BatchStats]]]) -> None:
        """Expose the batching engines' scheduler state, read at every scrape."""
        self.registry.register(BatchCollector(stats))

    def watch_targets(self, stats: Callable[[], Iterable[tuple[str, TargetHealth, int]]]) -> None:
        """Expose the remote route targets' health and load, read at every scrape."""
        self.registry.register(TargetCollector(stats))

    def render(self) -> bytes:
        text = generate_latest(self.registry)
        return text if self.replica is None else with_label(text, "replica", self.replica)


def with_label(exposition: bytes, name: str, value: str) -> bytes:
    """Prometheus text exposition with ``name="value"`` added to every sample."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    label = f'{name}="{escaped}"'.encode()
    lines = []
    for line in exposition.split(b"\n"):
        if line and not line.startswith(b"#"):
            brace, space = line.find(b"{"), line.find(b" ")
            if brace != -1 and brace < space:  # name{labels} value
                rest = line[brace + 1 :]
                comma = b"" if rest.startswith(b"}") else b","
                line = line[: brace + 1] + label + comma + rest
            else:  # name value
                line = line[:space] + b"{" + label + b"}" + line[space:]
        lines.append(line)
    return b"\n".join(lines)


class BatchCollector(Collector):
    """Queue depth, active sequences, batch size per step, tokens/s and prefix-cache hits."""

    def __init__(self, stats: Callable[[], Iterable[tuple[str, BatchStats]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        queued = GaugeMetricFamily(
            "ember_batch_queue_depth", "Requests waiting for a decoding slot.", labels=["model"]
        )
        active = GaugeMetricFamily(
            "ember_batch_active_sequences", "Sequences being decoded.", labels=["model"]
        )
        rate = GaugeMetricFamily(
            "ember_batch_decode_tokens_per_second",
            "Tokens generated per second over the last 10 s, all sequences together.",
            labels=["model"],
        )
        generated = CounterMetricFamily(
            "ember_batch_generated_tokens", "Tokens sampled by the scheduler.", labels=["model"]
        )
        read = CounterMetricFamily(
            "ember_batch_prompt_tokens_read",
            "Prompt tokens evaluated (not counting prefix-cache hits).",
            labels=["model"],
        )
        steps = HistogramMetricFamily(
            "ember_batch_step_sequences",
            "Sequences advanced by one llama_decode step.",
            labels=["model"],
        )
        lookups = CounterMetricFamily(
            "ember_prefix_cache_lookups",
            "Requests admitted, by whether a cached prefix was reused.",
            labels=["model", "result"],
        )
        reused = CounterMetricFamily(
            "ember_prefix_cache_reused_tokens",
            "Prompt tokens not re-read thanks to the prefix cache.",
            labels=["model"],
        )
        hit_rate = GaugeMetricFamily(
            "ember_prefix_cache_hit_rate",
            "Share of admitted requests that reused a cached prefix.",
            labels=["model"],
        )
        cached = GaugeMetricFamily(
            "ember_prefix_cache_tokens", "Tokens held by the prefix cache.", labels=["model"]
        )
        for model, stats in self._stats():
            queued.add_metric([model], stats.queued)
            active.add_metric([model], stats.active)
            rate.add_metric([model], stats.tokens_per_second)
            generated.add_metric([model], stats.generated_tokens)
            read.add_metric([model], stats.prompt_tokens_read)
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*map(str, stats.step_size_buckets), "+Inf"), stats.step_size_counts, strict=True
            ):
                cumulative += count
                buckets.append((bound, cumulative))
            steps.add_metric([model], buckets, stats.step_size_sum)
            lookups.add_metric([model, "hit"], stats.cache_hits)
            lookups.add_metric([model, "miss"], stats.cache_lookups - stats.cache_hits)
            reused.add_metric([model], stats.cache_reused_tokens)
            hit_rate.add_metric([model], stats.cache_hits / max(1, stats.cache_lookups))
            cached.add_metric([model], stats.cache_tokens)
        yield from (queued, active, rate, generated, read, steps, lookups, reused, hit_rate, cached)


class TargetCollector(Collector):
    """Per remote route target: in rotation or not, breaker, requests in flight, latency."""

    def __init__(self, stats: Callable[[], Iterable[tuple[str, TargetHealth, int]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "ember_route_target_up",
            "1 when the target's last active health check passed (or none ran), else 0.",
            labels=["target"],
        )
        breaker = GaugeMetricFamily(
            "ember_route_target_breaker_open",
            "1 while the target's circuit breaker is open or probing.",
            labels=["target"],
        )
        in_flight = GaugeMetricFamily(
            "ember_route_target_in_flight",
            "Requests this replica has open on the target.",
            labels=["target"],
        )
        latency = GaugeMetricFamily(
            "ember_route_target_latency_seconds",
            "The target's measured latency to the first token (EWMA).",
            labels=["target"],
        )
        for target, health, count in self._stats():
            up.add_metric([target], 1.0 if health.checked_ok else 0.0)
            breaker.add_metric([target], 0.0 if health.state == "closed" else 1.0)
            in_flight.add_metric([target], count)
            if health.ewma_ms is not None:
                latency.add_metric([target], health.ewma_ms / 1000)
        yield from (up, breaker, in_flight, latency)
