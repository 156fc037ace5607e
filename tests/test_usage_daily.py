"""``usage_daily`` (``ember.store.usage``): a usage report read from the daily sums equals the
one summed from the raw request log, for every grouping and window, on both backends; and
the migration that adds the table fills it from a log that was there before."""

from __future__ import annotations

import itertools
import random
import time

from sqlalchemy import text

from ember.store import Store
from ember.store.usage import UsageRow, backfill_daily
from ember.store.writer import Pending, write_batch

GROUPINGS = [
    [],
    *([g] for g in ("key", "model", "target", "day")),
    ["key", "model"],
    ["day", "model"],
    ["key", "model", "target", "day"],
]


def log_rows(count: int, *, now: float, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        refused = rng.random() < 0.2
        rows.append(
            {
                # Ten days back, so that windows start mid-day and cross midnights.
                "created_at": now - rng.random() * 10 * 86400,
                "endpoint": "/v1/chat/completions",
                "model": rng.choice(["echo", "default", "paid"]),
                "prompt_tokens": rng.randint(1, 50),
                "completion_tokens": 0 if refused else rng.randint(1, 50),
                "latency_ms": rng.uniform(1, 100),
                "status": "refused" if refused else rng.choice(["ok", "error"]),
                "tenant": rng.choice(["team-a", "team-b", None]),
                "target": rng.choice(["local/echo", "cloud/gpt-k", None]),
                "cost_usd": rng.choice([0.0, rng.uniform(0, 0.01)]),
                "cache_hit": int(rng.random() < 0.3),
                "route_reason": None,
            }
        )
    return rows


def as_tuples(rows: list[UsageRow]) -> list[tuple[object, ...]]:
    return [
        (
            tuple(sorted(r.group.items())),
            r.requests,
            r.prompt_tokens,
            r.completion_tokens,
            round(r.cost_usd, 9),
            r.cache_hits,
            r.refusals,
            round(r.avg_latency_ms, 6),
        )
        for r in rows
    ]


def assert_reports_agree(store: Store, now: float) -> None:
    windows = [None, now - 3600, now - 2.5 * 86400, now - 30 * 86400]
    for groups, since, tenant in itertools.product(GROUPINGS, windows, [None, "team-a"]):
        daily = store.usage_report(groups, since=since, tenant=tenant)  # type: ignore[arg-type]
        raw = store.usage_report(groups, since=since, tenant=tenant, raw=True)  # type: ignore[arg-type]
        assert as_tuples(daily) == as_tuples(raw), (groups, since, tenant)
        assert daily, (groups, since, tenant)


def test_the_daily_sums_equal_the_raw_log(database: str) -> None:
    store = Store(database)
    try:
        now = time.time()
        rows = log_rows(3000, now=now)
        for start in range(0, len(rows), 700):  # batches, as the log writer groups them
            with store.session() as session:
                write_batch(session, [Pending(request_log=r) for r in rows[start : start + 700]])
        assert_reports_agree(store, now)
        total = store.usage_report([])[0]
        assert total.requests == 3000
        assert total.refusals == sum(r["status"] == "refused" for r in rows) > 0
        assert total.cache_hits == sum(int(r["cache_hit"]) for r in rows) > 0  # type: ignore[call-overload]
        # The report the API serves uses the sums: a row written to the log alone is not
        # in it until the writer adds it (the writer is the only way rows get there).
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM usage_daily WHERE tenant = 'team-a'"))
        keys = {r.group["key"] for r in store.usage_report(["key"])}
        assert "team-a" not in keys
    finally:
        store.close()


def test_the_migration_fills_the_sums_from_an_existing_log(database: str) -> None:
    store = Store(database)
    try:
        now = time.time()
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO request_log (created_at, endpoint, model, prompt_tokens,"
                    " completion_tokens, latency_ms, status, tenant, target, cost_usd,"
                    " cache_hit, route_reason) VALUES (:created_at, :endpoint, :model,"
                    " :prompt_tokens, :completion_tokens, :latency_ms, :status, :tenant,"
                    " :target, :cost_usd, :cache_hit, :route_reason)"
                ),
                log_rows(1500, now=now, seed=11),
            )
            assert conn.execute(text("SELECT COUNT(*) FROM usage_daily")).scalar_one() == 0
            backfill_daily(conn)
        assert_reports_agree(store, now)
    finally:
        store.close()
