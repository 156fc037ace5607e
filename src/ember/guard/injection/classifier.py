"""The SecureVector Guardian classifier as an injection detector.

``securevector-guardian-model`` (Apache-2.0) ships a TF-IDF + logistic-regression model
and a stdlib-only runtime (``PureGuardian``): no torch, no numpy, under a millisecond per
text. It is strong on English overrides and DAN prompts and weak on Chinese, which the
pattern detectors cover. The package is imported on first use, so Ember starts without
paying for the model load (about 0.2 s).

The model's own decision threshold (about 0.81) is mapped to 0.5, the scanner's default,
piecewise linearly, so its scores sit on the same scale as the other detectors'.

The package's runtime scores a long text as the whole plus overlapping windows, each word
cut into character n-grams again for every window it is in, and sums features in Python
loops. :class:`FastGuardian` computes the same features and scores: each word's character
n-gram columns are looked up once (a bounded cache: words recur across windows, messages and
requests), and the linear layer is a few numpy array operations.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from typing import Any

import numpy as np

from ember.errors import EmbeddedModelError
from ember.guard.injection.detector import Detection, register_detector


def _rescale(score: float, threshold: float) -> float:
    if score < threshold:
        return 0.5 * score / threshold
    return 0.5 + 0.5 * (score - threshold) / (1.0 - threshold)


_WS = re.compile(r"\s\s+")
_WORD_CACHE_ENTRIES = 200_000


def fast_guardian(bundle_path: str) -> Any:
    """The package's ``PureGuardian`` with the cached, vectorised scoring described above."""
    from svguardian.model.pure_infer import PureGuardian, _word_ngrams

    class FastGuardian(PureGuardian):
        def __init__(self, bundle: dict[str, Any]) -> None:
            super().__init__(bundle)
            self._coef = np.asarray(self.coef, dtype=np.float64)
            self._intercept = np.asarray(self.intercept, dtype=np.float64)
            self._word_idf = np.asarray(self.word["idf"], dtype=np.float64)
            self._char_idf = np.asarray(self.char["idf"], dtype=np.float64)
            self._char_cols: dict[str, Counter[int]] = {}

        def _word_char_columns(self, word: str) -> Counter[int]:
            cols = self._char_cols.get(word)
            if cols is None:
                lo, hi = self.char["ngram_range"]
                vocab = self.char["vocab"]
                padded = f" {word} "
                grams: list[str] = []
                for k in range(lo, hi + 1):
                    grams.extend(padded[i : i + k] for i in range(max(1, len(padded) - k + 1)))
                    if len(padded) <= k:  # a short word counts once
                        break
                cols = Counter(vocab[g] for g in grams if g in vocab)
                if len(self._char_cols) >= _WORD_CACHE_ENTRIES:
                    self._char_cols.clear()
                self._char_cols[word] = cols
            return cols

        @staticmethod
        def _block(counts: Counter[int], idf: np.ndarray, sublinear: bool) -> tuple[Any, Any]:
            if not counts:
                return np.empty(0, dtype=np.int64), np.empty(0)
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if sublinear:
                tf = 1.0 + np.log(tf)
            values = tf * idf[cols]
            norm = math.sqrt(float((values * values).sum()))
            return cols, (values / norm if norm > 0 else values)

        def _scores(self, text: str) -> list[float]:
            vocab = self.word["vocab"]
            word_counts = Counter(
                vocab[g] for g in _word_ngrams(text, *self.word["ngram_range"]) if g in vocab
            )
            char_counts: Counter[int] = Counter()
            for word in _WS.sub(" ", text.lower()).split():
                char_counts.update(self._word_char_columns(word))
            wc, wv = self._block(word_counts, self._word_idf, self.word["sublinear_tf"])
            cc, cv = self._block(char_counts, self._char_idf, self.char["sublinear_tf"])
            # Element-wise products, not BLAS: a threaded gemv on a busy machine costs more
            # than the arithmetic.
            scores = (
                self._intercept
                + (self._coef[:, wc] * wv).sum(axis=1)
                + (self._coef[:, self.n_word + cc] * cv).sum(axis=1)
            )
            return [float(x) for x in scores]

    return FastGuardian.load(bundle_path)


class GuardianClassifierDetector:
    """Wraps ``svguardian``'s pure-Python runtime; long texts are scored in windows."""

    name = "classifier"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from svguardian import resolve_runtime

                    # download=False: the bundle ships in the wheel; never reach the network.
                    self._model = fast_guardian(resolve_runtime(download=False))
                except (ImportError, OSError, ValueError, RuntimeError) as exc:
                    raise EmbeddedModelError(
                        "The injection classifier could not load; reinstall it with "
                        "'pip install securevector-guardian-model'."
                    ) from exc
        return self._model

    def check(self, text: str) -> Detection:
        from svguardian.window import predict_windowed

        model = self._load()
        prediction = predict_windowed(model, text)
        score = _rescale(float(prediction["malicious_score"]), float(model.threshold))
        reasons = (f"classifier: {prediction['category']}",) if score >= 0.5 else ()
        return Detection(round(min(1.0, max(0.0, score)), 4), reasons)

    def score(self, text: str) -> float:
        return self.check(text).score


register_detector("classifier", GuardianClassifierDetector)
