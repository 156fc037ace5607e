"""BANK_CARD and CREDIT_CARD: 12-19 digit card numbers that pass the Luhn check.

UnionPay (62...) numbers are BANK_CARD; Visa, Mastercard, Amex, Discover, JCB, Diners and
Maestro prefixes are CREDIT_CARD. A number with no known issuer prefix is dropped even when it
passes Luhn: one number in ten does, and order numbers are common.
"""

from __future__ import annotations

import re

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

_SEPARATORS = re.compile(r"[ -]")
# Visa, Mastercard (51-55, 2221-2720), Amex, Discover, JCB (35, and 2131/1800 on 15 digits),
# Diners, Maestro (5018, 5020, 5038, 5893, 6304, 6759, 6761-6763; 12 to 19 digits).
_CREDIT = re.compile(
    r"4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|3[0689]|2131|1800"
    r"|5018|5020|5038|5893|6304|6759|676[1-3]"
)
_MAESTRO = re.compile(r"5018|5020|5038|5893|6304|6759|676[1-3]")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@register
class CardRecognizer(Recognizer):
    name = "card"
    entity_type = "CREDIT_CARD"
    patterns = (Pattern("card", r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])", 0.5),)
    context = ("card", "visa", "mastercard", "卡号", "银行卡", "信用卡", "借记卡", "银联")

    @property
    def entity_types(self) -> frozenset[str]:
        return frozenset({"BANK_CARD", "CREDIT_CARD"})

    def validate(self, value: str) -> bool | None:
        digits = _SEPARATORS.sub("", value)
        if len(set(digits)) == 1 or not luhn_ok(digits):
            return False
        if len(digits) == 12:  # only Maestro issues 12-digit cards
            return _MAESTRO.match(digits) is not None
        return digits.startswith("62") or _CREDIT.match(digits) is not None

    def entity_for(self, value: str) -> str:
        return "BANK_CARD" if _SEPARATORS.sub("", value).startswith("62") else "CREDIT_CARD"
