"""PHONE: Chinese mobiles and landlines by pattern; other countries through ``phonenumbers``.

CN mobiles are 1[3-9] plus 9 digits, optionally after +86/0086, grouped by spaces or dashes.
CN landlines are an area code (010 and 02x take three digits, the rest four) and a 7-8 digit
number. International numbers must start with + and be valid to ``phonenumbers``; in English
text, US-style national numbers are found by its matcher too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

CONTEXT = ("电话", "手机", "联系", "致电", "拨打", "phone", "tel", "mobile", "call", "cell")
NEGATIVE = ("订单", "单号", "编号", "order", "invoice", "#")


@register
class CnPhoneRecognizer(Recognizer):
    name = "phone_cn"
    entity_type = "PHONE"
    patterns = (
        Pattern(
            "cn_mobile",
            r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)",
            0.7,
        ),
        Pattern(
            "cn_landline",
            r"(?<![\d-])(?:\(0\d{2,3}\)[ -]?|0\d{2,3}-)[2-9]\d{6,7}(?![\d-])",
            0.6,
        ),
    )
    context = CONTEXT
    negative_context = NEGATIVE

    def validate(self, value: str) -> bool | None:
        if value.lstrip("(").startswith("0") and not value.startswith("0086"):
            area = re.match(r"\(?(0\d+)", value)
            assert area is not None
            three = area.group(1)[:3]
            wants = 3 if three == "010" or three.startswith("02") else 4
            return None if len(area.group(1)) == wants else False
        return None


@register
class IntlPhoneRecognizer(Recognizer):
    name = "phone_intl"
    entity_type = "PHONE"
    context = CONTEXT
    negative_context = NEGATIVE
    _plus = re.compile(r"(?<![\w+])\+[1-9][\d ().-]{6,20}\d(?!\d)")

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        for match in self._plus.finditer(text):
            if match.group().startswith("+86"):
                continue  # the CN recognizer owns these
            try:
                number = phonenumbers.parse(match.group(), None)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield match.start(), match.end(), 0.75
        if language == "en":
            leniency = phonenumbers.Leniency.VALID
            for found in phonenumbers.PhoneNumberMatcher(text, "US", leniency=leniency):
                if not found.raw_string.startswith("+"):
                    yield found.start, found.end, 0.6
