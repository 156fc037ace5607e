"""In-memory dense search over a store's stored vectors: exact (numpy) or approximate (HNSW).

SQLite stays the single source of truth: a :class:`DenseIndex` is built from the vectors
stored in sqlite-vec (when a store is first searched, and again whenever its chunks change)
and never written back. ``exact`` scores every vector with one matrix product (perfect
recall, fast up to tens of thousands of chunks); ``hnsw`` is a voyager (Spotify's hnswlib)
HNSW graph over the same vectors stored as 8-bit floats (E4M3), whose candidates are rescored
with the exact float cosine similarity. (usearch was used before: its wheel links its own
static C++ runtime, and once it is imported llama.cpp can no longer load a model in the same
process, ``std::bad_cast`` in the vocabulary loader.) ``auto``
uses HNSW from :data:`HNSW_MIN_VECTORS` vectors on.

Filters narrow the candidates to a boolean mask over the rows: a mask that keeps few rows is
searched exactly over those rows; otherwise the graph is searched for more candidates than
needed and the disallowed ones dropped, falling back to an exact search when too few remain.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

VectorIndexKind = Literal["auto", "exact", "hnsw"]
HNSW_MIN_VECTORS = 20_000
# HNSW parameters: graph degree (M), build and search beam widths (ef).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 64
# A filter keeping at most this share of the rows is searched exactly over those rows.
EXACT_FILTER_SHARE = 0.2
# Candidates taken from the graph beyond 2k, rescored with the float vectors.
RESCORE_EXTRA = 16


def normalised(vectors: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def wants_graph(kind: VectorIndexKind, count: int) -> bool:
    """Whether an index of ``count`` vectors under ``kind`` is an HNSW graph."""
    return count > 0 and (kind == "hnsw" or (kind == "auto" and count >= HNSW_MIN_VECTORS))


def _dot(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``matrix @ q`` without BLAS: its thread pool spins badly on a busy CPU (30x slower at
    a thousand rows), and one core is enough for one query."""
    return np.einsum("ij,j->i", matrix, q)


class DenseIndex:
    """Cosine search over ``vectors`` whose row ``i`` belongs to ``ids[i]``."""

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        kind: VectorIndexKind = "auto",
        *,
        previous: DenseIndex | None = None,
    ) -> None:
        """``previous``: the index this one replaces; its HNSW graph is updated in place
        (changed vectors removed and added again) instead of being built anew."""
        self.requested = kind
        self.ids = np.asarray(ids, dtype=np.int64)
        self.matrix = normalised(vectors) if len(self.ids) else np.zeros((0, 1), np.float32)
        self.rows = {int(chunk_id): row for row, chunk_id in enumerate(self.ids.tolist())}
        use_hnsw = wants_graph(kind, len(self.ids))
        self.kind: Literal["exact", "hnsw"] = "hnsw" if use_hnsw else "exact"
        self._graph: Any = None
        if self.kind == "hnsw":
            if previous is not None and previous._graph is not None:
                self._graph = previous._graph
                self._update_graph(previous)
            else:
                self._graph = self._new_graph()
                self._graph.add_items(self.matrix, ids=self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)

    def _new_graph(self) -> Any:
        from voyager import Index, Space, StorageDataType

        return Index(
            Space.Cosine,
            num_dimensions=int(self.matrix.shape[1]),
            M=CONNECTIVITY,
            ef_construction=EXPANSION_ADD,
            storage_data_type=StorageDataType.E4M3,
        )

    def _update_graph(self, previous: DenseIndex) -> None:
        """Make the reused graph hold exactly this index's vectors (keys are chunk ids)."""
        old_rows = np.array([previous.rows.get(int(c), -1) for c in self.ids], dtype=np.int64)
        kept = old_rows >= 0
        same = np.zeros(len(self.ids), dtype=bool)
        if kept.any():
            same[kept] = np.all(previous.matrix[old_rows[kept]] == self.matrix[kept], axis=1)
        gone = np.setdiff1d(previous.ids, self.ids[same])
        for chunk_id in gone.tolist():
            self._graph.mark_deleted(int(chunk_id))
        fresh = ~same
        if fresh.any():
            self._graph.add_items(self.matrix[fresh], ids=self.ids[fresh].tolist())

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine distance) of the ``k`` nearest rows, nearest first."""
        if not len(self.ids) or k <= 0:
            return []
        q = normalised(query)[0]
        if allowed is not None:
            kept = np.flatnonzero(allowed)
            if not len(kept):
                return []
            if self._graph is None or len(kept) <= EXACT_FILTER_SHARE * len(self.ids):
                return self._exact(q, k, kept)
            share = len(kept) / len(self.ids)
            found = self._approximate(q, int((2 * k + RESCORE_EXTRA) / share), allowed)
            if len(found) >= min(k, len(kept)):
                return found[:k]
            return self._exact(q, k, kept)
        if self._graph is None:
            return self._exact(q, k, None)
        # More candidates than asked for: the int8 graph's order is rescored in float.
        return self._approximate(q, 2 * k + RESCORE_EXTRA, None)[:k]

    def _exact(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
        matrix = self.matrix if rows is None else self.matrix[rows]
        similarity = _dot(matrix, q)
        k = min(k, len(similarity))
        top = np.argpartition(-similarity, k - 1)[:k]
        top = top[np.argsort(-similarity[top], kind="stable")]
        chosen = top if rows is None else rows[top]
        return [
            (int(self.ids[row]), float(1.0 - s))
            for row, s in zip(chosen.tolist(), similarity[top].tolist(), strict=True)
        ]

    def _approximate(
        self, q: np.ndarray, count: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        assert self._graph is not None
        count = min(count, len(self.ids))
        try:
            keys, _ = self._graph.query(q, count, query_ef=max(EXPANSION_SEARCH, count))
        except RuntimeError:  # a newer index shrank the shared graph below ``count``
            return self._exact(q, count, None if allowed is None else np.flatnonzero(allowed))
        # A newer index may be updating the shared graph: keys unknown here are skipped.
        found = (self.rows.get(int(key)) for key in keys.tolist())
        rows = np.array([row for row in found if row is not None], dtype=np.int64)
        if allowed is not None:
            rows = rows[allowed[rows]]
        # Exact cosine on the candidates: distances mean the same in both kinds.
        similarity = _dot(self.matrix[rows], q)
        order = np.argsort(-similarity, kind="stable")
        return [(int(self.ids[rows[i]]), float(1.0 - similarity[i])) for i in order.tolist()]

    def similarities(self, query: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of ``query`` to each of ``chunk_ids`` held here."""
        rows = [self.rows[c] for c in chunk_ids if c in self.rows]
        if not rows:
            return {}
        values = _dot(self.matrix[rows], normalised(query)[0])
        return {int(self.ids[r]): float(v) for r, v in zip(rows, values.tolist(), strict=True)}
