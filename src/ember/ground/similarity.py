"""Sentence-level similarity in the multilingual embedding, for the checks that words cannot
make: a claim against a source in another language, a question against the passage that
paraphrases it.

The embedder is the one retrieval already loaded (multilingual-e5): claims and questions are
embedded as queries, source sentences as passages, as e5 was trained. One ``Similarity`` per
grounded answer caches what it embedded, so each text is embedded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from ember.ground.chunking import split_sentences

Embed = Callable[[Sequence[str], Literal["query", "passage"]], np.ndarray]


class Similarity:
    """Cosine similarities between queries and passages, each text embedded once."""

    def __init__(self, embed: Embed) -> None:
        self._embed = embed
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def _vectors(self, texts: Sequence[str], kind: Literal["query", "passage"]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if (kind, t) not in self._cache))
        if todo:
            vectors = np.asarray(self._embed(todo, kind), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            unit = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
            for text, vector in zip(todo, unit, strict=True):
                self._cache[(kind, text)] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[(kind, t)] for t in texts])

    def pairs(self, query: str, passages: Sequence[str]) -> list[float]:
        """``query``'s similarity to each of ``passages``."""
        if not passages:
            return []
        q = self._vectors([query], "query")[0]
        return [float(v) for v in self._vectors(passages, "passage") @ q]

    def closest_index(self, claim: str, sentences: Sequence[str]) -> int:
        """The index of the sentence closest to ``claim``."""
        return int(np.argmax(self.pairs(claim, sentences))) if sentences else 0

    def closest_sentence(self, claims: Sequence[str], sources: Sequence[str]) -> np.ndarray:
        """``[i, j]``: claim ``i``'s similarity to the closest sentence of source ``j``."""
        table = np.zeros((len(claims), len(sources)), dtype=np.float32)
        if not claims or not sources:
            return table
        queries = self._vectors(claims, "query")
        for j, source in enumerate(sources):
            sentences = split_sentences(source) or [source]
            table[:, j] = (queries @ self._vectors(sentences, "passage").T).max(axis=1)
        return table
