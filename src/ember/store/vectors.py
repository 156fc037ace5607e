"""Vector stores and their files: the tables behind ``/v1/vector_stores``.

* ``vector_stores``: one row per store (name, metadata, expiry).
* ``vector_store_files``: a file attached to a store, with its ingestion ``status``
  (``in_progress`` → ``completed`` | ``failed`` | ``cancelled``) and ``last_error``. This is
  the ingestion journal: a server or ``ember ingest`` that starts again picks up every
  ``in_progress`` row.
* ``vector_store_file_batches``: a batch is the set of files added with its id; its status
  is derived from theirs.

The chunks and vectors themselves are :mod:`ember.store.chunks`'s.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from ember.store.chunks import ChunkTables, as_dicts


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
    rows = as_dicts(
        conn.execute(
            text(f"SELECT * FROM {table} WHERE {where} ORDER BY seq {direction} LIMIT :limit"),
            {**params, "limit": limit + 1},
        )
    )
    return rows[:limit], len(rows) > limit


class VectorTables:
    """Reads and writes of the vector-store tables (reached as ``Store.vectors``)."""

    def __init__(self, engine: Engine, chunks: ChunkTables) -> None:
        self.engine = engine
        self.chunks = chunks  # a store's or file's chunks go with it, in the same transaction

    # -- stores ---------------------------------------------------------------------------

    def create_store(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vector_stores (id, name, created_at, last_active_at, metadata,"
                    " expires_after, expires_at, owner) VALUES (:id, :name, :created_at,"
                    " :last_active_at, :metadata, :expires_after, :expires_at, :owner)"
                ),
                {
                    **row,
                    "owner": row.get("owner"),
                    "metadata": json.dumps(row.get("metadata") or {}, ensure_ascii=False),
                    "expires_after": json.dumps(row["expires_after"])
                    if row.get("expires_after")
                    else None,
                },
            )

    def get_store(self, store_id: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = as_dicts(
                conn.execute(text("SELECT * FROM vector_stores WHERE id = :id"), {"id": store_id})
            )
        return _decode_store(rows[0]) if rows else None

    def find_store_by_name(self, name: str, owner: str | None = None) -> dict[str, Any] | None:
        """The first store named ``name`` (of tenant ``owner`` when given)."""
        scope = "" if owner is None else " AND owner = :owner"
        with self.engine.begin() as conn:
            rows = as_dicts(
                conn.execute(
                    text(
                        f"SELECT * FROM vector_stores WHERE name = :name{scope}"
                        " ORDER BY seq LIMIT 1"
                    ),
                    {"name": name, "owner": owner},
                )
            )
        return _decode_store(rows[0]) if rows else None

    def list_stores(
        self,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        owner: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of stores (of tenant ``owner`` when given)."""
        where, params = ("1 = 1", {}) if owner is None else ("owner = :owner", {"owner": owner})
        with self.engine.begin() as conn:
            rows, more = _page(
                conn, "vector_stores", where, params, limit=limit, order=order, after=after
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
            self.chunks.delete_chunks(conn, "vector_store_id = :vs", {"vs": store_id})
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
            rows = as_dicts(
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
                    " usage_bytes = (SELECT COALESCE(SUM(OCTET_LENGTH(text)), 0)"
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
            self.chunks.delete_chunks(
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
            rows = as_dicts(
                conn.execute(
                    text(
                        "SELECT * FROM vector_store_file_batches WHERE id = :id"
                        " AND vector_store_id = :vs"
                    ),
                    {"id": batch_id, "vs": store_id},
                )
            )
        return rows[0] if rows else None


def _decode_store(row: dict[str, Any]) -> dict[str, Any]:
    row["metadata"] = json.loads(row["metadata"] or "{}")
    row["expires_after"] = json.loads(row["expires_after"]) if row["expires_after"] else None
    return row


def _decode_file(row: dict[str, Any]) -> dict[str, Any]:
    row["attributes"] = json.loads(row["attributes"] or "{}")
    row["chunking"] = json.loads(row["chunking"])
    row["last_error"] = json.loads(row["last_error"]) if row["last_error"] else None
    return row
