"""Ember's guards. This package owns PII detection: recognizers, their registry and the analyzer.

A recognizer (``recognizer.py``) is patterns + context words + a ``validate()`` checksum, as in
Presidio; recognizers register themselves in ``registry.py``; ``Analyzer`` (``analyzer.py``)
runs the enabled ones and returns non-overlapping ``Span`` objects (``spans.py``) with
character offsets into the text.
"""

from __future__ import annotations

from ember.guard.analyzer import Analyzer, detect_language
from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import RecognizerRegistry, default_registry, register
from ember.guard.spans import Span, resolve_overlaps

__all__ = [
    "Analyzer",
    "Pattern",
    "Recognizer",
    "RecognizerRegistry",
    "Span",
    "default_registry",
    "detect_language",
    "register",
    "resolve_overlaps",
]
