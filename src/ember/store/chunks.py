"""Chunks and their vectors: written by ingestion, read by search.

* ``chunks``: a file's chunks by ``position`` (unique per store and file), with page,
  heading, token count, BM25 terms and a content hash. Chunking is deterministic, so a
  resumed ingestion inserts only the positions that are missing.
* ``chunk_vectors_<dim>``: the chunks' vectors, keyed by chunk id, in sqlite-vec or pgvector
  (``ember.store.vector_index``); created on first use for the embedder's dimension. A
  batch of chunks and their vectors is written in one transaction, and only while the file's
  ingestion (``ember.store.vectors``) is still ``in_progress``.

Search reads only chunks of ``completed`` files, through a per-thread DB-API connection
where it can (see :meth:`ChunkTables.chunks`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from ember.store.vector_index import vector_index, vector_table


@dataclass(frozen=True)
class NewChunk:
    position: int
    text: str
    page: int | None
    heading: str | None
    tokens: int
    terms: str
    content_hash: str


def as_dicts(result: Any) -> list[dict[str, Any]]:
    """SQLAlchemy result rows as plain dicts."""
    return [dict(row._mapping) for row in result]


class ChunkTables:
    """Reads and writes of the chunk and vector tables (reached as ``Store.chunks``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.index = vector_index(engine)
        self._vec_tables: set[int] = set()
        self._watcher: Any = None
        self._watcher_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []

    def data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version`` on a read-only connection kept for it: it changes
        whenever any other connection, in this process or another, commits. Searches use it to
        skip the chunk-version query while nothing was written. None when unavailable."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        with self._watcher_lock:
            if self._watcher is None:
                self._watcher = self.engine.dialect.loaded_dbapi.connect(
                    database, check_same_thread=False
                )
            return int(self._watcher.execute("PRAGMA data_version").fetchone()[0])

    def _reader(self) -> Any | None:
        """This thread's own DB-API connection (SQLite files only), for the reads a
        search makes: they skip SQLAlchemy's per-statement cost, about half a millisecond,
        which is most of a search at RGB size. None elsewhere (use the engine)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self.engine.dialect.loaded_dbapi.connect(database, check_same_thread=False)
            self._local.reader = reader
            with self._watcher_lock:
                self._readers.append(reader)
        return reader

    def close(self) -> None:
        with self._watcher_lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._local = threading.local()

    # -- written by ingestion, deleted with their file or store ------------------------

    def _ensure_vec_table(self, conn: Connection, dimensions: int) -> str:
        table = vector_table(dimensions)
        if dimensions not in self._vec_tables:
            self.index.create(conn, dimensions)
            self._vec_tables.add(dimensions)
        return table

    def store_dimensions(self) -> list[tuple[str, int]]:
        """(store id, vector dimension) of every store and every vector table there is."""
        with self.engine.begin() as conn:
            dimensions = [int(t.rsplit("_", 1)[1]) for t in self._vector_tables(conn)]
            stores = list(conn.execute(text("SELECT id FROM vector_stores")).scalars())
        return [(store, d) for store in stores for d in dimensions]

    def _vector_tables(self, conn: Connection) -> list[str]:
        return self.index.tables(conn)

    def delete_chunks(self, conn: Connection, where: str, params: dict[str, Any]) -> None:
        """Delete the chunks matching ``where`` and their vectors, in ``conn``'s transaction."""
        ids = list(conn.execute(text(f"SELECT id FROM chunks WHERE {where}"), params).scalars())
        if not ids:
            return
        for table in self._vector_tables(conn):
            for start in range(0, len(ids), 500):
                self.index.delete(conn, table, ids[start : start + 500])
        conn.execute(text(f"DELETE FROM chunks WHERE {where}"), params)

    def positions(self, store_id: str, file_id: str) -> set[int]:
        with self.engine.begin() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT position FROM chunks WHERE vector_store_id = :vs"
                        " AND file_id = :file"
                    ),
                    {"vs": store_id, "file": file_id},
                ).scalars()
            )

    def insert_chunks(
        self,
        store_id: str,
        file_id: str,
        chunks: Sequence[NewChunk],
        vectors: np.ndarray,
    ) -> bool:
        """Write chunks and their vectors in one transaction, if the file is still wanted."""
        with self.engine.begin() as conn:
            status = conn.execute(
                text(
                    "SELECT status FROM vector_store_files WHERE vector_store_id = :vs"
                    " AND file_id = :file"
                ),
                {"vs": store_id, "file": file_id},
            ).scalar()
            if status != "in_progress":
                return False
            table = self._ensure_vec_table(conn, int(vectors.shape[1]))
            rows = []
            for chunk, vector in zip(chunks, vectors, strict=True):
                chunk_id = conn.execute(
                    text(
                        "INSERT INTO chunks (vector_store_id, file_id, position, text, page,"
                        " heading, tokens, terms, content_hash) VALUES (:vs, :file, :position,"
                        " :text, :page, :heading, :tokens, :terms, :hash) RETURNING id"
                    ),
                    {
                        "vs": store_id,
                        "file": file_id,
                        "position": chunk.position,
                        "text": chunk.text,
                        "page": chunk.page,
                        "heading": chunk.heading,
                        "tokens": chunk.tokens,
                        "terms": chunk.terms,
                        "hash": chunk.content_hash,
                    },
                ).scalar_one()
                rows.append((chunk_id, vector))
            self.index.insert(conn, table, store_id, rows)
        return True

    # -- read by search ---------------------------------------------------------------

    def chunk_terms(self, store_id: str) -> tuple[list[int], list[str], list[str]]:
        """Ids, file ids and BM25 terms of a store's chunks whose file is completed."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.id, c.file_id, c.terms FROM chunks c JOIN vector_store_files v"
                    " ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
                    " WHERE c.vector_store_id = :vs AND v.status = 'completed' ORDER BY c.id"
                ),
                {"vs": store_id},
            ).all()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def chunks_version(self, store_id: str) -> tuple[int, int, int]:
        """Changes whenever the searchable chunks of a store change (one statement)."""
        with self.engine.begin() as conn:
            count, top, completed = conn.execute(
                text(
                    "SELECT (SELECT COUNT(*) FROM chunks WHERE vector_store_id = :vs),"
                    " (SELECT COALESCE(MAX(id), 0) FROM chunks WHERE vector_store_id = :vs),"
                    " (SELECT COALESCE(SUM(seq), 0) FROM vector_store_files"
                    " WHERE vector_store_id = :vs AND status = 'completed')"
                ),
                {"vs": store_id},
            ).one()
        return int(count), int(top), int(completed or 0)

    def store_vectors(self, store_id: str, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, vectors) of every vector stored for a store, ordered by chunk id."""
        table = vector_table(dimensions)
        with self.engine.begin() as conn:
            if table not in self._vector_tables(conn):
                return np.zeros(0, np.int64), np.zeros((0, dimensions), np.float32)
            rows = self.index.vectors(conn, table, store_id)
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, dimensions), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(
            len(rows), dimensions
        )
        order = np.argsort(ids, kind="stable")
        return ids[order], vectors[order]

    def nearest(
        self, store_id: str, query: np.ndarray, k: int, *, chunk_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine distance) of the ``k`` nearest chunks of completed files."""
        table = vector_table(int(query.shape[0]))
        with self.engine.begin() as conn:
            if int(query.shape[0]) not in self._vec_tables:
                if table not in self._vector_tables(conn):
                    return []
                self._vec_tables.add(int(query.shape[0]))
            if chunk_ids is not None:
                if not chunk_ids:
                    return []
                return self.index.nearest_among(conn, table, query, chunk_ids, k)
            return self.index.nearest(conn, table, store_id, query, k)

    def distances(self, query: np.ndarray, chunk_ids: Sequence[int]) -> dict[int, float]:
        if not chunk_ids:
            return {}
        table = vector_table(int(query.shape[0]))
        with self.engine.begin() as conn:
            return dict(self.index.distances(conn, table, query, chunk_ids))

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunks by id, with their file's name and attributes."""
        if not chunk_ids:
            return {}
        marks = ",".join(str(int(i)) for i in chunk_ids)
        query = (
            "SELECT c.id, c.vector_store_id, c.file_id, c.position, c.text, c.page,"
            " c.heading, c.tokens, f.filename, v.attributes FROM chunks c"
            " LEFT JOIN files f ON f.id = c.file_id"
            " LEFT JOIN vector_store_files v ON v.vector_store_id = c.vector_store_id"
            f" AND v.file_id = c.file_id WHERE c.id IN ({marks})"
        )
        reader = self._reader()
        if reader is not None:
            cursor = reader.execute(query)
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        else:
            with self.engine.begin() as conn:
                rows = as_dicts(conn.execute(text(query)))
        for row in rows:
            row["attributes"] = json.loads(row["attributes"] or "{}")
        return {row["id"]: row for row in rows}

    def file_chunks(self, store_id: str, file_id: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            return as_dicts(
                conn.execute(
                    text(
                        "SELECT id, position, text, page, heading, tokens, content_hash"
                        " FROM chunks WHERE vector_store_id = :vs AND file_id = :file"
                        " ORDER BY position"
                    ),
                    {"vs": store_id, "file": file_id},
                )
            )

    def attributes_by_file(self, store_id: str) -> dict[str, dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT file_id, attributes FROM vector_store_files"
                    " WHERE vector_store_id = :vs AND status = 'completed'"
                ),
                {"vs": store_id},
            ).all()
        return {file_id: json.loads(attributes) for file_id, attributes in rows}
