"""Spans: what the analyzer finds, and how overlapping findings are settled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """One finding: an entity ``type`` at character offsets ``[start, end)`` of the text."""

    type: str
    start: int
    end: int
    score: float
    text: str

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the best of overlapping spans: higher score wins, then the longer one; a PERSON
    inside an ADDRESS never wins.

    Ties keep the span found first (recognizers run in registry order). The result is
    sorted by position.
    """
    candidates = list(spans)
    addresses = [span for span in candidates if span.type == "ADDRESS"]
    # Street names look like names to NER ("2450 Crown St" -> PERSON "Crown St"): a name
    # guess inside an address match is part of the address, whatever its score.
    candidates = [
        span
        for span in candidates
        if not (
            span.type == "PERSON"
            and any(a.start <= span.start and span.end <= a.end for a in addresses)
        )
    ]
    ranked = sorted(candidates, key=lambda span: (-span.score, -(span.end - span.start)))
    kept: list[Span] = []
    for span in ranked:
        if not any(span.overlaps(other) for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda span: (span.start, span.end))
