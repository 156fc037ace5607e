"""Numbers as values and names as codes, the same in Chinese and English.

A grounded answer may be in another language than its source: ``600 million`` states what
``6亿`` states, ``2 million`` what ``二百万`` states, ``3.7 billion`` what ``37亿`` states. The
support and coverage checks hold numbers to an exact match, so they compare **values**:

* a number written with digits, a decimal part, thousands separators and a scale word or
  character (万 亿 千 百万 千万, thousand million billion trillion, k m b) is worth digits ×
  scale; a plain number is worth itself;
* a Chinese numeral with a unit (二百万, 三十; not a lone 七 or 一) is worth its value (only
  on the source side: a claim's numbers are the ones it writes in digits, as the checks
  always read them).

**Codes** are the names no translation changes and one digit tells apart: ``A100`` and
``H100``, ``GPT-3`` and ``GPT-4``, ``Phi-4``, ``DeepSeek-R1``. A code in a claim or a question
must be in the evidence as it is written (case, hyphens and spaces aside).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Subscript and full-width digits as ASCII (CO₂ is CO2; ２０２３ is 2023).
_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉０１２３４５６７８９", "01234567890123456789")
_SCALES = {
    "万": Decimal(10) ** 4,
    "亿": Decimal(10) ** 8,
    "千": Decimal(10) ** 3,
    "百万": Decimal(10) ** 6,
    "千万": Decimal(10) ** 7,
    "万亿": Decimal(10) ** 12,
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
    "k": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
}
# Digits, then optionally a scale: a word or character after a space or none, a single
# letter only attached (2K, 7B; "100 m" is a distance).
_MENTION = re.compile(
    r"(?<![\d.])(\d+(?:,\d{3})*(?:\.\d+)?)"
    r"(?:\s*(万亿|千万|百万|万|亿|千|thousand|million|billion|trillion)(?![a-z])|([kmb])(?![a-z]))?",
    re.IGNORECASE,
)
_CHINESE_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")
_ZH_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_ZH_DIGIT |= {"六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNIT = {"十": 10, "百": 100, "千": 1000}
_CODE = re.compile(r"(?<![a-z0-9])[a-z]+(?:-[a-z]+)*-?\d+(?:\.\d+)?[a-z]?(?![a-z0-9])")


def normalize_digits(text: str) -> str:
    return text.translate(_DIGITS)


def _value(digits: str, scale: str | None) -> Decimal | None:
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    return value * _SCALES[scale.lower()] if scale else value


def chinese_numeral(text: str) -> int | None:
    """二百万 → 2000000, 三十 → 30, 八 → 8 (None when it is not a well-formed numeral)."""
    total, section, digit = 0, 0, None
    for char in text:
        if char in _ZH_DIGIT:
            if digit is not None:  # 二三 is no numeral
                return None
            digit = _ZH_DIGIT[char]
        elif char in _ZH_UNIT:
            section += (1 if digit is None else digit) * _ZH_UNIT[char]
            digit = None
        elif char == "万":
            total += (section + (digit or 0)) * 10_000
            section, digit = 0, None
        elif char == "亿":
            total = (total + section + (digit or 0)) * 100_000_000
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)


def claimed(text: str) -> list[tuple[Decimal, Decimal | None]]:
    """The numbers ``text`` writes in digits: (value, raw digits when no scale was written)."""
    out = []
    for match in _MENTION.finditer(normalize_digits(text)):
        scale = match.group(2) or match.group(3)
        value = _value(match.group(1), scale)
        if value is not None:
            out.append((value, None if scale else value))
    return out


def stated(text: str) -> set[Decimal]:
    """Every value ``text`` states: digits with and without their scale, Chinese numerals."""
    found: set[Decimal] = set()
    for match in _MENTION.finditer(normalize_digits(text)):
        raw = _value(match.group(1), None)
        if raw is not None:
            found.add(raw)
            scaled = _value(match.group(1), match.group(2) or match.group(3))
            if scaled is not None:
                found.add(scaled)
    for run in _CHINESE_NUMERAL.findall(text):
        if len(run) < 2 or not any(unit in run for unit in "十百千万亿"):
            continue  # 七 of 七月, 一 of 一种: no quantity anyone writes in digits
        value = chinese_numeral(run)
        if value is not None:
            found.add(Decimal(value))
    return {v.normalize() for v in found}


def unmatched_numbers(claim: str, evidence: str) -> list[str]:
    """The numbers of ``claim`` whose value ``evidence`` does not state (600 million is
    stated by 6亿; a plain 6 by 6亿 too, as the checks always read digits)."""
    values = stated(evidence)
    missing = []
    for value, raw in claimed(claim):
        if value.normalize() in values or (raw is not None and raw.normalize() in values):
            continue
        missing.append(format(value.normalize(), "f"))
    return missing


def _squash(text: str) -> str:
    return re.sub(r"[-\s]", "", normalize_digits(text).lower())


def codes(text: str) -> list[str]:
    """Model-like names of ``text`` (a100, gpt-4, phi-3, deepseek-r1), lower-cased."""
    lowered = normalize_digits(text).lower()
    return list(dict.fromkeys(m.group(0) for m in _CODE.finditer(lowered)))


def without_codes(text: str) -> str:
    """``text`` with its codes blanked (the 4 of GPT-4 is no quantity)."""
    return _CODE.sub(" ", normalize_digits(text).lower())


def missing_codes(text: str, evidence: str) -> list[str]:
    """The codes of ``text`` that ``evidence`` does not contain (hyphens and spaces aside)."""
    squashed = _squash(evidence)
    return [code for code in codes(text) if _squash(code) not in squashed]
