"""The vector-stores use case (``/v1/vector_stores``): stores, their files, batches, search.

Objects leave this module in the OpenAI shapes (``VectorStoreObject``,
``VectorStoreFileObject``, ``VectorStoreFileBatchObject``, the search results page).
Attaching a file only journals it as ``in_progress`` and wakes the ingestion worker.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import InvalidRequestError, NotFoundError
from ember.ground import filters as attribute_filters
from ember.ground.retrieval import Hit, RetrievalMode, Retriever
from ember.services.embedder import Embedder
from ember.services.files import FileService
from ember.services.ingestion import IngestionWorker
from ember.store.vectors import VectorTables

MAX_ATTRIBUTES = 16


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def validate_attributes(attributes: Any, param: str = "attributes") -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise InvalidRequestError(
            f"attributes is an object of at most {MAX_ATTRIBUTES} keys.", param=param
        )
    for key, value in attributes.items():
        if len(key) > 64 or not isinstance(value, str | int | float | bool):
            raise InvalidRequestError(
                "Attribute keys are at most 64 characters; values are strings, numbers or "
                "booleans.",
                param=f"{param}.{key}",
            )
        if isinstance(value, str) and len(value) > 512:
            raise InvalidRequestError("Attribute strings are at most 512 characters.", param=param)
    return dict(attributes)


class VectorStoreService:
    def __init__(
        self,
        tables: VectorTables,
        files: FileService,
        worker: IngestionWorker,
        retriever: Retriever,
        embedder: Callable[[], Awaitable[Embedder]],
        *,
        auto_chunking: tuple[int, int],
    ) -> None:
        self.tables = tables
        self.files = files
        self.worker = worker
        self.retriever = retriever
        self.embedder = embedder
        self.auto_chunking = auto_chunking

    # -- chunking strategies --------------------------------------------------------------

    def chunking(self, spec: Any, param: str = "chunking_strategy") -> dict[str, Any]:
        """A request's ``chunking_strategy`` as the static form it is stored and shown in."""
        size: Any
        overlap: Any
        if spec is None or (isinstance(spec, dict) and spec.get("type") == "auto"):
            size, overlap = self.auto_chunking
        elif isinstance(spec, dict) and spec.get("type") == "static":
            static = spec.get("static")
            if not isinstance(static, dict):
                raise InvalidRequestError("A static strategy needs 'static'.", param=param)
            size = static.get("max_chunk_size_tokens")
            overlap = static.get("chunk_overlap_tokens")
            if not isinstance(size, int) or not 100 <= size <= 4096:
                raise InvalidRequestError(
                    "max_chunk_size_tokens must be an integer from 100 to 4096.",
                    param=f"{param}.static.max_chunk_size_tokens",
                )
            if not isinstance(overlap, int) or not 0 <= overlap <= size // 2:
                raise InvalidRequestError(
                    "chunk_overlap_tokens must be from 0 to half of max_chunk_size_tokens.",
                    param=f"{param}.static.chunk_overlap_tokens",
                )
        else:
            raise InvalidRequestError(
                "chunking_strategy.type must be 'auto' or 'static'.", param=f"{param}.type"
            )
        return {
            "type": "static",
            "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
        }

    # -- stores ---------------------------------------------------------------------------

    def _store_row(self, store_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        """The store's row, if it exists for ``caller`` (another tenant's is a 404)."""
        row = self.tables.get_store(store_id)
        if row is None or not caller.may_see(row.get("owner")):
            raise NotFoundError(f"No such vector store: '{store_id}'.", param="vector_store_id")
        return row

    def _usable_row(self, store_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        """The store's row, if it may still be searched or given files: an expired store
        (``expires_at`` passed) keeps its data and can be read, updated or deleted, but
        neither searched nor extended (OpenAI: "once a vector store expires ... it can't be
        used"). Using it does not revive it."""
        row = self._store_row(store_id, caller)
        if _expired(row):
            raise InvalidRequestError(
                f"Vector store '{store_id}' expired at {row['expires_at']} (unix time) and can "
                "no longer be searched or given files; create a new vector store, or delete "
                "this one.",
                param="vector_store_id",
                code="vector_store_expired",
            )
        return row

    def store_object(self, row: dict[str, Any]) -> dict[str, Any]:
        counts = self.tables.file_counts(row["id"])
        status = (
            "expired"
            if _expired(row)
            else ("in_progress" if counts["in_progress"] else "completed")
        )
        return {
            "id": row["id"],
            "object": "vector_store",
            "created_at": row["created_at"],
            "name": row["name"],
            "usage_bytes": self.tables.usage_bytes(row["id"]),
            "file_counts": counts,
            "status": status,
            "expires_after": row["expires_after"],
            "expires_at": row["expires_at"],
            "last_active_at": row["last_active_at"],
            "metadata": row["metadata"],
        }

    def _expiry(self, expires_after: Any, now: int) -> tuple[dict[str, Any] | None, int | None]:
        if expires_after is None:
            return None, None
        if (
            not isinstance(expires_after, dict)
            or expires_after.get("anchor") != "last_active_at"
            or not isinstance(expires_after.get("days"), int)
            or not 1 <= expires_after["days"] <= 365
        ):
            raise InvalidRequestError(
                "expires_after is {'anchor': 'last_active_at', 'days': 1-365}.",
                param="expires_after",
            )
        return expires_after, now + expires_after["days"] * 86400

    def _touch(self, store_ids: Sequence[str]) -> None:
        """Mark stores used now: ``last_active_at`` moves, and so does ``expires_at`` when the
        store expires after a number of days anchored on it (OpenAI's semantics)."""
        now = int(time.time())
        for store_id in store_ids:
            values: dict[str, Any] = {"last_active_at": now}
            after = self._store_row(store_id)["expires_after"]
            if after:
                values["expires_at"] = now + after["days"] * 86400
            self.tables.update_store(store_id, values)

    def create(
        self,
        *,
        name: str | None = None,
        file_ids: Sequence[str] = (),
        metadata: dict[str, str] | None = None,
        chunking_strategy: Any = None,
        expires_after: Any = None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        chunking = self.chunking(chunking_strategy)
        for file_id in file_ids:
            self.files.get(file_id, caller=caller)
        now = int(time.time())
        after, expires_at = self._expiry(expires_after, now)
        store_id = _new_id("vs")
        self.tables.create_store(
            {
                "id": store_id,
                "name": name,
                "created_at": now,
                "last_active_at": now,
                "metadata": metadata or {},
                "expires_after": after,
                "expires_at": expires_at,
                "owner": caller.owner,
            }
        )
        for file_id in file_ids:
            self._attach(store_id, file_id, chunking, {}, None)
        self.worker.notify()
        return self.store_object(self._store_row(store_id))

    def get(self, store_id: str, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        return self.store_object(self._store_row(store_id, caller))

    def find(self, id_or_name: str, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        """A store by id, or else by name (for the CLI)."""
        row = self.tables.get_store(id_or_name)
        if row is not None and not caller.may_see(row.get("owner")):
            row = None
        row = row or self.tables.find_store_by_name(id_or_name, caller.owner)
        if row is None:
            raise NotFoundError(f"No vector store with id or name '{id_or_name}'.")
        return self.store_object(row)

    def list_stores(
        self,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        rows, more = self.tables.list_stores(
            limit=limit, order=order, after=after, owner=caller.owner
        )
        return _page([self.store_object(row) for row in rows], more)

    def update(
        self, store_id: str, changes: dict[str, Any], *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        row = self._store_row(store_id, caller)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = changes["name"]
        if "metadata" in changes:
            values["metadata"] = changes["metadata"]
        if "expires_after" in changes:
            after, expires_at = self._expiry(changes["expires_after"], row["last_active_at"] or 0)
            values["expires_after"], values["expires_at"] = after, expires_at
        self.tables.update_store(store_id, values)
        return self.get(store_id)

    def delete(self, store_id: str, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        self._store_row(store_id, caller)
        self.tables.delete_store(store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    # -- files ----------------------------------------------------------------------------

    def file_object(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["file_id"],
            "object": "vector_store.file",
            "usage_bytes": row["usage_bytes"],
            "created_at": row["created_at"],
            "vector_store_id": row["vector_store_id"],
            "status": row["status"],
            "last_error": row["last_error"],
            "chunking_strategy": row["chunking"],
            "attributes": row["attributes"],
        }

    def _attach(
        self,
        store_id: str,
        file_id: str,
        chunking: dict[str, Any],
        attributes: dict[str, Any],
        batch_id: str | None,
    ) -> None:
        self.tables.add_file(
            {
                "vector_store_id": store_id,
                "file_id": file_id,
                "batch_id": batch_id,
                "created_at": int(time.time()),
                "attributes": attributes,
                "chunking": chunking,
            }
        )

    def add_file(
        self,
        store_id: str,
        file_id: str,
        *,
        attributes: Any = None,
        chunking_strategy: Any = None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        self._usable_row(store_id, caller)
        self.files.get(file_id, caller=caller)
        chunking = self.chunking(chunking_strategy)
        self._attach(store_id, file_id, chunking, validate_attributes(attributes), None)
        self.worker.notify()
        return self.get_file(store_id, file_id)

    def get_file(
        self, store_id: str, file_id: str, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self._store_row(store_id, caller)
        row = self.tables.get_file(store_id, file_id)
        if row is None:
            raise NotFoundError(
                f"File '{file_id}' is not in vector store '{store_id}'.", param="file_id"
            )
        return self.file_object(row)

    def list_files(
        self,
        store_id: str,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        status: str | None,
        batch_id: str | None = None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        self._store_row(store_id, caller)
        rows, more = self.tables.list_files(
            store_id, limit=limit, order=order, after=after, status=status, batch_id=batch_id
        )
        return _page([self.file_object(row) for row in rows], more)

    def update_file(
        self, store_id: str, file_id: str, attributes: Any, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self.get_file(store_id, file_id, caller=caller)
        self.tables.set_file_attributes(store_id, file_id, validate_attributes(attributes))
        return self.get_file(store_id, file_id)

    def delete_file(
        self, store_id: str, file_id: str, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self.get_file(store_id, file_id, caller=caller)
        self.tables.delete_file(store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    def file_content(
        self, store_id: str, file_id: str, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self.get_file(store_id, file_id, caller=caller)
        chunks = self.tables.chunks.file_chunks(store_id, file_id)
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": chunk["text"]} for chunk in chunks],
            "has_more": False,
            "next_page": None,
        }

    # -- batches --------------------------------------------------------------------------

    def batch_object(self, store_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        counts = self.tables.file_counts(store_id, batch["id"])
        if counts["in_progress"]:
            status = "cancelling" if batch["cancelled"] else "in_progress"
        elif batch["cancelled"]:
            status = "cancelled"
        elif counts["failed"] and not counts["completed"]:
            status = "failed"
        else:
            status = "completed"
        return {
            "id": batch["id"],
            "object": "vector_store.files_batch",
            "created_at": batch["created_at"],
            "vector_store_id": store_id,
            "status": status,
            "file_counts": counts,
        }

    def create_batch(
        self,
        store_id: str,
        file_ids: Sequence[str],
        *,
        attributes: Any = None,
        chunking_strategy: Any = None,
        files: Sequence[dict[str, Any]] | None = None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        self._usable_row(store_id, caller)
        entries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        default_chunking = self.chunking(chunking_strategy)
        default_attributes = validate_attributes(attributes)
        for file_id in file_ids:
            entries.append((file_id, default_attributes, default_chunking))
        for index, entry in enumerate(files or []):
            param = f"files[{index}]"
            entries.append(
                (
                    str(entry.get("file_id")),
                    validate_attributes(entry.get("attributes"), f"{param}.attributes")
                    if entry.get("attributes") is not None
                    else default_attributes,
                    self.chunking(entry.get("chunking_strategy"), f"{param}.chunking_strategy")
                    if entry.get("chunking_strategy") is not None
                    else default_chunking,
                )
            )
        if not entries:
            raise InvalidRequestError("Give file_ids or files.", param="file_ids")
        for file_id, _, _ in entries:
            self.files.get(file_id, caller=caller)
        batch_id = _new_id("vsfb")
        self.tables.create_batch(batch_id, store_id, int(time.time()))
        for file_id, attrs, chunking in entries:
            self._attach(store_id, file_id, chunking, attrs, batch_id)
        self.worker.notify()
        return self.get_batch(store_id, batch_id)

    def get_batch(
        self, store_id: str, batch_id: str, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self._store_row(store_id, caller)
        batch = self.tables.get_batch(store_id, batch_id)
        if batch is None:
            raise NotFoundError(f"No such file batch: '{batch_id}'.", param="batch_id")
        return self.batch_object(store_id, batch)

    def cancel_batch(
        self, store_id: str, batch_id: str, *, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        self.get_batch(store_id, batch_id, caller=caller)
        self.tables.cancel_batch(batch_id)
        return self.get_batch(store_id, batch_id)

    # -- search ---------------------------------------------------------------------------

    async def retrieve(
        self,
        store_ids: Sequence[str],
        query: str,
        *,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        score_threshold: float = 0.0,
        mode: RetrievalMode = "hybrid",
        caller: Caller = ANONYMOUS,
    ) -> list[Hit]:
        for store_id in store_ids:
            self._usable_row(store_id, caller)
        if filters is not None:
            attribute_filters.validate(filters)
        embedder = await self.embedder()
        vector = (await asyncio.to_thread(embedder.embed, [query], "query"))[0]
        self._touch(store_ids)
        return await asyncio.to_thread(
            self.retriever.search,
            list(store_ids),
            query,
            vector,
            k=k,
            filters=filters,
            mode=mode,
            score_threshold=score_threshold,
        )

    async def search(
        self,
        store_id: str,
        query: str | list[str],
        *,
        max_num_results: int = 10,
        filters: dict[str, Any] | None = None,
        score_threshold: float = 0.0,
        mode: RetrievalMode = "hybrid",
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        queries = [query] if isinstance(query, str) else list(query)
        if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
            raise InvalidRequestError("query must be a non-empty string.", param="query")
        # One hit more than asked for tells whether more results exist (``has_more``); the
        # request shape has no page parameter, so ``next_page`` stays null.
        found = await self.retrieve(
            [store_id],
            " ".join(queries),
            k=max_num_results + 1,
            filters=filters,
            score_threshold=score_threshold,
            mode=mode,
            caller=caller,
        )
        hits, has_more = found[:max_num_results], len(found) > max_num_results
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "score": round(hit.score, 6),
                    "attributes": hit.attributes,
                    "content": [{"type": "text", "text": hit.text}],
                }
                for hit in hits
            ],
            "has_more": has_more,
            "next_page": None,
            # Where each hit came from, aligned with ``data``.
            "ember": {
                "results": [
                    {
                        "chunk_id": hit.chunk_id,
                        "page": hit.page,
                        "heading": hit.heading,
                        "retrievers": hit.sources,
                    }
                    for hit in hits
                ]
            },
        }


def _expired(row: dict[str, Any]) -> bool:
    return row["expires_at"] is not None and row["expires_at"] <= time.time()


def _page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
