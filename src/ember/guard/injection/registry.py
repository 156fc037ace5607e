"""The injection scanner: runs every registered detector and keeps the highest score.

Detectors register by name in :data:`DETECTORS` (a factory per name, see
:mod:`~ember.guard.injection.detector`); the scanner builds the ones it is told to, or all
of them. Text that enters the prompt from elsewhere (``source="document"`` or ``"tool"``:
retrieved passages, tool results) is held to a lower threshold than the user's own message,
because instructions have no business there.
Hidden characters are revealed (:func:`~ember.guard.injection.unicode.reveal`) and the
text detectors run again on what they hid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ember.guard.injection.detector import (
    DETECTORS,
    Detection,
    InjectionDetector,
    register_detector,
)
from ember.guard.injection.unicode import InvisibleUnicodeDetector, reveal

Source = Literal["user", "document", "tool"]

DEFAULT_THRESHOLDS: dict[str, float] = {"user": 0.5, "document": 0.4, "tool": 0.4}

__all__ = [
    "DETECTORS",
    "InjectionScanner",
    "InjectionVerdict",
    "register_detector",
]


@dataclass(frozen=True)
class InjectionVerdict:
    """The scanner's answer: the highest detector score, each detector's, and the flag."""

    score: float
    flagged: bool
    threshold: float
    source: Source
    detectors: dict[str, Detection] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [reason for found in self.detectors.values() for reason in found.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "score": self.score,
            "threshold": self.threshold,
            "source": self.source,
            "detector_scores": {name: found.score for name, found in self.detectors.items()},
            "reasons": self.reasons,
        }


class InjectionScanner:
    """Scores text for prompt injection and jailbreaks with the registered detectors."""

    def __init__(
        self,
        detectors: Iterable[InjectionDetector] | None = None,
        *,
        thresholds: dict[str, float] | None = None,
    ) -> None:
        if detectors is None:
            detectors = [factory() for factory in DETECTORS.values()]
        self.detectors = list(detectors)
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}

    @classmethod
    def with_detectors(cls, names: Iterable[str], **kwargs: Any) -> InjectionScanner:
        return cls([DETECTORS[name]() for name in names], **kwargs)

    def scan(self, text: str, source: Source = "user") -> InjectionVerdict:
        revealed = reveal(text)
        found: dict[str, Detection] = {}
        for detector in self.detectors:
            result = detector.check(text)
            if revealed != text and not isinstance(detector, InvisibleUnicodeDetector):
                hidden = detector.check(revealed)
                if hidden.score > result.score:
                    result = Detection(hidden.score, tuple(f"hidden: {r}" for r in hidden.reasons))
            found[detector.name] = result
        score = max((d.score for d in found.values()), default=0.0)
        threshold = self.thresholds[source]
        return InjectionVerdict(round(score, 4), score >= threshold, threshold, source, found)
