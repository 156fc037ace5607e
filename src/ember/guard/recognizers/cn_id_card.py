"""CN_ID_CARD: 18-digit resident ID numbers (GB 11643 check digit) and the old 15-digit form.

The 18-digit form carries a birth date and an ISO 7064 mod 11-2 check digit (0-9 or X); a
valid one pins the score. The 15-digit form has no check digit, so it needs a valid birth
date and, to clear the threshold, a context word.
"""

from __future__ import annotations

import datetime

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= born <= datetime.date.today()


@register
class CnIdCardRecognizer(Recognizer):
    name = "cn_id_card"
    entity_type = "CN_ID_CARD"
    patterns = (
        Pattern("id18", r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])", 0.3),
        Pattern("id15", r"(?<![0-9A-Za-z])[1-9]\d{14}(?![0-9A-Za-z])", 0.3),
    )
    context = ("身份证", "证件号", "公民身份", "id card", "id number", "resident id")

    def validate(self, value: str) -> bool | None:
        if len(value) == 18:
            if not _valid_date(int(value[6:10]), int(value[10:12]), int(value[12:14])):
                return False
            return id_check_char(value[:17]) == value[17].upper()
        if not _valid_date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12])):
            return False
        return None
