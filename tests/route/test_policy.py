"""The routing decision table, target health (EWMA, breaker) and the cache, without a server."""

from __future__ import annotations

import random

import pytest

from ember.route.cache import CachedAnswer, ResponseCache, canonical_key
from ember.route.health import TargetHealth
from ember.route.policy import Target, plan_route
from ember.settings import RouteConfig

LOCAL = Target("local/small", "local", "small", local=True, trusted=True)
CHEAP = Target("cheap/m", "cheap", "m", local=False, input_price=0.1, output_price=0.2)
PRICEY = Target("pricey/m", "pricey", "m", local=False, input_price=5.0, output_price=15.0)
TRUSTED = Target("vpc/m", "vpc", "m", local=False, trusted=True, input_price=1.0)
ALL = [PRICEY, CHEAP, TRUSTED, LOCAL]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def measured(
    ms: float | None, *, open_breaker: bool = False, check_failed: bool = False
) -> TargetHealth:
    health = TargetHealth(ewma_ms=ms)
    if check_failed:
        health.record_check(False, "pricey's /health answered 503")
    if open_breaker:
        health.clock = Clock()
        for _ in range(health.failure_threshold):
            health.record_failure()
    return health


CASES = [
    # (name, route fields, sensitive, health by target, expected order, reason contains)
    ("configured order", {}, False, {}, ALL, "first eligible"),
    ("pii keeps local and trusted", {}, True, {}, [TRUSTED, LOCAL], "sensitive"),
    (
        "output ceiling",
        {"max_output_price": 1.0},
        False,
        {},
        [CHEAP, TRUSTED, LOCAL],
        "cost ceiling",
    ),
    ("input ceiling", {"max_input_price": 0.5}, False, {}, [CHEAP, LOCAL], "cost ceiling"),
    (
        "pii and ceiling",
        {"max_input_price": 0.5},
        True,
        {},
        [LOCAL],
        "sensitive: local/trusted only, cost ceiling",
    ),
    (
        "latency objective demotes the slow",
        {"latency_objective_ms": 100},
        False,
        {"pricey/m": measured(250.0), "cheap/m": measured(40.0)},
        [CHEAP, TRUSTED, LOCAL, PRICEY],
        "latency objective",
    ),
    (
        "unmeasured targets meet the objective",
        {"latency_objective_ms": 100},
        False,
        {"pricey/m": measured(None)},
        ALL,
        "first eligible",
    ),
    (
        "open breaker ranks last",
        {},
        False,
        {"pricey/m": measured(10.0, open_breaker=True)},
        [CHEAP, TRUSTED, LOCAL, PRICEY],
        "breaker open",
    ),
    (
        "weights pick the first",
        {"weights": {"local/small": 1.0}},
        False,
        {},
        [LOCAL, PRICEY, CHEAP, TRUSTED],
        "weighted",
    ),
    (
        "weights never override sensitivity",
        {"weights": {"pricey/m": 100.0}},
        True,
        {},
        [TRUSTED, LOCAL],
        "sensitive",
    ),
    ("nothing eligible", {"max_input_price": 0.0}, True, {}, [LOCAL], "sensitive"),
    (
        "a failed health check ranks last, after an open breaker",
        {},
        False,
        {
            "pricey/m": measured(10.0, check_failed=True),
            "cheap/m": measured(10.0, open_breaker=True),
        },
        [TRUSTED, LOCAL, CHEAP, PRICEY],
        "breaker open, health check failed",
    ),
]


@pytest.mark.parametrize(
    ("name", "fields", "sensitive", "health", "expected", "reason"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_routing_decisions(
    name: str,
    fields: dict[str, object],
    sensitive: bool,
    health: dict[str, TargetHealth],
    expected: list[Target],
    reason: str,
) -> None:
    route = RouteConfig(targets=[t.name for t in ALL], **fields)  # type: ignore[arg-type]
    plan = plan_route(route, ALL, sensitive=sensitive, health=health, rng=random.Random(1))
    assert list(plan.targets) == expected, name
    assert reason in plan.reason


A, B, C = (Target(f"{n}/m", n, "m", local=False) for n in "abc")

LOAD_CASES = [
    # (name, weights, in flight, latency EWMA ms, expected order)
    ("fewest in flight first", {}, {"a/m": 2, "b/m": 1}, {}, [C, B, A]),
    ("equal load: the fastest first", {}, {}, {"a/m": 90.0, "b/m": 30.0, "c/m": 60.0}, [B, C, A]),
    ("load before latency", {}, {"b/m": 1}, {"a/m": 90.0, "b/m": 30.0, "c/m": 60.0}, [C, A, B]),
    ("an unmeasured target is tried first", {}, {}, {"a/m": 90.0, "b/m": 30.0}, [C, B, A]),
    ("load per weight", {"a/m": 3.0, "b/m": 1.0, "c/m": 1.0}, {"a/m": 2, "b/m": 1}, {}, [C, A, B]),
    ("unweighted targets last", {"b/m": 1.0}, {"b/m": 5}, {}, [B, A, C]),
]


@pytest.mark.parametrize(
    ("name", "weights", "in_flight", "latency", "expected"),
    LOAD_CASES,
    ids=[case[0] for case in LOAD_CASES],
)
def test_load_balance_orders_the_first_rank(
    name: str,
    weights: dict[str, float],
    in_flight: dict[str, int],
    latency: dict[str, float],
    expected: list[Target],
) -> None:
    route = RouteConfig(targets=["a/m", "b/m", "c/m"], balance="load", weights=weights)
    health = {t.name: measured(latency.get(t.name)) for t in (A, B, C)}
    plan = plan_route(
        route, [A, B, C], sensitive=False, health=health, load=in_flight, rng=random.Random(1)
    )
    assert list(plan.targets) == expected, name
    assert "least load" in plan.reason


def test_load_balance_stays_inside_the_first_rank() -> None:
    """An idle target whose breaker is open is still the fail-over, not the first pick."""
    route = RouteConfig(targets=["a/m", "b/m", "c/m"], balance="load")
    health = {"a/m": measured(10.0, open_breaker=True), "b/m": measured(10.0)}
    plan = plan_route(route, [A, B, C], sensitive=False, health=health, load={"b/m": 4, "c/m": 3})
    assert list(plan.targets) == [C, B, A]


def test_load_balance_puts_local_targets_after_the_remote_ones() -> None:
    route = RouteConfig(targets=["local/small", "a/m", "b/m"], balance="load")
    plan = plan_route(route, [LOCAL, A, B], sensitive=False, load={"a/m": 3, "b/m": 1})
    assert list(plan.targets) == [B, A, LOCAL]
    sensitive = plan_route(route, [LOCAL, A, B], sensitive=True)
    assert list(sensitive.targets) == [LOCAL]


def test_idle_equal_targets_share_the_first_pick() -> None:
    route = RouteConfig(targets=["a/m", "b/m", "c/m"], balance="load")
    rng = random.Random(5)
    firsts = [plan_route(route, [A, B, C], sensitive=False, rng=rng).targets[0] for _ in range(900)]
    assert all(250 < firsts.count(t) < 350 for t in (A, B, C))


def test_no_eligible_target_gives_an_empty_plan() -> None:
    route = RouteConfig(targets=["cheap/m"])
    assert plan_route(route, [CHEAP], sensitive=True).targets == ()


def test_weights_draw_in_proportion() -> None:
    route = RouteConfig(targets=["cheap/m", "pricey/m"], weights={"cheap/m": 3, "pricey/m": 1})
    rng = random.Random(7)
    firsts = [
        plan_route(route, [CHEAP, PRICEY], sensitive=False, rng=rng).targets[0] for _ in range(2000)
    ]
    share = firsts.count(CHEAP) / len(firsts)
    assert 0.7 < share < 0.8


def test_ewma_weights_recent_latency() -> None:
    health = TargetHealth(alpha=0.5)
    health.record_success(100.0)
    health.record_success(300.0)
    assert health.ewma_ms == 200.0


def test_breaker_opens_then_probes_half_open() -> None:
    clock = Clock()
    health = TargetHealth(failure_threshold=3, cooldown_s=10.0, clock=clock)
    for _ in range(2):
        assert health.available()
        health.record_failure()
    assert health.state == "closed"
    health.record_failure()
    assert health.state == "open" and not health.available()
    clock.now = 9.9
    assert not health.available()
    clock.now = 10.0
    assert health.available()  # the one half-open probe
    assert health.state == "half_open"
    assert not health.available()  # no second probe while the first is out
    health.record_failure()
    assert health.state == "open" and not health.available()
    clock.now = 20.0
    assert health.available()
    health.record_success(50.0)
    assert health.state == "closed" and health.available() and health.available()


def answer(text: str, at: float, vector: tuple[float, ...] | None = None) -> CachedAnswer:
    return CachedAnswer(text, 3, 4, at, vector)


def test_cache_ttl_size_bound_and_tenants() -> None:
    clock = Clock()
    cache = ResponseCache(ttl_s=5, max_entries=2, clock=clock)
    request = {"messages": [{"role": "user", "content": "hi"}]}
    key_a = canonical_key("team-a", "m", request)
    key_b = canonical_key("team-b", "m", request)
    assert key_a != key_b  # never shared across tenants
    assert canonical_key("team-a", "m", dict(reversed(list(request.items())))) == key_a
    cache.put(key_a, "a", answer("A", 0.0))
    assert cache.get(key_a) is not None and cache.get(key_b) is None
    clock.now = 5.0
    assert cache.get(key_a) is None  # expired
    for i in range(3):
        cache.put(f"k{i}", "a", answer(str(i), clock.now))
    assert cache.get("k0") is None and cache.get("k2") is not None  # LRU bound of 2


def test_semantic_lookup_stays_in_its_scope() -> None:
    cache = ResponseCache(ttl_s=60, max_entries=10, clock=Clock())
    cache.put("k1", "tenant-a", answer("A", 0.0, (1.0, 0.0)))
    cache.put("k2", "tenant-b", answer("B", 0.0, (1.0, 0.01)))
    hit = cache.nearest("tenant-a", (0.99, 0.05), 0.95)
    assert hit is not None and hit.text == "A"
    assert cache.nearest("tenant-a", (0.0, 1.0), 0.95) is None
    assert cache.nearest("tenant-c", (1.0, 0.0), 0.5) is None


def test_breaker_threshold_and_cooldown_come_from_the_provider_settings() -> None:
    from ember.route.router import Router
    from ember.settings import ProviderConfig, Settings

    settings = Settings(
        providers={
            "touchy": ProviderConfig(
                base_url="http://127.0.0.1:9/v1", breaker_failures=1, breaker_cooldown_s=2.5
            ),
            "default": ProviderConfig(base_url="http://127.0.0.1:9/v1"),
        },
        routes={"r": RouteConfig(targets=["touchy/m", "default/m", "local/small"])},
    )
    health = Router(settings).health
    assert (health["touchy/m"].failure_threshold, health["touchy/m"].cooldown_s) == (1, 2.5)
    assert (health["default/m"].failure_threshold, health["default/m"].cooldown_s) == (3, 10.0)
    health["touchy/m"].record_failure()
    assert health["touchy/m"].state == "open"  # one failure was enough
