"""Local moderation for Chinese and English, in OpenAI's categories.

This is a lexicon model, not a learned classifier: each category has weighted English
regular expressions and Chinese phrases (``moderation_lexicon.py``), and matches combine
as independent evidence, ``1 - prod(1 - w)``. It catches explicit text and misses
paraphrase, sarcasm and context; no open Chinese+English moderation classifier ships on
PyPI today. A real classifier slots in through the :class:`ModerationModel` protocol and
replaces or joins this one.

Two cheap context rules: a match right after a negation ("not", "never", 不, 没有, 别)
counts at a third of its weight, and a match inside quotation marks counts at 60%
(reported speech, titles, a user asking what a word means). A subcategory's score lifts
its parent's (``self-harm/intent`` implies ``self-harm``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from ember.guard.moderation_lexicon import LEXICON

CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
PARENT: dict[str, str] = {name: name.split("/")[0] for name in CATEGORIES if "/" in name}
PARENT["illicit/violent"] = "illicit"
DEFAULT_THRESHOLD = 0.5

_NEGATION = re.compile(
    r"(?:\b(?:not|never|no|don't|do not|didn't|won't|wouldn't|isn't|without)\s+(?:\w+\s+){0,2}$)"
    r"|(?<!有)(?:不|没有|没|别|不要|不会|从不|绝不)[^\s，。,]{0,2}$",
    re.IGNORECASE,
)
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "'": "'"}
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class ModerationResult:
    """Scores for every category, the flags at the threshold, and what matched."""

    category_scores: dict[str, float]
    threshold: float = DEFAULT_THRESHOLD
    matches: dict[str, list[str]] = field(default_factory=dict)

    @property
    def categories(self) -> dict[str, bool]:
        return {name: score >= self.threshold for name, score in self.category_scores.items()}

    @property
    def flagged(self) -> bool:
        return any(self.categories.values())


class ModerationModel(Protocol):
    """What the moderation endpoint needs: category scores for one text."""

    def classify(self, text: str) -> ModerationResult: ...


def _quoted(text: str, start: int) -> bool:
    """Whether ``start`` falls inside a pair of quotation marks on the same line."""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start]
    for opening, closing in _QUOTES.items():
        if opening == closing:
            if before.count(opening) % 2 == 1:
                return True
        elif before.count(opening) > before.count(closing):
            return True
    return False


class LexiconModeration:
    """The built-in :class:`ModerationModel`: weighted patterns per category."""

    def __init__(
        self,
        lexicon: dict[str, list[tuple[str, float]]] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.threshold = threshold
        self._rows: dict[str, list[tuple[re.Pattern[str], float]]] = {}
        for category, rows in (lexicon or LEXICON).items():
            compiled = []
            for pattern, weight in rows:
                # Chinese has no word boundaries; English rows are whole-word phrases.
                regex = pattern if _CJK.search(pattern) else rf"(?<!\w)(?:{pattern})(?!\w)"
                compiled.append((re.compile(regex, re.IGNORECASE), weight))
            self._rows[category] = compiled

    def classify(self, text: str) -> ModerationResult:
        scores: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
        matches: dict[str, list[str]] = {}
        for category, rows in self._rows.items():
            remaining = 1.0
            for regex, weight in rows:
                match = regex.search(text)
                if match is None:
                    continue
                prefix = text[max(0, match.start() - 20) : match.start()]
                if _NEGATION.search(prefix):
                    weight /= 3
                if _quoted(text, match.start()):
                    weight *= 0.6
                remaining *= 1.0 - weight
                matches.setdefault(category, []).append(match.group(0))
            scores[category] = 1.0 - remaining
        for child, parent in PARENT.items():
            scores[parent] = max(scores[parent], scores[child] * 0.95)
        rounded = {name: round(score, 4) for name, score in scores.items()}
        return ModerationResult(rounded, self.threshold, matches)
