"""BM25 over chunk terms: jieba segments Chinese, everything is lower-cased.

Terms are computed once at ingestion and stored with the chunk, so a store's BM25 index
(bm25s, sparse matrices) is rebuilt from stored terms in a fraction of a second when its
chunks change.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w", re.UNICODE)
_QUIET_JIEBA: list[bool] = []
# Function words that match everything and rank nothing.
_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "也",
        "就",
        "都",
        "而",
        "之",
        "其",
        "这",
        "那",
        "有",
        "为",
        "以",
        "于",
        "对",
        "中",
        "上",
        "下",
        "个",
        "吗",
        "呢",
        "吧",
        "啊",
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "as",
        "at",
        "it",
        "this",
        "that",
        "from",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
    ]
)


def terms(text: str) -> list[str]:
    """Search terms of ``text``: jieba's search-mode segmentation, words only, no stop words."""
    import jieba

    if not _QUIET_JIEBA:  # once: setLevel clears every logger's cache
        logging.getLogger("jieba").setLevel(logging.WARNING)
        _QUIET_JIEBA.append(True)
    words = jieba.lcut_for_search(text.lower())
    return [w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in _STOP]


class BM25Index:
    """A bm25s index over documents given as term lists; ``search`` returns (row, score)."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        import bm25s

        self.size = len(documents)
        self._model = bm25s.BM25()
        if self.size:
            self._model.index([list(doc) for doc in documents], show_progress=False)

    def search(
        self, query_terms: Sequence[str], k: int, *, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` rows (indices into the documents) with positive scores."""
        vocab = self._model.vocab_dict if self.size else {}
        known = [t for t in query_terms if t in vocab]
        if not known or not self.size:
            return []
        scores = np.asarray(self._model.get_scores(known), dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
