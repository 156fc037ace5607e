"""Hybrid retrieval: dense (sqlite-vec) and lexical (BM25) hits fused by reciprocal rank.

``mode`` picks ``hybrid`` (default), ``vector`` or ``bm25``. Results are ordered by the
fused rank; each hit's ``score`` is its cosine similarity to the query (0-1), the one
number that means the same across stores and modes, so ``score_threshold`` and the
retrieval-confidence check of grounded answers both use it. A :class:`Reranker` may reorder
the fused list (registered by name; ``none`` ships).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ember.ground import filters as attribute_filters
from ember.ground.lexical import BM25Index, terms
from ember.store.vectors import VectorTables

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


class Reranker(Protocol):
    """Reorders fused hits (e.g. a cross-encoder or an LLM judging relevance)."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


class NoReranker:
    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        return hits


RERANKERS: dict[str, Callable[[], Reranker]] = {"none": NoReranker}


def register_reranker(name: str) -> Callable[[Callable[[], Reranker]], Callable[[], Reranker]]:
    def register(factory: Callable[[], Reranker]) -> Callable[[], Reranker]:
        RERANKERS[name] = factory
        return factory

    return register


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Σ 1/(k + rank) over the rankings each id appears in (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


@dataclass
class _LexicalCache:
    version: tuple[int, int, int]
    index: BM25Index
    chunk_ids: list[int]
    file_ids: list[str]


class Retriever:
    """Searches vector stores; keeps one BM25 index per store, rebuilt when it changes."""

    def __init__(self, tables: VectorTables, reranker: Reranker | None = None) -> None:
        self.tables = tables
        self.reranker = reranker or NoReranker()
        self._lexical: dict[str, _LexicalCache] = {}
        self._lock = threading.Lock()

    def _bm25(self, store_id: str) -> _LexicalCache:
        version = self.tables.chunks_version(store_id)
        with self._lock:
            cached = self._lexical.get(store_id)
            if cached is not None and cached.version == version:
                return cached
        chunk_ids, file_ids, stored_terms = self.tables.chunk_terms(store_id)
        cache = _LexicalCache(
            version,
            BM25Index([t.split(" ") if t else [] for t in stored_terms]),
            chunk_ids,
            file_ids,
        )
        with self._lock:
            self._lexical[store_id] = cache
        return cache

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
        query_terms = terms(query) if mode != "vector" else []
        for store_id in store_ids:
            allowed_files: set[str] | None = None
            if filters is not None:
                attributes = self.tables.attributes_by_file(store_id)
                allowed_files = {
                    fid
                    for fid, attrs in attributes.items()
                    if attribute_filters.matches(filters, attrs)
                }
                if not allowed_files:
                    continue
            lexical = self._bm25(store_id) if mode != "vector" or allowed_files else None
            allowed_mask = None
            allowed_chunks: list[int] | None = None
            if allowed_files is not None and lexical is not None:
                allowed_mask = np.fromiter(
                    (f in allowed_files for f in lexical.file_ids),
                    dtype=bool,
                    count=len(lexical.file_ids),
                )
                allowed_chunks = [
                    c for c, ok in zip(lexical.chunk_ids, allowed_mask, strict=True) if ok
                ]
            if mode != "bm25" and query_vector is not None:
                dense = self.tables.nearest(store_id, query_vector, depth, chunk_ids=allowed_chunks)
                if allowed_chunks is None:  # only chunks of completed files count
                    live = self.tables.completed_chunks([c for c, _ in dense])
                    dense = [(c, d) for c, d in dense if c in live]
                rankings.append([c for c, _ in dense])
                for chunk_id, distance in dense:
                    similarity[chunk_id] = 1.0 - distance
                    sources.setdefault(chunk_id, []).append("vector")
            if mode != "vector" and lexical is not None:
                lexical_hits = lexical.index.search(query_terms, depth, allowed=allowed_mask)
                ranking = [lexical.chunk_ids[row] for row, _ in lexical_hits]
                rankings.append(ranking)
                for chunk_id in ranking:
                    sources.setdefault(chunk_id, []).append("bm25")
        fused = reciprocal_rank_fusion(rankings)
        ordered = sorted(fused, key=lambda c: -fused[c])
        if query_vector is not None:
            missing = [c for c in ordered if c not in similarity]
            similarity.update(
                {c: 1.0 - d for c, d in self.tables.distances(query_vector, missing).items()}
            )
        rows = self.tables.chunks(ordered)
        hits = [
            Hit(
                chunk_id=c,
                vector_store_id=rows[c]["vector_store_id"],
                file_id=rows[c]["file_id"],
                filename=rows[c]["filename"] or rows[c]["file_id"],
                text=rows[c]["text"],
                page=rows[c]["page"],
                heading=rows[c]["heading"],
                attributes=rows[c]["attributes"],
                score=max(0.0, min(1.0, similarity.get(c, 0.0))),
                fused=fused[c],
                sources=sources.get(c, []),
            )
            for c in ordered
            if c in rows
        ]
        hits = self.reranker.rerank(query, hits)
        return [hit for hit in hits if hit.score >= score_threshold][:k]
