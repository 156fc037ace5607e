"""CN_USCC: the 18-character unified social credit code of organisations (GB 32100).

The last character is a mod-31 check over the first 17 in the code's 31-character alphabet
(no I, O, Z, S, V); a valid one pins the score.
"""

from __future__ import annotations

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


@register
class CnUsccRecognizer(Recognizer):
    name = "cn_uscc"
    entity_type = "CN_USCC"
    patterns = (
        Pattern(
            "uscc",
            r"(?<![0-9A-Za-z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])",
            0.2,
        ),
    )
    context = ("统一社会信用代码", "信用代码", "社会信用", "uscc", "credit code")

    def validate(self, value: str) -> bool | None:
        if uscc_check_char(value[:17]) != value[17]:
            return False
        # An all-digit code may as well be any 18-digit number: it needs context.
        return None if value.isdigit() else True
