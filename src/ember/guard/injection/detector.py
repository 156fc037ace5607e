"""What an injection detector is, and the weighted-pattern detector most of them are.

A detector is a plug-in: it has a ``name`` and a ``check(text)`` that returns a
:class:`Detection` (a score in [0, 1] and the reasons behind it). ``score(text)`` is the
score alone. Each registers a factory by name with :func:`register_detector` (in
:data:`DETECTORS`): the built-in ones from their own modules, others from plugin packages.
Pattern detectors combine the weights of the patterns that match as independent evidence,
``1 - prod(1 - w)``, so two weak signals together outweigh one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ember.plugins import PluginRegistry


@dataclass(frozen=True)
class Detection:
    """One detector's verdict on one text."""

    score: float
    reasons: tuple[str, ...] = ()


@runtime_checkable
class InjectionDetector(Protocol):
    """A plug-in the scanner runs; adding a detector is adding a class with these two."""

    name: str

    def check(self, text: str) -> Detection: ...

    def score(self, text: str) -> float: ...


DetectorFactory = Callable[[], InjectionDetector]
DETECTORS: PluginRegistry[DetectorFactory] = PluginRegistry("detector")


def register_detector(name: str, factory: DetectorFactory) -> DetectorFactory:
    """Add a detector (a better classifier, say); scanners built afterwards include it."""
    return DETECTORS.add(name, factory)


@dataclass(frozen=True)
class Pattern:
    """A regular expression, the weight a match adds, and the reason it reports."""

    reason: str
    regex: str
    weight: float
    flags: int = re.IGNORECASE
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.regex, self.flags))


def combine(weights: Iterable[float]) -> float:
    """Independent evidence: ``1 - prod(1 - w)``."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


class PatternDetector:
    """A detector made of :class:`Pattern` rows; subclasses set ``name`` and ``PATTERNS``."""

    name = "patterns"
    PATTERNS: tuple[Pattern, ...] = ()

    def check(self, text: str) -> Detection:
        hits = [p for p in self.PATTERNS if p.compiled.search(text)]
        if not hits:
            return Detection(0.0)
        return Detection(round(combine(p.weight for p in hits), 4), tuple(p.reason for p in hits))

    def score(self, text: str) -> float:
        return self.check(text).score
