"""IBAN: international bank account numbers, checked with ISO 13616 mod 97."""

from __future__ import annotations

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@register
class IbanRecognizer(Recognizer):
    name = "iban"
    entity_type = "IBAN"
    patterns = (
        Pattern(
            "iban",
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"
            r"(?![A-Za-z0-9])",
            0.3,
        ),
    )
    context = ("iban", "bank account", "account", "账户", "账号")

    def validate(self, value: str) -> bool | None:
        return iban_ok(value)
