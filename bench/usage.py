"""How fast a usage report answers on a big request log (issue 19: under 1 s at 1,000,000 rows).

Fills a fresh store's request log with ``--rows`` rows spread over the last 60 days (20 keys,
6 models, 4 route targets, some cache hits and refusals), written through the log writer's
own ``write_batch`` so that ``usage_daily`` is kept the way a server keeps it. Then times
each report the console's usage page asks for (last 30 days), summed from ``usage_daily``
(what ``GET /v1/ember/usage`` does) and from the raw log (what it did before), checks the two
agree. Then starts ``ember serve`` on that database (no models) and times the same reports
as the console gets them: ``GET /v1/ember/usage`` with the admin key over loopback HTTP. Prints
a table with the ratio of the raw log's time to the served one's.

    python bench/usage.py                       # SQLite in a temporary directory
    python bench/usage.py --database postgresql://user@host/db   # an empty database
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
gw = importlib.import_module("gateway")  # bench/gateway.py: free_port, process

from ember.store import Store  # noqa: E402
from ember.store.writer import Pending, write_batch  # noqa: E402

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


def timed(
    store: Store, groups: list[str], *, since: float, raw: bool, repeat: int
) -> tuple[float, list]:
    times, rows = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = store.usage_report(groups, since=since, raw=raw)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


ADMIN = "admin-" + secrets.token_hex(16)


@contextmanager
def served(home: Path, database: str | None) -> Iterator[str]:
    """``ember serve`` with no models on ``database`` (or the SQLite file in ``home``)."""
    config = f'preload = []\nlog_level = "warning"\nadmin_key = "{ADMIN}"\n'
    if database:
        config += f"database_url = {json.dumps(database)}\n"
    (home / "ember.toml").write_text(config)
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    port = gw.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "ember", "serve", "--port", str(port)]
    with gw.process(cmd, env=env, ready=f"{base}/readyz", log=home / "serve.log"):
        yield base


def timed_http(base: str, groups: str, *, repeat: int) -> tuple[float, list]:
    times, rows = [], []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        client.get("/v1/ember/usage", params={"group_by": groups})  # opens the connection
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get("/v1/ember/usage", params={"group_by": groups, "days": 30})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            rows = response.json()["data"]
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = Store(args.database or home / "ember.db")
        results = []
        try:
            backend = store.engine.dialect.name
            print(f"writing {args.rows:,} request-log rows ({backend})...", flush=True)
            print(f"  {fill(store, args.rows):.1f} s")
            for groups in GROUPS:
                names = groups.split(",")
                since = time.time() - 30 * 86400  # one window for both: rows age out
                fast, rows = timed(store, names, since=since, raw=False, repeat=args.repeat)
                slow, expected = timed(store, names, since=since, raw=True, repeat=args.repeat)
                assert [r.group for r in rows] == [r.group for r in expected]
                assert [r.requests for r in rows] == [r.requests for r in expected]
                results.append((groups, rows, fast, slow))
        finally:
            store.close()
        print("starting ember serve on that database...", flush=True)
        with served(home, args.database) as base:
            print(
                f"\n{'group_by':<24} {'groups':>7} {'usage_daily ms':>15} {'raw log ms':>11}"
                f" {'HTTP ms':>8} {'raw / HTTP':>11}"
            )
            for groups, rows, fast, slow in results:
                http, answered = timed_http(base, groups, repeat=args.repeat)
                assert len(answered) == len(rows), (groups, len(answered), len(rows))
                # The window starts later than the store-level one did: a few rows may age out.
                expected = sum(r.requests for r in rows)
                assert abs(sum(r["requests"] for r in answered) - expected) <= expected / 1000
                print(
                    f"{groups:<24} {len(rows):>7} {fast * 1000:>15.1f} {slow * 1000:>11.1f}"
                    f" {http * 1000:>8.1f} {slow / http:>10.1f}x"
                )
            worst = max(timed_http(base, g, repeat=1)[0] for g, *_ in results)
            print(f"\nslowest report over HTTP: {worst * 1000:.0f} ms (target: under 1000 ms)")


if __name__ == "__main__":
    main()
