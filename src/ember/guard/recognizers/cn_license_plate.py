"""CN_LICENSE_PLATE: mainland plates, 7 characters, and 8-character new-energy plates.

A plate is a province character, a letter (no I or O), then five serial characters (at most
two letters) or, for new-energy vehicles, six (D/F first or last).
"""

from __future__ import annotations

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"


@register
class CnLicensePlateRecognizer(Recognizer):
    name = "cn_license_plate"
    entity_type = "CN_LICENSE_PLATE"
    patterns = (
        Pattern(
            "new_energy",
            rf"(?<![A-Za-z0-9])[{PROVINCES}][{_L}][·• ]?(?:[DF][{_L}0-9]\d{{4}}|\d{{5}}[DF])"
            r"(?![A-Za-z0-9])",
            0.75,
        ),
        Pattern(
            "plate",
            rf"(?<![A-Za-z0-9])[{PROVINCES}][{_L}][·• ]?[{_L}0-9]{{4}}[{_L}0-9挂学警]"
            r"(?![A-Za-z0-9])",
            0.6,
        ),
    )
    context = ("车牌", "牌照", "车辆", "号牌", "plate", "license")

    def validate(self, value: str) -> bool | None:
        serial = value[2:].lstrip("·• ")
        if len(serial) == 5:
            letters = sum(c.isascii() and c.isalpha() for c in serial)
            return None if letters <= 2 else False
        return None
