"""Ingestion: a vector store's files become chunks and vectors, resumably.

Each attached file is a ``vector_store_files`` row whose ``status`` is the journal:
``in_progress`` until its last chunk is written, then ``completed``, or ``failed`` with
``last_error`` (``unsupported_file``, ``invalid_file``, ``server_error``). The chunks of a
file are computed deterministically and written in small transactions, each with its
vectors, keyed by position; after a crash the same file is chunked again and only the
missing positions are embedded and written, so nothing is duplicated or lost.

The server runs :class:`IngestionWorker` in the background (it resumes every unfinished
file at start); ``ember ingest`` runs the same worker in the foreground with a progress bar.
Replicas sharing a database each run one: a file is ingested by the replica holding its
lease (``ember.services.leases``); a file whose replica died is taken over at the next sweep
and resumed from the chunks already written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ember.errors import EmberError, NotFoundError, UnsupportedFileError
from ember.ground.chunking import Chunker
from ember.ground.lexical import terms
from ember.ground.parsers import parse
from ember.services.embedder import Embedder
from ember.services.files import FileService
from ember.services.leases import LeaseKeeper
from ember.store.chunks import ChunkTables, NewChunk
from ember.store.vectors import VectorTables

logger = logging.getLogger(__name__)

EMBED_BATCH = 16
LEASE_KIND = "ingestion"
#: Called with (vector store id, file id, chunks written, chunks in the file).
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class ChunkingStrategy:
    max_tokens: int
    overlap_tokens: int

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> ChunkingStrategy:
        static = stored.get("static", {})
        return cls(int(static["max_chunk_size_tokens"]), int(static["chunk_overlap_tokens"]))


def plan_chunks(
    embedder: Embedder, strategy: ChunkingStrategy, filename: str, data: bytes
) -> list[NewChunk]:
    """The chunks of a file, deterministic, repeated texts dropped, positions from 0."""
    # Chunks must fit the embedder's window: a larger static size is capped to it, and the
    # overlap shrinks in proportion.
    window = embedder.max_tokens - 8
    max_tokens = min(strategy.max_tokens, window)
    overlap = min(strategy.overlap_tokens * max_tokens // strategy.max_tokens, max_tokens // 2)
    chunker = Chunker(embedder.count_tokens, max_tokens=max_tokens, overlap_tokens=overlap)
    seen: set[str] = set()
    planned: list[NewChunk] = []
    for chunk in chunker.chunk(parse(filename, data)):
        digest = hashlib.sha256(chunk.text.encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        planned.append(
            NewChunk(
                position=len(planned),
                text=chunk.text,
                page=chunk.page,
                heading=chunk.heading,
                tokens=chunk.tokens,
                terms=" ".join(terms(f"{chunk.heading or ''}\n{chunk.text}")),
                content_hash=digest,
            )
        )
    return planned


def _passage(embedder: Embedder, chunk: NewChunk) -> str:
    """The text embedded for a chunk: its heading first, when that still fits."""
    if chunk.heading:
        with_heading = f"{chunk.heading}\n{chunk.text}"
        if embedder.count_tokens(with_heading) <= embedder.max_tokens:
            return with_heading
    return chunk.text


class Ingestor:
    """Ingests one attached file (synchronous; runs in a worker thread)."""

    def __init__(self, tables: VectorTables, chunks: ChunkTables, files: FileService) -> None:
        self.tables = tables
        self.chunks = chunks
        self.files = files
        # Set on shutdown: the file being ingested stops after its current batch and stays
        # in_progress, to be resumed by the next start.
        self.stopping = threading.Event()

    def ingest(
        self, embedder: Embedder, store_id: str, file_id: str, progress: Progress | None = None
    ) -> str:
        """Bring one file to a final status; returns that status."""
        row = self.tables.get_file(store_id, file_id)
        if row is None or row["status"] != "in_progress":
            return row["status"] if row else "missing"
        try:
            record = self.files.get(file_id)
            duplicates = [
                f
                for f in self.tables.files_with_sha(store_id, record.sha256)
                if f != file_id
                and (self.tables.get_file(store_id, f) or {}).get("status")
                in ("in_progress", "completed")
            ]
            earlier = [
                f for f in duplicates if self._seq(store_id, f) < self._seq(store_id, file_id)
            ]
            if earlier:
                return self._fail(
                    store_id,
                    file_id,
                    "invalid_file",
                    f"Duplicate of {earlier[0]} (same SHA-256 content) in this vector store.",
                )
            data = self.files.read(file_id)
            strategy = ChunkingStrategy.from_stored(row["chunking"])
            planned = plan_chunks(embedder, strategy, record.filename, data)
        except UnsupportedFileError as exc:
            return self._fail(store_id, file_id, "unsupported_file", exc.message)
        except NotFoundError:
            return self._fail(store_id, file_id, "invalid_file", "The file no longer exists.")
        if not planned:
            return self._fail(store_id, file_id, "invalid_file", "The file contains no text.")
        done = self.chunks.positions(store_id, file_id)
        todo = [chunk for chunk in planned if chunk.position not in done]
        written = len(planned) - len(todo)
        if progress:
            progress(store_id, file_id, written, len(planned))
        try:
            for start in range(0, len(todo), EMBED_BATCH):
                if self.stopping.is_set():
                    return "in_progress"
                batch = todo[start : start + EMBED_BATCH]
                vectors = embedder.embed([_passage(embedder, c) for c in batch], "passage")
                if not self.chunks.insert_chunks(store_id, file_id, batch, vectors):
                    row = self.tables.get_file(store_id, file_id)
                    return row["status"] if row else "missing"  # cancelled or removed
                written += len(batch)
                if progress:
                    progress(store_id, file_id, written, len(planned))
        except Exception as exc:  # the embedder failed: the file says so, the worker goes on
            logger.exception("ingestion of %s into %s failed", file_id, store_id)
            message = exc.message if isinstance(exc, EmberError) else "The embedder failed."
            return self._fail(store_id, file_id, "server_error", message)
        self.tables.finish_file(store_id, file_id, "completed")
        return "completed"

    def _seq(self, store_id: str, file_id: str) -> int:
        row = self.tables.get_file(store_id, file_id)
        return int(row["seq"]) if row else 0

    def _fail(self, store_id: str, file_id: str, code: str, message: str) -> str:
        self.tables.finish_file(
            store_id, file_id, "failed", last_error={"code": code, "message": message}
        )
        return "failed"


class IngestionWorker:
    """Ingests every ``in_progress`` file, oldest first, one at a time, until none is left."""

    def __init__(
        self,
        ingestor: Ingestor,
        embedder: Callable[[], Any],
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.ingestor = ingestor
        self._embedder = embedder  # async () -> Embedder; loads the model on first use
        self.leases = leases  # None: the only ingester (``ember ingest``)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in the background (server); resumes unfinished files at once, and looks again
        at every lease sweep for files that another replica left."""
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self._wake.set()
        if self.leases is not None:
            self.leases.on_sweep(self.notify)

    def notify(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self.ingestor.stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_pending()
            except asyncio.CancelledError:
                raise
            except SQLAlchemyError as exc:  # the database is away: the next sweep goes on
                logger.warning("ingestion worker: %s", str(exc).split("\n")[0])
            except Exception:  # keep the worker alive; the file's row says what failed
                logger.exception("ingestion worker error")

    async def run_pending(self, progress: Progress | None = None) -> int:
        """Ingest until no file is in progress; returns how many files were finished."""
        finished = 0
        while True:
            pending = self.ingestor.tables.in_progress_files()
            worked = False
            for store_id, file_id in pending:
                if self.ingestor.stopping.is_set():
                    return finished
                key = f"{store_id}/{file_id}"
                if self.leases is not None and not await asyncio.to_thread(
                    self.leases.claim, LEASE_KIND, key
                ):
                    continue  # another live replica ingests it
                try:
                    embedder = await self._embedder()
                    await asyncio.to_thread(
                        self.ingestor.ingest, embedder, store_id, file_id, progress
                    )
                finally:
                    if self.leases is not None:
                        await asyncio.to_thread(self.leases.release, LEASE_KIND, key)
                finished += 1
                worked = True
            if not worked:
                return finished
