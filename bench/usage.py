"""How fast a usage report answers on a big request log (issue 19: under 1 s at 1,000,000 rows).

Fills a fresh store's request log with ``--rows`` rows spread over the last 60 days (20 keys,
6 models, 4 route targets, some cache hits and refusals), written through the log writer's
own ``write_batch`` so that ``usage_daily`` is kept the way a server keeps it. Then times
each report the console's usage page asks for (last 30 days), summed from ``usage_daily``
(what ``GET /v1/ember/usage`` does) and from the raw log (what it did before), checks the two
agree and prints a table.

    python bench/usage.py                       # SQLite in a temporary directory
    python bench/usage.py --database postgresql://user@host/db   # an empty database
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from ember.store import Store
from ember.store.writer import Pending, write_batch

GROUPS = ["day", "key", "model", "target", "key,model", "day,model", "key,model,target,day"]
BATCH = 20_000


def fill(store: Store, rows: int, *, seed: int = 7) -> float:
    """Write ``rows`` request-log rows; returns the seconds it took."""
    rng = random.Random(seed)
    now = time.time()
    tenants = [f"team-{i:02d}" for i in range(20)] + [None]
    models = ["default", "gpt-4o-mini", "qwen-7b", "llama-3-8b", "echo", "paid"]
    targets = ["local/default", "cloud/gpt-k", "cloud/gpt-h", None]
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        batch = []
        for _ in range(min(BATCH, rows - first)):
            refused = rng.random() < 0.05
            batch.append(
                Pending(
                    request_log={
                        "created_at": now - rng.random() * 60 * 86400,
                        "endpoint": "/v1/chat/completions",
                        "model": rng.choice(models),
                        "prompt_tokens": rng.randint(5, 800),
                        "completion_tokens": 0 if refused else rng.randint(1, 400),
                        "latency_ms": rng.uniform(5, 3000),
                        "status": "refused" if refused else "ok",
                        "tenant": rng.choice(tenants),
                        "target": rng.choice(targets),
                        "cost_usd": rng.choice([0.0, rng.uniform(0, 0.01)]),
                        "cache_hit": int(rng.random() < 0.1),
                        "route_reason": None,
                    }
                )
            )
        with store.session() as session:
            write_batch(session, batch)
    return time.perf_counter() - started


def timed(store: Store, groups: list[str], *, raw: bool, repeat: int) -> tuple[float, list]:
    since = time.time() - 30 * 86400
    times, rows = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = store.usage_report(groups, since=since, raw=raw)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.database or Path(tmp) / "ember.db")
        try:
            backend = store.engine.dialect.name
            print(f"writing {args.rows:,} request-log rows ({backend})...", flush=True)
            print(f"  {fill(store, args.rows):.1f} s")
            print(f"\n{'group_by':<24} {'groups':>7} {'usage_daily ms':>15} {'raw log ms':>11}")
            for groups in GROUPS:
                names = groups.split(",")
                fast, rows = timed(store, names, raw=False, repeat=args.repeat)
                slow, expected = timed(store, names, raw=True, repeat=args.repeat)
                assert [r.group for r in rows] == [r.group for r in expected]
                assert [r.requests for r in rows] == [r.requests for r in expected]
                print(f"{groups:<24} {len(rows):>7} {fast * 1000:>15.1f} {slow * 1000:>11.1f}")
        finally:
            store.close()


if __name__ == "__main__":
    main()
