"""Where chunk vectors live: sqlite-vec on SQLite, pgvector on PostgreSQL.

One table per vector dimension, ``chunk_vectors_<dim>``, created on first use because its
shape depends on the embedder; a row per chunk, keyed by the chunk's id, with its vector
store's id so a search stays inside one store.

* SQLite: a sqlite-vec ``vec0`` virtual table (cosine distance, partitioned by store) whose
  rowid is the chunk id.
* PostgreSQL: a pgvector ``vector(<dim>)`` column with an HNSW index (cosine), and a store
  filter that pgvector's iterative index scan keeps exact in count (``hnsw.iterative_scan``).

:class:`ember.store.chunks.ChunkTables` is the only caller; both classes answer the same
questions with the same shapes, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, Engine, text

Rows = list[tuple[int, float]]

# pgvector indexes at most 2,000 dimensions with HNSW; larger vectors are searched exactly.
_HNSW_MAX_DIMENSIONS = 2000


def vector_table(dimensions: int) -> str:
    if not 1 <= int(dimensions) <= 8192:
        raise ValueError("bad vector dimension")
    return f"chunk_vectors_{int(dimensions)}"


def _marks(ids: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


class VectorIndex(Protocol):
    def create(self, conn: Connection, dimensions: int) -> str: ...
    def tables(self, conn: Connection) -> list[str]: ...
    def delete(self, conn: Connection, table: str, chunk_ids: Sequence[int]) -> None: ...
    def insert(
        self, conn: Connection, table: str, store_id: str, rows: Sequence[tuple[int, np.ndarray]]
    ) -> None: ...
    def vectors(self, conn: Connection, table: str, store_id: str) -> list[tuple[int, bytes]]: ...
    def nearest(
        self, conn: Connection, table: str, store_id: str, query: np.ndarray, k: int
    ) -> Rows: ...
    def nearest_among(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int], k: int
    ) -> Rows: ...
    def distances(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int]
    ) -> Rows: ...


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


class SqliteVecIndex:
    """Vectors in sqlite-vec ``vec0`` tables (little-endian float32 blobs)."""

    def create(self, conn: Connection, dimensions: int) -> str:
        table = vector_table(dimensions)
        conn.execute(
            text(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
                "vector_store_id TEXT PARTITION KEY,"
                f" embedding FLOAT[{int(dimensions)}] distance_metric=cosine)"
            )
        )
        return table

    def tables(self, conn: Connection) -> list[str]:
        return list(
            conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name GLOB 'chunk_vectors_[0-9]*' AND sql LIKE 'CREATE VIRTUAL%'"
                )
            ).scalars()
        )

    def delete(self, conn: Connection, table: str, chunk_ids: Sequence[int]) -> None:
        conn.execute(text(f"DELETE FROM {table} WHERE rowid IN ({_marks(chunk_ids)})"))

    def insert(
        self, conn: Connection, table: str, store_id: str, rows: Sequence[tuple[int, np.ndarray]]
    ) -> None:
        """(chunk id, vector) rows of one store, in one executemany."""
        conn.execute(
            text(f"INSERT INTO {table} (rowid, vector_store_id, embedding) VALUES (:id, :vs, :e)"),
            [{"id": chunk_id, "vs": store_id, "e": _blob(vector)} for chunk_id, vector in rows],
        )

    def vectors(self, conn: Connection, table: str, store_id: str) -> list[tuple[int, bytes]]:
        rows = conn.execute(
            text(f"SELECT rowid, embedding FROM {table} WHERE vector_store_id = :vs"),
            {"vs": store_id},
        ).all()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def nearest(
        self, conn: Connection, table: str, store_id: str, query: np.ndarray, k: int
    ) -> Rows:
        rows = conn.execute(
            text(
                f"SELECT v.rowid, v.distance FROM {table} v WHERE v.embedding MATCH :q"
                " AND k = :k AND v.vector_store_id = :vs"
            ),
            {"q": _blob(query), "k": k, "vs": store_id},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def nearest_among(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int], k: int
    ) -> Rows:
        rows = conn.execute(
            text(
                f"SELECT rowid, vec_distance_cosine(embedding, :q) AS d FROM {table}"
                f" WHERE rowid IN ({_marks(chunk_ids)}) ORDER BY d LIMIT :k"
            ),
            {"q": _blob(query), "k": k},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def distances(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int]
    ) -> Rows:
        rows = conn.execute(
            text(
                f"SELECT rowid, vec_distance_cosine(embedding, :q) FROM {table}"
                f" WHERE rowid IN ({_marks(chunk_ids)})"
            ),
            {"q": _blob(query)},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]


def _literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector: ``[0.1,0.2,...]`` (float32 values, exactly)."""
    values = np.asarray(vector, dtype=np.float32)
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def _from_literal(value: Any) -> bytes:
    if isinstance(value, str):
        return np.array(value.strip("[]").split(","), dtype="<f4").tobytes()
    return _blob(np.asarray(value))


class PgVectorIndex:
    """Vectors in pgvector ``vector(<dim>)`` columns with an HNSW cosine index."""

    def create(self, conn: Connection, dimensions: int) -> str:
        table = vector_table(dimensions)
        # Replicas may create the same table at once: one at a time, in this transaction.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": table})
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {table} (chunk_id BIGINT PRIMARY KEY,"
                f" vector_store_id TEXT NOT NULL, embedding vector({int(dimensions)}) NOT NULL)"
            )
        )
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_store ON {table} (vector_store_id)"))
        if dimensions <= _HNSW_MAX_DIMENSIONS:
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table}"
                    " USING hnsw (embedding vector_cosine_ops)"
                )
            )
        return table

    def tables(self, conn: Connection) -> list[str]:
        names = conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name LIKE 'chunk\\_vectors\\_%'"
            )
        ).scalars()
        return [name for name in names if name.rsplit("_", 1)[1].isdigit()]

    def delete(self, conn: Connection, table: str, chunk_ids: Sequence[int]) -> None:
        conn.execute(text(f"DELETE FROM {table} WHERE chunk_id IN ({_marks(chunk_ids)})"))

    def insert(
        self, conn: Connection, table: str, store_id: str, rows: Sequence[tuple[int, np.ndarray]]
    ) -> None:
        """(chunk id, vector) rows of one store, in one executemany (psycopg pipelines it)."""
        conn.execute(
            text(
                f"INSERT INTO {table} (chunk_id, vector_store_id, embedding)"
                " VALUES (:id, :vs, CAST(:e AS vector))"
            ),
            [{"id": chunk_id, "vs": store_id, "e": _literal(vector)} for chunk_id, vector in rows],
        )

    def vectors(self, conn: Connection, table: str, store_id: str) -> list[tuple[int, bytes]]:
        rows = conn.execute(
            text(f"SELECT chunk_id, embedding::text FROM {table} WHERE vector_store_id = :vs"),
            {"vs": store_id},
        ).all()
        return [(int(r[0]), _from_literal(r[1])) for r in rows]

    def nearest(
        self, conn: Connection, table: str, store_id: str, query: np.ndarray, k: int
    ) -> Rows:
        # The store filter is applied while the HNSW index is walked, not after it, so a
        # small store among large ones still gets k hits (pgvector 0.8's iterative scan).
        conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(40, 2 * int(k))}"))
        rows = conn.execute(
            text(
                "SELECT chunk_id, d FROM (SELECT chunk_id, embedding <=> CAST(:q AS vector) AS d"
                f" FROM {table} WHERE vector_store_id = :vs ORDER BY d LIMIT :k) hits ORDER BY d"
            ),
            {"q": _literal(query), "k": k, "vs": store_id},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def nearest_among(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int], k: int
    ) -> Rows:
        rows = conn.execute(
            text(
                f"SELECT chunk_id, embedding <=> CAST(:q AS vector) AS d FROM {table}"
                f" WHERE chunk_id IN ({_marks(chunk_ids)}) ORDER BY d LIMIT :k"
            ),
            {"q": _literal(query), "k": k},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def distances(
        self, conn: Connection, table: str, query: np.ndarray, chunk_ids: Sequence[int]
    ) -> Rows:
        rows = conn.execute(
            text(
                f"SELECT chunk_id, embedding <=> CAST(:q AS vector) FROM {table}"
                f" WHERE chunk_id IN ({_marks(chunk_ids)})"
            ),
            {"q": _literal(query)},
        ).all()
        return [(int(r[0]), float(r[1])) for r in rows]


def vector_index(engine: Engine) -> VectorIndex:
    """The vector index for the engine's database."""
    if engine.dialect.name == "postgresql":
        return PgVectorIndex()
    return SqliteVecIndex()
