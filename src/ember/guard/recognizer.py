"""The recognizer base class: patterns with base scores, context words, a validator.

A subclass declares ``entity_type``, ``languages``, ``patterns`` and ``context``; the regexes
are compiled once per class. For each match, ``validate()`` decides: True pins the score to
1.0 (a checksum passed), False drops the match, None keeps the pattern's score, which context
words near the match then raise. Recognizers that need more than regexes (spaCy, jieba,
phonenumbers) override ``find()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from ember.guard.spans import Span

LANGUAGES = frozenset({"zh", "en"})


@dataclass(frozen=True)
class Pattern:
    """A regex and the score a match gets before validation and context.

    When the regex has a group named ``v``, the span covers that group only (so a pattern may
    require a lead-in such as ``password=`` without flagging it).
    """

    name: str
    regex: str
    score: float
    flags: int = 0


class Recognizer:
    """Finds one kind of entity. Subclass it and register it with ``@register``."""

    name: ClassVar[str]
    entity_type: ClassVar[str]
    languages: ClassVar[frozenset[str]] = LANGUAGES
    patterns: ClassVar[tuple[Pattern, ...]] = ()
    context: ClassVar[tuple[str, ...]] = ()
    # Words just before a match that rule it out ("version 1.2.3.4", "订单号 ...").
    negative_context: ClassVar[tuple[str, ...]] = ()
    context_window: ClassVar[int] = 30
    negative_window: ClassVar[int] = 12
    context_boost: ClassVar[float] = 0.35
    # Drop matches with no context word near them (dates of birth, passports).
    requires_context: ClassVar[bool] = False
    # True for recognizers that load a model (spaCy, jieba): run only for their language.
    uses_nlp: ClassVar[bool] = False
    _compiled: ClassVar[tuple[tuple[Pattern, re.Pattern[str]], ...]] = ()
    _context_re: ClassVar[re.Pattern[str] | None] = None
    _negative_re: ClassVar[re.Pattern[str] | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # ASCII: \w, \d and \b must not treat Chinese characters as word characters.
        cls._compiled = tuple((p, re.compile(p.regex, p.flags | re.ASCII)) for p in cls.patterns)
        cls._context_re = _words_regex(cls.context)
        cls._negative_re = _words_regex(cls.negative_context)

    @property
    def entity_types(self) -> frozenset[str]:
        """Every type this recognizer can emit (see ``entity_for``)."""
        return frozenset({self.entity_type})

    def validate(self, value: str) -> bool | None:
        """True: a checksum passed (score 1.0). False: not this entity. None: can't tell."""
        return None

    def entity_for(self, value: str) -> str:
        """The type of one match; recognizers emitting several types override it."""
        return self.entity_type

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        """Raw candidates ``(start, end, score)`` before validation and context."""
        for pattern, regex in self._compiled:
            for match in regex.finditer(text):
                start, end = match.span("v") if "v" in regex.groupindex else match.span()
                if start < end:
                    yield start, end, pattern.score

    def analyze(self, text: str, language: str) -> list[Span]:
        spans = []
        lowered: str | None = None
        for start, end, base in self.find(text, language):
            value = text[start:end]
            verdict = self.validate(value)
            if verdict is False:
                continue
            if lowered is None:
                lowered = text.lower()
            if self._negative_re is not None and self._negative_re.search(
                lowered, max(0, start - self.negative_window), start
            ):
                continue
            near = self._context_re is not None and bool(
                self._context_re.search(lowered, max(0, start - self.context_window), start)
                or self._context_re.search(lowered, end, end + self.context_window)
            )
            if self.requires_context and not near:
                continue
            # Only a passed checksum reaches 1.0; context alone tops out just below.
            score = 1.0 if verdict else min(0.95, base + (self.context_boost if near else 0.0))
            spans.append(Span(self.entity_for(value), start, end, round(score, 2), value))
        return spans


def word_set(words: str) -> frozenset[str]:
    """A word list written as whitespace-separated text (long lexicons read better so)."""
    return frozenset(words.split())


def _words_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a word list; Latin words must start a word ("ip" is not in "zip")."""
    if not words:
        return None
    parts = [
        (r"(?<![a-z])" if word[0].isascii() and word[0].isalpha() else "") + re.escape(word)
        for word in words
    ]
    return re.compile("|".join(parts))
