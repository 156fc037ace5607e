"""CN_PASSPORT: Chinese passport numbers (E or G plus 8 digits; E plus a letter and 7 digits).

The shape is common in other codes, so a context word must be near.
"""

from __future__ import annotations

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


@register
class CnPassportRecognizer(Recognizer):
    name = "cn_passport"
    entity_type = "CN_PASSPORT"
    patterns = (
        Pattern("passport", r"(?<![A-Za-z0-9])(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})(?![A-Za-z0-9])", 0.4),
    )
    context = ("护照", "passport", "证件", "travel document")
    requires_context = True
    context_boost = 0.45
