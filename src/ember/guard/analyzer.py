"""The analyzer: runs the enabled recognizers over a text and returns settled spans.

Recognizers are built once per ``Analyzer``; regexes are compiled once per class. Those that
load a model (spaCy for English names, jieba for Chinese ones) run only when their language
applies: the one asked for, or with ``language="auto"``, the ones the text's share of CJK
characters points to (both for mixed text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ember.errors import InvalidRequestError
from ember.guard.registry import RecognizerRegistry, default_registry
from ember.guard.spans import Span, resolve_overlaps

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
DEFAULT_THRESHOLD = 0.4


def detect_languages(text: str) -> frozenset[str]:
    """The languages a text is written in, judged by its share of CJK characters."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    letters = cjk + latin
    if letters == 0:
        return frozenset({"en"})
    found = set()
    # A CJK character carries about a word; a Latin letter about a fifth of one.
    if cjk / letters >= 0.15:
        found.add("zh")
    if latin / letters >= 0.5:
        found.add("en")
    return frozenset(found or {"zh"})


def detect_language(text: str) -> str:
    """The main language of a text: ``"zh"`` when CJK characters weigh most, else ``"en"``."""
    return (
        "zh"
        if "zh" in detect_languages(text)
        and len(_CJK.findall(text)) * 3 >= len(_LATIN.findall(text))
        else "en"
    )


class Analyzer:
    """Finds PII in text with the enabled recognizers. Build once, call ``analyze`` often."""

    def __init__(
        self,
        enabled: Iterable[str] | None = None,
        *,
        registry: RecognizerRegistry = default_registry,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.recognizers = registry.build(enabled)
        self.threshold = threshold

    @property
    def entity_types(self) -> frozenset[str]:
        return frozenset().union(*(r.entity_types for r in self.recognizers))

    def analyze(
        self,
        text: str,
        language: str = "auto",
        entities: Iterable[str] | None = None,
        *,
        nlp: bool | None = None,
    ) -> list[Span]:
        """Spans of PII in ``text``, sorted by position, none overlapping.

        ``nlp`` picks the recognizers: None runs all of them, False only the pattern ones
        (regexes, checksums, ``phonenumbers``: well under a millisecond per 1,000 characters),
        True only those that load a model (spaCy, jieba). The guard stage runs the two
        halves at different times and merges them with :func:`resolve_overlaps`.
        """
        languages = self._languages(text, language)
        wanted = None if entities is None else frozenset(entities)
        if wanted is not None and (unknown := sorted(wanted - self.entity_types)):
            raise InvalidRequestError(
                f"Unknown entity type(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.entity_types))}.",
                param="entities",
            )
        found: list[Span] = []
        for recognizer in self.recognizers:
            if nlp is not None and recognizer.uses_nlp != nlp:
                continue
            if wanted is not None and not (recognizer.entity_types & wanted):
                continue
            run_in = recognizer.languages & languages
            if not run_in:
                continue
            if recognizer.uses_nlp:
                for lang in sorted(run_in):
                    found.extend(recognizer.analyze(text, lang))
            else:
                found.extend(recognizer.analyze(text, "zh" if "zh" in languages else "en"))
        return resolve_overlaps(
            span
            for span in found
            if span.score >= self.threshold and (wanted is None or span.type in wanted)
        )

    @property
    def has_nlp(self) -> bool:
        """Whether any enabled recognizer loads a model."""
        return any(r.uses_nlp for r in self.recognizers)

    @staticmethod
    def _languages(text: str, language: str) -> frozenset[str]:
        if language == "auto":
            return detect_languages(text)
        if language in ("zh", "en"):
            return frozenset({language})
        raise InvalidRequestError(
            f"Unknown language {language!r}; use 'zh', 'en' or 'auto'.", param="language"
        )
