"""Hybrid retrieval: dense (sqlite-vec) and lexical (BM25) hits fused by reciprocal rank.

``mode`` picks ``hybrid`` (default), ``vector`` or ``bm25``. Results are ordered by the
fused rank; each hit's ``score`` is its cosine similarity to the query (0-1), the one
number that means the same across stores and modes, so ``score_threshold`` and the
retrieval-confidence check of grounded answers both use it. A reranker
(:mod:`ember.ground.rerankers`) may reorder the fused list.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ember.ground import filters as attribute_filters
from ember.ground.dense import DenseIndex, VectorIndexKind, wants_graph
from ember.ground.lexical import BM25Index, terms
from ember.ground.rerankers import NoReranker, Reranker
from ember.store.chunks import ChunkTables

logger = logging.getLogger(__name__)
RetrievalMode = Literal["hybrid", "vector", "bm25"]
RRF_K = 60


@dataclass
class Hit:
    chunk_id: int
    vector_store_id: str
    file_id: str
    filename: str
    text: str
    page: int | None
    heading: str | None
    attributes: dict[str, Any]
    score: float
    fused: float = 0.0
    sources: list[str] = field(default_factory=list)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Σ 1/(k + rank) over the rankings each id appears in (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


@dataclass
class _StoreIndex:
    """What a store's searches read from memory; rebuilt when its ``version`` changes."""

    version: tuple[int, int, int]
    chunk_ids: np.ndarray  # of completed files, ascending
    file_ids: list[str]
    terms: list[str]
    data_version: int | None = None  # the database's, when ``version`` was read
    lexical: BM25Index | None = None
    frequencies: Counter[str] | None = None  # term → chunks holding it, built on first use
    dense: dict[int, tuple[DenseIndex, np.ndarray]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Retriever:
    """Searches vector stores from in-memory indexes built from the stored chunks.

    SQLite is the single source of truth: each store's BM25 index and dense index
    (:mod:`ember.ground.dense`, exact or HNSW per ``vector_index``) are built from its stored
    terms and vectors on first search and rebuilt whenever its searchable chunks change (one
    cheap version query per search), so ingestion, deletion and a restart need no extra step.
    """

    def __init__(
        self,
        tables: ChunkTables,
        reranker: Reranker | None = None,
        *,
        vector_index: VectorIndexKind = "auto",
        build_in_background: bool = True,
    ) -> None:
        self.tables = tables
        self.reranker = reranker or NoReranker()
        self.vector_index: VectorIndexKind = vector_index
        self._stores: dict[str, _StoreIndex] = {}
        # The latest dense index of each (store, dimensions): the next one reuses its graph.
        self._graphs: dict[tuple[str, int], DenseIndex] = {}
        # (store, dimensions) whose graph is being built from nothing on a background thread.
        self._building: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self.build_in_background = build_in_background
        self.graphs_built = 0  # HNSW graphs finished on background threads

    def _index(self, store_id: str) -> _StoreIndex:
        # Read before the version query: a commit after it shows on the next search.
        data_version = self.tables.data_version()
        with self._lock:
            cached = self._stores.get(store_id)
        if cached is not None and data_version is not None and cached.data_version == data_version:
            return cached  # nothing written since: still current
        version = self.tables.chunks_version(store_id)
        if cached is not None and cached.version == version:
            cached.data_version = data_version
            return cached
        chunk_ids, file_ids, stored_terms = self.tables.chunk_terms(store_id)
        index = _StoreIndex(
            version, np.asarray(chunk_ids, dtype=np.int64), file_ids, stored_terms, data_version
        )
        with self._lock:
            self._stores[store_id] = index
            if not len(index.chunk_ids):  # emptied or deleted: let its graphs go
                for key in [key for key in self._graphs if key[0] == store_id]:
                    del self._graphs[key]
        return index

    def _lexical(self, index: _StoreIndex) -> BM25Index:
        with index.lock:
            if index.lexical is None:
                index.lexical = BM25Index([t.split(" ") if t else [] for t in index.terms])
            return index.lexical

    def document_frequencies(
        self, store_ids: Sequence[str], words: Sequence[str]
    ) -> tuple[int, dict[str, int]]:
        """How many searchable chunks the stores hold, and how many of them hold each of
        ``words`` (BM25's document frequency, for IDF weights)."""
        size, found = 0, dict.fromkeys(words, 0)
        for store_id in store_ids:
            index = self._index(store_id)
            with index.lock:
                if index.frequencies is None:
                    index.frequencies = Counter(
                        term for row in index.terms for term in set(row.split(" ")) if term
                    )
                frequencies = index.frequencies
            size += len(index.chunk_ids)
            for word in found:
                found[word] += frequencies.get(word, 0)
        return size, found

    def _dense(
        self, store_id: str, index: _StoreIndex, dimensions: int
    ) -> tuple[DenseIndex, np.ndarray]:
        """The dense index over a store's completed chunks, and each of its rows' row in
        ``index.chunk_ids`` (to apply filters).

        A graph that must be built from nothing (a store's first search since start-up) is
        built on a background thread while searches use an exact index, which answers a
        100k-chunk store in tens of milliseconds where the build takes minutes; a graph that
        already exists is updated in place. One build per store at a time: a store that
        changes meanwhile stays exact until that graph is done, then updates it."""
        with index.lock:
            built = index.dense.get(dimensions)
            if built is None or built[0].requested != self.vector_index:
                ids, vectors = self.tables.store_vectors(store_id, dimensions)
                keep = np.isin(ids, index.chunk_ids)
                ids, vectors = ids[keep], vectors[keep]
                rows = np.searchsorted(index.chunk_ids, ids)
                key = (store_id, dimensions)
                with self._lock:
                    previous = self._graphs.get(key)
                    fresh_graph = wants_graph(self.vector_index, len(ids)) and (
                        previous is None or previous.kind != "hnsw"
                    )
                    start_build = (
                        fresh_graph and self.build_in_background and key not in self._building
                    )
                    if start_build:
                        self._building.add(key)
                if fresh_graph and self.build_in_background:
                    dense = DenseIndex(ids, vectors, "exact")
                    dense.requested = self.vector_index  # stands in until the graph is built
                    if start_build:
                        threading.Thread(
                            target=self._build_graph,
                            args=(index, dimensions, key, ids, vectors, rows, dense),
                            name=f"hnsw-{store_id}",
                            daemon=True,
                        ).start()
                else:
                    dense = DenseIndex(ids, vectors, self.vector_index, previous=previous)
                    with self._lock:
                        self._graphs[key] = dense
                built = (dense, rows)
                index.dense[dimensions] = built
            return built

    def _build_graph(
        self,
        index: _StoreIndex,
        dimensions: int,
        key: tuple[str, int],
        ids: np.ndarray,
        vectors: np.ndarray,
        rows: np.ndarray,
        stand_in: DenseIndex,
    ) -> None:
        """Build an HNSW index off the request path and swap it in. If the store changed
        meanwhile, the graph is kept all the same and the newer index's exact stand-in is
        dropped, so the next search updates the graph in place instead of building again."""
        try:
            graph = DenseIndex(ids, vectors, self.vector_index)
        except Exception:  # searches stay exact; the next change of the store tries again
            logger.exception("building the HNSW index of %s failed", key[0])
            with self._lock:
                self._building.discard(key)
            return
        with index.lock:
            current = index.dense.get(dimensions)
            if current is not None and current[0] is stand_in:
                index.dense[dimensions] = (graph, rows)
        with self._lock:
            self._building.discard(key)
            latest = self._stores.get(key[0])
            if latest is not None and len(latest.chunk_ids):  # not emptied or deleted since
                self._graphs[key] = graph
        self.graphs_built += 1
        if latest is not None and latest is not index and len(latest.chunk_ids):
            with latest.lock:
                entry = latest.dense.get(dimensions)
                if (
                    entry is not None
                    and entry[0].kind == "exact"
                    and wants_graph(self.vector_index, len(entry[0]))
                ):  # an exact stand-in: the next search updates the graph instead
                    del latest.dense[dimensions]

    def warm(self) -> None:
        """Build every store's indexes now (a server calls this at start-up, in the background),
        so the first search does not pay for them."""
        try:
            for store_id, dimensions in self.tables.store_dimensions():
                index = self._index(store_id)
                if len(index.chunk_ids):
                    self._lexical(index)
                    self._dense(store_id, index, dimensions)
        except Exception:  # e.g. the server stopping meanwhile: searches build what they need
            logger.debug("warming the search indexes stopped", exc_info=True)

    def search(
        self,
        store_ids: Sequence[str],
        query: str,
        query_vector: np.ndarray | None,
        *,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        mode: RetrievalMode = "hybrid",
        score_threshold: float = 0.0,
        depth: int | None = None,
    ) -> list[Hit]:
        """The ``k`` best hits over ``store_ids``."""
        depth = depth or max(k * 4, 20)
        rankings: list[list[int]] = []
        sources: dict[int, list[str]] = {}
        similarity: dict[int, float] = {}
        dense_indexes: list[DenseIndex] = []
        query_terms = terms(query) if mode != "vector" else []
        for store_id in store_ids:
            index = self._index(store_id)
            if not len(index.chunk_ids):
                continue
            allowed: np.ndarray | None = None
            if filters is not None:
                attributes = self.tables.attributes_by_file(store_id)
                allowed_files = {
                    fid
                    for fid, attrs in attributes.items()
                    if attribute_filters.matches(filters, attrs)
                }
                allowed = np.fromiter(
                    (f in allowed_files for f in index.file_ids),
                    dtype=bool,
                    count=len(index.file_ids),
                )
                if not allowed.any():
                    continue
            if query_vector is not None:
                # Built in every mode: a hit's score is its cosine similarity.
                dense, rows = self._dense(store_id, index, int(query_vector.shape[0]))
                dense_indexes.append(dense)
            if mode != "bm25" and query_vector is not None:
                nearest = dense.search(
                    query_vector, depth, allowed=None if allowed is None else allowed[rows]
                )
                rankings.append([c for c, _ in nearest])
                for chunk_id, distance in nearest:
                    similarity[chunk_id] = 1.0 - distance
                    sources.setdefault(chunk_id, []).append("vector")
            if mode != "vector":
                lexical_hits = self._lexical(index).search(query_terms, depth, allowed=allowed)
                ranking = [int(index.chunk_ids[row]) for row, _ in lexical_hits]
                rankings.append(ranking)
                for chunk_id in ranking:
                    sources.setdefault(chunk_id, []).append("bm25")
        fused = reciprocal_rank_fusion(rankings)
        ordered = sorted(fused, key=lambda c: -fused[c])
        if query_vector is not None:
            for dense in dense_indexes:
                missing = [c for c in ordered if c not in similarity]
                similarity.update(dense.similarities(query_vector, missing))
        if isinstance(self.reranker, NoReranker):
            # Only the rows that can be returned are read from the database.
            ordered = [c for c in ordered if _clamp(similarity.get(c, 0.0)) >= score_threshold]
            ordered = ordered[:k]
        rows_by_id = self.tables.chunks(ordered)
        hits = [
            Hit(
                chunk_id=c,
                vector_store_id=rows_by_id[c]["vector_store_id"],
                file_id=rows_by_id[c]["file_id"],
                filename=rows_by_id[c]["filename"] or rows_by_id[c]["file_id"],
                text=rows_by_id[c]["text"],
                page=rows_by_id[c]["page"],
                heading=rows_by_id[c]["heading"],
                attributes=rows_by_id[c]["attributes"],
                score=_clamp(similarity.get(c, 0.0)),
                fused=fused[c],
                sources=sources.get(c, []),
            )
            for c in ordered
            if c in rows_by_id
        ]
        hits = self.reranker.rerank(query, hits)
        return [hit for hit in hits if hit.score >= score_threshold][:k]


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))
