"""Vector stores, their files, chunks and vectors: the tables behind ``/v1/vector_stores``.

* ``vector_stores``: one row per store (name, metadata, expiry).
* ``vector_store_files``: a file attached to a store, with its ingestion ``status``
  (``in_progress`` → ``completed`` | ``failed`` | ``cancelled``) and ``last_error``. This is
  the ingestion journal: a server or ``ember ingest`` that starts again picks up every
  ``in_progress`` row.
* ``vector_store_file_batches``: a batch is the set of files added with its id; its status
  is derived from theirs.
* ``chunks``: a file's chunks by ``position`` (unique per store and file), with page,
  heading, token count, BM25 terms and a content hash. Chunking is deterministic, so a
  resumed ingestion inserts only the positions that are missing.
* ``chunk_vectors_<dim>``: a sqlite-vec ``vec0`` table (cosine distance, partitioned by
  store) whose rowid is the chunk's id; created on first use for the embedder's dimension.
  A batch of chunks and their vectors is written in one transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, Engine, text


@dataclass(frozen=True)
class NewChunk:
    position: int
    text: str
    page: int | None
    heading: str | None
    tokens: int
    terms: str
    content_hash: str


def _vec_table(dimensions: int) -> str:
    if not 1 <= int(dimensions) <= 8192:
        raise ValueError("bad vector dimension")
    return f"chunk_vectors_{int(dimensions)}"


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


def _page(
    conn: Connection,
    table: str,
    where: str,
    params: dict[str, Any],
    *,
    limit: int,
    order: Literal["asc", "desc"],
    after: str | None,
    cursor_column: str = "id",
) -> tuple[list[dict[str, Any]], bool]:
    if after is not None:
        cursor = conn.execute(
            text(f"SELECT seq FROM {table} WHERE {where} AND {cursor_column} = :after"),
            {**params, "after": after},
        ).scalar()
        if cursor is not None:
            where += " AND seq > :cursor" if order == "asc" else " AND seq < :cursor"
            params = {**params, "cursor": cursor}
    direction = "ASC" if order == "asc" else "DESC"
    rows = _rows(
        conn.execute(
            text(f"SELECT * FROM {table} WHERE {where} ORDER BY seq {direction} LIMIT :limit"),
            {**params, "limit": limit + 1},
        )
    )
    return rows[:limit], len(rows) > limit


class VectorTables:
    """Reads and writes of the vector-store tables (reached as ``Store.vectors``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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

    # -- stores ---------------------------------------------------------------------------

    def create_store(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vector_stores (id, name, created_at, last_active_at, metadata,"
                    " expires_after, expires_at) VALUES (:id, :name, :created_at,"
                    " :last_active_at, :metadata, :expires_after, :expires_at)"
                ),
                {
                    **row,
                    "metadata": json.dumps(row.get("metadata") or {}, ensure_ascii=False),
                    "expires_after": json.dumps(row["expires_after"])
                    if row.get("expires_after")
                    else None,
                },
            )

    def get_store(self, store_id: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = _rows(
                conn.execute(text("SELECT * FROM vector_stores WHERE id = :id"), {"id": store_id})
            )
        return _decode_store(rows[0]) if rows else None

    def find_store_by_name(self, name: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = _rows(
                conn.execute(
                    text("SELECT * FROM vector_stores WHERE name = :name ORDER BY seq LIMIT 1"),
                    {"name": name},
                )
            )
        return _decode_store(rows[0]) if rows else None

    def list_stores(
        self, *, limit: int, order: Literal["asc", "desc"], after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        with self.engine.begin() as conn:
            rows, more = _page(
                conn, "vector_stores", "1 = 1", {}, limit=limit, order=order, after=after
            )
        return [_decode_store(row) for row in rows], more

    def update_store(self, store_id: str, changes: dict[str, Any]) -> None:
        values = dict(changes)
        if "metadata" in values:
            values["metadata"] = json.dumps(values["metadata"] or {}, ensure_ascii=False)
        if "expires_after" in values:
            values["expires_after"] = (
                json.dumps(values["expires_after"]) if values["expires_after"] else None
            )
        if not values:
            return
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        with self.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE vector_stores SET {assignments} WHERE id = :id"),
                {**values, "id": store_id},
            )

    def delete_store(self, store_id: str) -> bool:
        with self.engine.begin() as conn:
            self._delete_chunks(conn, "vector_store_id = :vs", {"vs": store_id})
            deleted = conn.execute(
                text("DELETE FROM vector_stores WHERE id = :id"), {"id": store_id}
            ).rowcount
        return bool(deleted)

    def file_counts(self, store_id: str, batch_id: str | None = None) -> dict[str, int]:
        where = "vector_store_id = :vs" + (" AND batch_id = :batch" if batch_id else "")
        with self.engine.begin() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    text(
                        f"SELECT status, COUNT(*) FROM vector_store_files WHERE {where}"
                        " GROUP BY status"
                    ),
                    {"vs": store_id, "batch": batch_id},
                ).all()
            )
        result = {
            key: int(counts.get(key, 0))
            for key in ("in_progress", "completed", "failed", "cancelled")
        }
        result["total"] = sum(result.values())
        return result

    def usage_bytes(self, store_id: str) -> int:
        with self.engine.begin() as conn:
            value = conn.execute(
                text(
                    "SELECT COALESCE(SUM(usage_bytes), 0) FROM vector_store_files"
                    " WHERE vector_store_id = :vs"
                ),
                {"vs": store_id},
            ).scalar()
        return int(value or 0)

    # -- files ----------------------------------------------------------------------------

    def add_file(self, row: dict[str, Any]) -> bool:
        """Attach a file; False if it was already attached (the row is left as it is)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                text(
                    "SELECT 1 FROM vector_store_files WHERE vector_store_id = :vs"
                    " AND file_id = :file"
                ),
                {"vs": row["vector_store_id"], "file": row["file_id"]},
            ).first()
            if exists:
                return False
            conn.execute(
                text(
                    "INSERT INTO vector_store_files (vector_store_id, file_id, batch_id,"
                    " created_at, status, attributes, chunking) VALUES (:vector_store_id,"
                    " :file_id, :batch_id, :created_at, 'in_progress', :attributes, :chunking)"
                ),
                {
                    **row,
                    "attributes": json.dumps(row.get("attributes") or {}, ensure_ascii=False),
                    "chunking": json.dumps(row["chunking"]),
                },
            )
        return True

    def get_file(self, store_id: str, file_id: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = _rows(
                conn.execute(
                    text(
                        "SELECT * FROM vector_store_files WHERE vector_store_id = :vs"
                        " AND file_id = :file"
                    ),
                    {"vs": store_id, "file": file_id},
                )
            )
        return _decode_file(rows[0]) if rows else None

    def list_files(
        self,
        store_id: str,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        where = "vector_store_id = :vs"
        params: dict[str, Any] = {"vs": store_id}
        if status:
            where += " AND status = :status"
            params["status"] = status
        if batch_id:
            where += " AND batch_id = :batch"
            params["batch"] = batch_id
        with self.engine.begin() as conn:
            rows, more = _page(
                conn,
                "vector_store_files",
                where,
                params,
                limit=limit,
                order=order,
                after=after,
                cursor_column="file_id",
            )
        return [_decode_file(row) for row in rows], more

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

    def files_with_sha(self, store_id: str, sha256: str) -> list[str]:
        """Ids of files with this content in the store, oldest first (needs ``files``)."""
        with self.engine.begin() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT v.file_id FROM vector_store_files v JOIN files f"
                        " ON f.id = v.file_id WHERE v.vector_store_id = :vs"
                        " AND f.sha256 = :sha ORDER BY v.seq"
                    ),
                    {"vs": store_id, "sha": sha256},
                ).scalars()
            )

    def set_file_attributes(self, store_id: str, file_id: str, attributes: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE vector_store_files SET attributes = :a"
                    " WHERE vector_store_id = :vs AND file_id = :file"
                ),
                {"a": json.dumps(attributes, ensure_ascii=False), "vs": store_id, "file": file_id},
            )

    def finish_file(
        self,
        store_id: str,
        file_id: str,
        status: str,
        *,
        last_error: dict[str, str] | None = None,
        only_if_in_progress: bool = True,
    ) -> None:
        """Set a file's final status; its usage is the bytes of its chunks' text."""
        guard = " AND status = 'in_progress'" if only_if_in_progress else ""
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE vector_store_files SET status = :status, last_error = :error,"
                    " usage_bytes = (SELECT COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0)"
                    " FROM chunks WHERE vector_store_id = :vs AND file_id = :file)"
                    f" WHERE vector_store_id = :vs AND file_id = :file{guard}"
                ),
                {
                    "status": status,
                    "error": json.dumps(last_error, ensure_ascii=False) if last_error else None,
                    "vs": store_id,
                    "file": file_id,
                },
            )

    def cancel_batch(self, batch_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE vector_store_file_batches SET cancelled = 1 WHERE id = :id"),
                {"id": batch_id},
            )
            conn.execute(
                text(
                    "UPDATE vector_store_files SET status = 'cancelled'"
                    " WHERE batch_id = :id AND status = 'in_progress'"
                ),
                {"id": batch_id},
            )

    def delete_file(self, store_id: str, file_id: str) -> bool:
        with self.engine.begin() as conn:
            self._delete_chunks(
                conn, "vector_store_id = :vs AND file_id = :file", {"vs": store_id, "file": file_id}
            )
            deleted = conn.execute(
                text(
                    "DELETE FROM vector_store_files WHERE vector_store_id = :vs AND file_id = :file"
                ),
                {"vs": store_id, "file": file_id},
            ).rowcount
        return bool(deleted)

    def in_progress_files(self) -> list[tuple[str, str]]:
        """(store id, file id) of every unfinished ingestion, oldest first."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT vector_store_id, file_id FROM vector_store_files"
                    " WHERE status = 'in_progress' ORDER BY seq"
                )
            ).all()
        return [(str(a), str(b)) for a, b in rows]

    # -- batches --------------------------------------------------------------------------

    def create_batch(self, batch_id: str, store_id: str, created_at: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vector_store_file_batches (id, vector_store_id, created_at)"
                    " VALUES (:id, :vs, :at)"
                ),
                {"id": batch_id, "vs": store_id, "at": created_at},
            )

    def get_batch(self, store_id: str, batch_id: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = _rows(
                conn.execute(
                    text(
                        "SELECT * FROM vector_store_file_batches WHERE id = :id"
                        " AND vector_store_id = :vs"
                    ),
                    {"id": batch_id, "vs": store_id},
                )
            )
        return rows[0] if rows else None

    # -- chunks and vectors ---------------------------------------------------------------

    def _ensure_vec_table(self, conn: Connection, dimensions: int) -> str:
        table = _vec_table(dimensions)
        if dimensions not in self._vec_tables:
            conn.execute(
                text(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
                    "vector_store_id TEXT PARTITION KEY,"
                    f" embedding FLOAT[{int(dimensions)}] distance_metric=cosine)"
                )
            )
            self._vec_tables.add(dimensions)
        return table

    def store_dimensions(self) -> list[tuple[str, int]]:
        """(store id, vector dimension) of every store and every vector table there is."""
        with self.engine.begin() as conn:
            dimensions = [int(t.rsplit("_", 1)[1]) for t in self._vector_tables(conn)]
            stores = list(conn.execute(text("SELECT id FROM vector_stores")).scalars())
        return [(store, d) for store in stores for d in dimensions]

    def _vector_tables(self, conn: Connection) -> list[str]:
        return list(
            conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name GLOB 'chunk_vectors_[0-9]*' AND sql LIKE 'CREATE VIRTUAL%'"
                )
            ).scalars()
        )

    def _delete_chunks(self, conn: Connection, where: str, params: dict[str, Any]) -> None:
        ids = list(conn.execute(text(f"SELECT id FROM chunks WHERE {where}"), params).scalars())
        if not ids:
            return
        for table in self._vector_tables(conn):
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join(str(int(i)) for i in part)
                conn.execute(text(f"DELETE FROM {table} WHERE rowid IN ({marks})"))
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
                conn.execute(
                    text(
                        f"INSERT INTO {table} (rowid, vector_store_id, embedding)"
                        " VALUES (:id, :vs, :embedding)"
                    ),
                    {
                        "id": chunk_id,
                        "vs": store_id,
                        "embedding": np.asarray(vector, dtype="<f4").tobytes(),
                    },
                )
        return True

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
        table = _vec_table(dimensions)
        with self.engine.begin() as conn:
            if table not in self._vector_tables(conn):
                return np.zeros(0, np.int64), np.zeros((0, dimensions), np.float32)
            rows = conn.execute(
                text(f"SELECT rowid, embedding FROM {table} WHERE vector_store_id = :vs"),
                {"vs": store_id},
            ).all()
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
        table = _vec_table(int(query.shape[0]))
        blob = np.asarray(query, dtype="<f4").tobytes()
        with self.engine.begin() as conn:
            if int(query.shape[0]) not in self._vec_tables:
                if table not in self._vector_tables(conn):
                    return []
                self._vec_tables.add(int(query.shape[0]))
            if chunk_ids is not None:
                if not chunk_ids:
                    return []
                marks = ",".join(str(int(i)) for i in chunk_ids)
                rows = conn.execute(
                    text(
                        f"SELECT rowid, vec_distance_cosine(embedding, :q) AS d FROM {table}"
                        f" WHERE rowid IN ({marks}) ORDER BY d LIMIT :k"
                    ),
                    {"q": blob, "k": k},
                ).all()
            else:
                rows = conn.execute(
                    text(
                        f"SELECT v.rowid, v.distance FROM {table} v WHERE v.embedding MATCH :q"
                        " AND k = :k AND v.vector_store_id = :vs"
                    ),
                    {"q": blob, "k": k, "vs": store_id},
                ).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def completed_chunks(self, chunk_ids: Sequence[int]) -> set[int]:
        """The ids among ``chunk_ids`` whose file's ingestion is completed."""
        if not chunk_ids:
            return set()
        marks = ",".join(str(int(i)) for i in chunk_ids)
        with self.engine.begin() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT c.id FROM chunks c JOIN vector_store_files v"
                        " ON v.vector_store_id = c.vector_store_id AND v.file_id = c.file_id"
                        f" WHERE c.id IN ({marks}) AND v.status = 'completed'"
                    )
                ).scalars()
            )

    def distances(self, query: np.ndarray, chunk_ids: Sequence[int]) -> dict[int, float]:
        if not chunk_ids:
            return {}
        table = _vec_table(int(query.shape[0]))
        marks = ",".join(str(int(i)) for i in chunk_ids)
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    f"SELECT rowid, vec_distance_cosine(embedding, :q) FROM {table}"
                    f" WHERE rowid IN ({marks})"
                ),
                {"q": np.asarray(query, dtype="<f4").tobytes()},
            ).all()
        return {int(r[0]): float(r[1]) for r in rows}

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
                rows = _rows(conn.execute(text(query)))
        for row in rows:
            row["attributes"] = json.loads(row["attributes"] or "{}")
        return {row["id"]: row for row in rows}

    def file_chunks(self, store_id: str, file_id: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            return _rows(
                conn.execute(
                    text(
                        "SELECT id, position, text, page, heading, tokens, content_hash"
                        " FROM chunks WHERE vector_store_id = :vs AND file_id = :file"
                        " ORDER BY position"
                    ),
                    {"vs": store_id, "file": file_id},
                )
            )


def _decode_store(row: dict[str, Any]) -> dict[str, Any]:
    row["metadata"] = json.loads(row["metadata"] or "{}")
    row["expires_after"] = json.loads(row["expires_after"]) if row["expires_after"] else None
    return row


def _decode_file(row: dict[str, Any]) -> dict[str, Any]:
    row["attributes"] = json.loads(row["attributes"] or "{}")
    row["chunking"] = json.loads(row["chunking"])
    row["last_error"] = json.loads(row["last_error"]) if row["last_error"] else None
    return row
