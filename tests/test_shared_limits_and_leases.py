"""Budgets, rate limits and job leases held in the database: exact under concurrency,
shared between two Store objects (two replicas' stand-ins) on SQLite and on PostgreSQL;
spending carried over from the request log when a home is upgraded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ember.errors import QuotaExceededError, RateLimitError
from ember.route.limits import Ledger
from ember.store import Store
from ember.store.keys import KeyRecord
from ember.store.ledger import carry_spending


def key(name: str, **limits: Any) -> KeyRecord:
    return KeyRecord(id=f"key_{name}", name=name, salt="s", hash="h", created_at=0.0, **limits)


@pytest.fixture
def replicas(database: str) -> Iterator[list[Ledger]]:
    stores = [Store(database), Store(database)]
    yield [Ledger(store) for store in stores]
    for store in stores:
        store.close()


def race(ledgers: list[Ledger], record: KeyRecord, attempts: int, **cost: Any) -> list[object]:
    """``attempts`` reservations at once, from 8 threads spread over the ledgers."""
    outcomes: list[object] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(n, attempts, 8):
            try:
                result: object = ledgers[i % len(ledgers)].reserve(record, **cost)
            except (RateLimitError, QuotaExceededError) as exc:
                result = exc
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_requests_per_minute_hold_across_replicas(replicas: list[Ledger]) -> None:
    outcomes = race(replicas, key("rpm", rpm=10), 40, usd=0.0, tokens=1)
    refused = [o for o in outcomes if isinstance(o, RateLimitError)]
    assert len(outcomes) - len(refused) == 10
    assert len(refused) == 30
    assert all(1 <= int(r.headers["retry-after"]) <= 61 for r in refused)


def test_a_daily_budget_holds_across_replicas_and_settling_frees_it(
    replicas: list[Ledger],
) -> None:
    record = key("budget", budget_usd_day=1.0)
    outcomes = race(replicas, record, 30, usd=0.15, tokens=10)
    held = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(held) == 6  # 6 x 0.15 = 0.90; a seventh would pass 1.00
    assert all(isinstance(o, QuotaExceededError) for o in outcomes if o not in held)
    # The requests cost less than their worst case: settling frees the rest for others.
    for reservation in held:
        replicas[1].settle(reservation, usd=0.05, tokens=10)  # type: ignore[arg-type]
    more = race(replicas, record, 30, usd=0.15, tokens=10)
    assert len([o for o in more if not isinstance(o, Exception)]) == 4  # 0.30 + 4 x 0.15


def test_tokens_per_minute_and_keys_without_limits(replicas: list[Ledger]) -> None:
    outcomes = race(replicas, key("tpm", tpm=1000), 20, usd=0.0, tokens=120)
    assert len([o for o in outcomes if not isinstance(o, Exception)]) == 8
    free = replicas[0].reserve(key("free"), usd=5.0, tokens=10**6)
    assert free.id is None  # no limit, no row written


def test_spending_before_the_upgrade_counts_in_budgets(database: str) -> None:
    store = Store(database)
    try:
        now = time.time()
        for tenant, cost, cached in (("old", 0.7, False), ("old", 0.2, True), ("other", 9, False)):
            store.log_request(
                endpoint="chat.completions",
                model="m",
                prompt_tokens=10,
                completion_tokens=5,
                latency_ms=1.0,
                status="ok",
                tenant=tenant,
                cost_usd=cost,
                cache_hit=cached,
            ).result(timeout=30)
        with store.engine.begin() as conn:  # what the migration does on an existing home
            conn.exec_driver_sql("DELETE FROM key_reservations")
            carry_spending(conn, now)
        ledger = Ledger(store)
        # Carried spending is not a request of the last minute.
        assert ledger.reserve(key("old", rpm=1), usd=0.0, tokens=1).id
        with pytest.raises(QuotaExceededError, match=r"0\.7 of 1 spent"):
            ledger.reserve(key("old", budget_usd_day=1.0), usd=0.5, tokens=1)
        assert ledger.reserve(key("old", budget_usd_day=1.0), usd=0.3, tokens=1).id
    finally:
        store.close()


def test_a_lease_has_one_holder_until_it_lapses(database: str) -> None:
    one, two = Store(database), Store(database)
    try:
        claims: list[str] = []

        def claim(holder: str, store: Store) -> None:
            if store.leases.claim("fine_tuning", "ftjob-1", holder, ttl_s=5, now=1000.0):
                claims.append(holder)

        threads = [
            threading.Thread(target=claim, args=(f"replica-{n}", (one, two)[n % 2]))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(claims) == 1  # exactly one replica runs the job
        holder = claims[0]
        assert two.leases.holder("fine_tuning", "ftjob-1", now=1001.0) == holder
        assert one.leases.claim("fine_tuning", "ftjob-1", holder, ttl_s=5, now=1002.0)  # ours
        assert not two.leases.claim("fine_tuning", "ftjob-1", "other", ttl_s=5, now=1006.0)
        assert one.leases.renew(holder, ttl_s=5, now=1006.0) == 1  # renewed until 1011
        assert not two.leases.claim("fine_tuning", "ftjob-1", "other", ttl_s=5, now=1010.0)
        # The holder died: nobody renews; after the lease lapses another replica takes over.
        assert two.leases.claim("fine_tuning", "ftjob-1", "other", ttl_s=5, now=1012.0)
        assert one.leases.renew(holder, ttl_s=5, now=1012.0) == 0
        one.leases.release("fine_tuning", "ftjob-1", holder)  # not the holder: no effect
        assert two.leases.holder("fine_tuning", "ftjob-1", now=1013.0) == "other"
        two.leases.release("fine_tuning", "ftjob-1", "other")
        assert one.leases.holder("fine_tuning", "ftjob-1", now=1013.0) is None
    finally:
        one.close()
        two.close()
