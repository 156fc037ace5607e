"""Invisible and tag Unicode characters used to smuggle instructions past a reader.

Tag characters (U+E0000-U+E007F) spell ASCII that renders as nothing: any of them in a
prompt is an attack, and :func:`reveal` decodes them so the other detectors can read the
hidden text. Zero-width characters are legitimate in emoji sequences (ZWJ) and some
scripts (ZWNJ), so only several of them, or ones splitting Latin letters, score. Bidi
overrides and isolates (Trojan Source) reorder what a human sees.
"""

from __future__ import annotations

import re

from ember.guard.injection.detector import Detection, combine, register_detector

TAG_START, TAG_END = 0xE0000, 0xE007F
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
_ZW_RE = re.compile(f"[{ZERO_WIDTH}]")
_ZW_IN_WORD = re.compile(f"[A-Za-z][{ZERO_WIDTH}]+[A-Za-z]")
_BIDI_RE = re.compile(f"[{BIDI}]")
_TAG_RE = re.compile("[\U000e0000-\U000e007f]")


def reveal(text: str) -> str:
    """``text`` with tag characters decoded to ASCII and zero-width characters removed."""
    decoded = "".join(
        chr(ord(ch) - TAG_START) if TAG_START + 0x20 <= ord(ch) < TAG_END else ch
        for ch in text
        if not (TAG_START <= ord(ch) < TAG_START + 0x20 or ord(ch) == TAG_END)
    )
    return _BIDI_RE.sub("", _ZW_RE.sub("", decoded))


class InvisibleUnicodeDetector:
    """Scores hidden characters; the scanner reruns the other detectors on :func:`reveal`."""

    name = "unicode"

    def check(self, text: str) -> Detection:
        weights: list[float] = []
        reasons: list[str] = []
        tags = len(_TAG_RE.findall(text))
        if tags:
            weights.append(0.95 if tags >= 3 else 0.6)
            reasons.append(f"{tags} Unicode tag characters")
        zero_width = len(_ZW_RE.findall(text))
        splitting = len(_ZW_IN_WORD.findall(text))
        if splitting >= 2 or zero_width >= 8:
            weights.append(0.6)
            reasons.append(f"{zero_width} zero-width characters, {splitting} inside words")
        elif zero_width >= 3:
            weights.append(0.25)
            reasons.append(f"{zero_width} zero-width characters")
        bidi = len(_BIDI_RE.findall(text))
        if bidi:
            weights.append(0.6 if bidi >= 2 else 0.3)
            reasons.append(f"{bidi} bidirectional control characters")
        return Detection(round(combine(weights), 4), tuple(reasons))

    def score(self, text: str) -> float:
        return self.check(text).score


register_detector("unicode", InvisibleUnicodeDetector)
