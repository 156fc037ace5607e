"""US_SSN: social security numbers, minus the areas, groups and serials never issued.

There is no checksum, so a dashed number scores moderately and a bare nine-digit one needs a
context word.
"""

from __future__ import annotations

import re

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

# Numbers published in advertising or used as examples; never a real person's.
KNOWN_FAKE = frozenset({"078051120", "219099999", "123456789", "457555462"})


@register
class UsSsnRecognizer(Recognizer):
    name = "us_ssn"
    entity_type = "US_SSN"
    languages = frozenset({"en"})
    patterns = (
        Pattern("ssn_dashed", r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])", 0.5),
        Pattern("ssn_bare", r"(?<![\d-])\d{9}(?![\d-])", 0.1),
    )
    context = ("ssn", "social security", "social sec", "taxpayer")

    def validate(self, value: str) -> bool | None:
        digits = re.sub(r"\D", "", value)
        area, group, serial = digits[:3], digits[3:5], digits[5:]
        if area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000":
            return False
        return False if digits in KNOWN_FAKE else None
