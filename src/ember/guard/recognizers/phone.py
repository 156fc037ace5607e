"""PHONE: Chinese mobiles and landlines by pattern; other countries through ``phonenumbers``.

CN mobiles are 1[3-9] plus 9 digits, optionally after +86/0086, grouped by spaces or dashes.
CN landlines are an area code (010 and 02x take three digits, the rest four) and a 7-8 digit
number. International numbers starting with + must be possible to ``phonenumbers`` (valid ones score
higher); in English text, US-style national numbers are found by its matcher too. National
numbers in other countries' formats are digit groups (``07700 063 966``, ``03.93.92.16.85``,
``(37) 788-063``): 7 to 15 digits in three or more groups, or two with a context word; dates,
IPv4 addresses, SSNs and decimals are not phone numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

CONTEXT = (
    "电话",
    "手机",
    "联系",
    "致电",
    "拨打",
    "phone",
    "tel",
    "mobile",
    "call",
    "cell",
    "fax",
    "reach me",
    "contact",
    "number",
    "text me",
    "whatsapp",
)
NEGATIVE = ("订单", "单号", "编号", "order", "invoice", "#", "card", "account", "ssn", "iban")


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


def _is_date(a: str, b: str, c: str) -> bool:
    """Whether three digit groups read as a date: year first or last, month and day valid."""
    if not (a.isdigit() and b.isdigit() and c.isdigit()):
        return False
    if len(a) == 4:
        year, month, day = int(a), int(b), int(c)
    elif len(c) in (2, 4) and len(a) <= 2 and len(b) <= 2:
        year, first, second = int(c), int(a), int(b)
        month, day = (first, second) if first <= 12 else (second, first)
    else:
        return False
    return (len(a) != 4 or 1800 <= year <= 2200) and 1 <= month <= 12 and 1 <= day <= 31


@register
class IntlPhoneRecognizer(Recognizer):
    name = "phone_intl"
    entity_type = "PHONE"
    context = CONTEXT
    negative_context = NEGATIVE
    _plus = re.compile(r"(?<![\w+])\+[1-9][\d ().-]{6,20}\d(?!\d)")
    # Grouped digits: "07700 063 966", "(37) 788-063", "03.93.92.16.85", "345-899-3560x4587".
    _grouped = re.compile(
        r"(?<![\w+.,/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,8}){1,5}"
        r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w,/:]|[.-]\d)"
    )
    _ipv4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
    _ssn = re.compile(r"\d{3}-\d{2}-\d{4}")
    _decimal = re.compile(r"\d+\.\d+(?:\.\d+)?")

    def _not_phone(self, value: str) -> bool:
        """Dates, IPv4 addresses, SSNs, decimals and versions have phone-like digit groups."""
        if self._ipv4.fullmatch(value) or self._ssn.fullmatch(value):
            return True
        if self._decimal.fullmatch(value):
            return True
        groups = re.split(r"[ .-]", value)
        return len(groups) == 3 and _is_date(*groups)

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
            elif phonenumbers.is_possible_number(number):
                yield match.start(), match.end(), 0.6
        for match in self._grouped.finditer(text):
            value = match.group()
            if value.startswith("+") or self._not_phone(value):
                continue
            digits = sum(c.isdigit() for c in re.split(r"x|ext", value)[0])
            if not 7 <= digits <= 15:
                continue
            number_groups = re.findall(r"\d+", re.split(r"x|ext", value)[0])
            if len(number_groups[-1]) < 2:  # "0755-1234567-8": an extension digit, a serial
                continue
            groups = len(number_groups)
            # Three or more groups, or an area code in brackets, look like a phone number on
            # their own; two groups ("9472 7916") need a context word.
            score = 0.45 if groups >= 3 or value.startswith("(") else 0.3
            yield match.start(), match.end(), score
        # The matcher scans the whole text; a number needs at least seven digits.
        if language == "en" and sum(c.isdigit() for c in text) >= 7:
            leniency = phonenumbers.Leniency.VALID
            for found in phonenumbers.PhoneNumberMatcher(text, "US", leniency=leniency):
                if not found.raw_string.startswith("+"):
                    yield found.start, found.end, 0.6
