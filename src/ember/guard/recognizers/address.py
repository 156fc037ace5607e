"""ADDRESS (Chinese): 省/市/区/县 ... 路/街 ... 号; Latin-script streets are ``street_address``.

A Chinese address needs at least one administrative part and a road with a number, or two
administrative parts; lead-in words ("住在", "地址：") are trimmed off the front.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

_H = r"[\u4e00-\u9fa5]"
_ADMIN = rf"{_H}{{1,7}}?(?:省|自治区|特别行政区|市|自治州|区|县|镇|乡)"
_ROAD = rf"{_H}{{1,8}}?(?:路|街|大道|大街|巷|弄|胡同)"
_NUMBER = r"(?:[0-9０-９一二三四五六七八九十百]+号)"
_UNIT = r"(?:[0-9A-Za-z]+(?:号楼|栋|幢|楼|单元|室|层))*"
_LEAD_IN = re.compile(r".*(?:住在|住址|地址|位于|寄到|送到|搬到|来自|在|于|是|[:：])")


@register
class AddressRecognizer(Recognizer):
    name = "address"
    entity_type = "ADDRESS"
    patterns = (
        Pattern("cn_street", rf"(?:{_ADMIN}){{1,4}}{_ROAD}{_NUMBER}?{_UNIT}", 0.65),
        Pattern("cn_admin", rf"(?:{_ADMIN}){{2,4}}", 0.45),
    )
    context = ("地址", "住址", "住在", "寄到", "address", "lives at", "located at", "ship to")

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        for start, end, score in super().find(text, language):
            lead = _LEAD_IN.match(text, start, end)
            if lead is not None:
                start = lead.end()
            if end - start >= 4:
                yield start, end, score
