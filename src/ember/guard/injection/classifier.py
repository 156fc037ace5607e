"""The SecureVector Guardian classifier as an injection detector.

``securevector-guardian-model`` (Apache-2.0) ships a TF-IDF + logistic-regression model
and a stdlib-only runtime (``PureGuardian``): no torch, no numpy, under a millisecond per
text. It is strong on English overrides and DAN prompts and weak on Chinese, which the
pattern detectors cover. The package is imported on first use, so Ember starts without
paying for the model load (about 0.2 s).

The model's own decision threshold (about 0.81) is mapped to 0.5, the scanner's default,
piecewise linearly, so its scores sit on the same scale as the other detectors'.
"""

from __future__ import annotations

import threading
from typing import Any

from ember.errors import EmbeddedModelError
from ember.guard.injection.detector import Detection


def _rescale(score: float, threshold: float) -> float:
    if score < threshold:
        return 0.5 * score / threshold
    return 0.5 + 0.5 * (score - threshold) / (1.0 - threshold)


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
                    from svguardian.model.pure_infer import PureGuardian

                    # download=False: the bundle ships in the wheel; never reach the network.
                    self._model = PureGuardian.load(resolve_runtime(download=False))
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
