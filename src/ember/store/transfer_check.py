"""Is a copy the same as its source? (``ember db migrate`` and ``ember db verify``)

Four checks, each a row of the report:

* every table: the same row count, and the same SHA-256 over its rows in primary-key order,
  values written the same way whichever database they came from (integers in decimal,
  floats by ``repr``, text as JSON strings, bytes in hex, NULL as ``null``). Text keys are
  ordered by their bytes on both sides (SQLite's BINARY collation, PostgreSQL's ``"C"``),
  whatever collation the PostgreSQL database has;
* every vector store's vectors in every ``chunk_vectors_<dim>`` table: the same chunk ids
  and the same float32 values (SHA-256 over both);
* the audit chain: it verifies on both, to the same head hash and length;
* every vector store: a search with a few of its own vectors finds the same nearest chunk
  on both (``ChunkTables.nearest``: sqlite-vec's exact scan, pgvector's HNSW index); how
  many of the top 5 agree is shown too, not required, as HNSW is approximate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ember.errors import ServiceUnavailableError
from ember.store.database import Store
from ember.store.transfer import TableSpec, VectorSpec, source_tables, source_vectors

_SEARCH_K = 5


@dataclass(frozen=True)
class Check:
    """One compared thing: what each side says, and whether they agree."""

    kind: str  # "table", "vectors", "audit", "search"
    name: str
    source: str
    target: str
    ok: bool
    warning: str | None = None


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "x" + bytes(value).hex()
    return json.dumps(str(value), ensure_ascii=False)


def rows_digest(rows: Iterable[Any]) -> tuple[int, str]:
    """(row count, SHA-256) of rows, each value written the same way on both databases."""
    digest, count = hashlib.sha256(), 0
    for row in rows:
        digest.update((",".join(_text(v) for v in row) + "\n").encode("utf-8"))
        count += 1
    return count, digest.hexdigest()


def table_digest(conn: Connection, spec: TableSpec) -> tuple[int, str]:
    """(rows, SHA-256) of one table in primary-key order (bytewise for text keys)."""
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in spec.columns)
    order = ", ".join(
        f'{quote(k)} COLLATE "C"'
        if conn.dialect.name == "postgresql" and _is_text(conn, spec, k)
        # SQLite compares text bytewise (BINARY) unless a column says otherwise
        else quote(k)
        for k in spec.key
    )
    result = conn.execution_options(stream_results=True, yield_per=2000).execute(
        text(f"SELECT {columns} FROM {quote(spec.name)} ORDER BY {order}")
    )
    return rows_digest(result)


def _is_text(conn: Connection, spec: TableSpec, column: str) -> bool:
    kind = conn.execute(
        text(
            "SELECT data_type FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = :t AND column_name = :c"
        ),
        {"t": spec.name, "c": column},
    ).scalar()
    return kind in ("text", "character varying", "character")


def _vectors_digest(store: Store, spec: VectorSpec) -> tuple[int, str, np.ndarray]:
    ids, vectors = store.chunks.store_vectors(spec.store_id, spec.dimensions)
    digest = hashlib.sha256(ids.astype("<i8").tobytes())
    digest.update(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    return len(ids), digest.hexdigest(), vectors


def _nearest(store: Store, spec: VectorSpec, query: np.ndarray) -> list[int]:
    hits = store.chunks.nearest(spec.store_id, query, _SEARCH_K)
    # equal distances may come in either order: compare them by id
    return [chunk_id for chunk_id, _d in sorted(hits, key=lambda h: (round(h[1], 5), h[0]))]


def _search_check(source: Store, target: Store, spec: VectorSpec, vectors: np.ndarray) -> Check:
    """A few of the store's own vectors as queries: the nearest chunk must be the same on
    both. The rest of the top k is shown, not required: pgvector's HNSW index is
    approximate, and among vectors at nearly equal distances it may rank others."""
    queries = sorted({0, len(vectors) // 2, len(vectors) - 1})
    first, overlap = 0, 0
    for i in queries:
        mine, theirs = _nearest(source, spec, vectors[i]), _nearest(target, spec, vectors[i])
        first += bool(mine) and mine[:1] == theirs[:1]
        overlap += len(set(mine) & set(theirs))
    k = min(_SEARCH_K, len(vectors))
    return Check(
        "search",
        spec.store_id,
        f"{len(queries)} of its vectors as queries, top {k}",
        f"nearest the same {first}/{len(queries)}, top {k} {overlap}/{k * len(queries)}",
        first == len(queries),
    )


def _short(digest: str) -> str:
    return digest[:12]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def compare(source: Store, target: Store) -> list[Check]:
    """Compare the source (SQLite) with the target: every table, vector, the audit chain
    and a search per vector store."""
    try:
        return _compare(source, target)
    except DBAPIError as exc:
        raise ServiceUnavailableError(
            f"reading the databases to compare them failed: {str(exc.orig).strip()}"
        ) from exc


def _compare(source: Store, target: Store) -> list[Check]:
    checks: list[Check] = []
    with source.engine.connect() as conn:
        tables, _skipped = source_tables(conn)
    with source.engine.connect() as src, target.engine.connect() as dst:
        for spec in tables:
            s_rows, s_sum = table_digest(src, spec)
            t_rows, t_sum = table_digest(dst, spec)
            checks.append(
                Check(
                    "table",
                    spec.name,
                    f"{_count(s_rows, 'row')} {_short(s_sum)}",
                    f"{_count(t_rows, 'row')} {_short(t_sum)}",
                    (s_rows, s_sum) == (t_rows, t_sum),
                )
            )
    searches: list[Check] = []
    for vectors_spec, _n in source_vectors(source.chunks):
        s_rows, s_sum, vectors = _vectors_digest(source, vectors_spec)
        t_rows, t_sum, _ = _vectors_digest(target, vectors_spec)
        checks.append(
            Check(
                "vectors",
                f"{vectors_spec.table} {vectors_spec.store_id}",
                f"{_count(s_rows, 'vector')} {_short(s_sum)}",
                f"{_count(t_rows, 'vector')} {_short(t_sum)}",
                (s_rows, s_sum) == (t_rows, t_sum),
            )
        )
        searches.append(_search_check(source, target, vectors_spec, vectors))
    s_audit, t_audit = source.verify_audit(), target.verify_audit()

    def audit_text(result: Any) -> str:
        state = "verifies" if result.ok else f"broken at {result.first_bad_seq}"
        return f"{_count(result.checked, 'record')}, {state}, head {_short(result.head_hash)}"

    checks.append(
        Check(
            "audit",
            "audit_log chain",
            audit_text(s_audit),
            audit_text(t_audit),
            s_audit == t_audit,
            None
            if s_audit.ok
            else "the source's own audit chain does not verify (`ember audit verify`)",
        )
    )
    return checks + searches
