"""Encoded payloads: base64, hex and ROT13 runs that decode to instructions.

Each long run is decoded; a decoding that is not mostly printable text (an image, a hash,
a key) scores nothing. Decoded text is handed to the inner detectors (overrides and
role-play), so ``aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM=`` scores what
"ignore all previous instructions" scores. ROT13 is tried on the whole text and kept only
where it scores higher than the plain text did.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Sequence

from ember.guard.injection.detector import (
    Detection,
    InjectionDetector,
    Pattern,
    combine,
    register_detector,
)
from ember.guard.injection.overrides import OverrideDetector
from ember.guard.injection.roleplay import RoleplayDetector

_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"\b(?:0x)?((?:[0-9a-fA-F]{2}){10,})\b")
_DECODE_AND_FOLLOW = Pattern(
    "decode and follow",
    r"\b(?:decode|decrypt|translate)\b[^.\n]{0,60}?\b(?:follow|execute|obey|do\s+what|run|act\s+on)"
    r"|(?:解码|解密)[^。\n]{0,20}?(?:执行|照做|遵循|按照)",
    0.5,
)
MAX_RUNS = 32


def _as_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t\r" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if printable < 0.95 * len(text) or letters < 0.5 * len(text.replace(" ", "")):
        return None
    return text


def _decode_base64(run: str) -> str | None:
    padded = run + "=" * (-len(run) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _as_text(raw)


def _decode_hex(run: str) -> str | None:
    try:
        return _as_text(bytes.fromhex(run))
    except ValueError:
        return None


class EncodedPayloadDetector:
    """Decodes encoded runs and scores the result with ``inner`` detectors."""

    name = "encoded"

    def __init__(self, inner: Sequence[InjectionDetector]) -> None:
        self.inner = list(inner)

    def _inner_score(self, text: str) -> Detection:
        best = Detection(0.0)
        for detector in self.inner:
            found = detector.check(text)
            if found.score > best.score:
                best = found
        return best

    def check(self, text: str) -> Detection:
        weights: list[float] = []
        reasons: list[str] = []
        decoded: list[tuple[str, str]] = []
        for match in list(_BASE64.finditer(text))[:MAX_RUNS]:
            plain = _decode_base64(match.group(0))
            if plain:
                decoded.append(("base64", plain))
        for match in list(_HEX.finditer(text))[:MAX_RUNS]:
            plain = _decode_hex(match.group(1))
            if plain:
                decoded.append(("hex", plain))
        rot13 = codecs.encode(text, "rot13")
        if self._inner_score(rot13).score > self._inner_score(text).score:
            decoded.append(("rot13", rot13))
        payload = 0.0
        for encoding, plain in decoded:
            found = self._inner_score(plain)
            # Decoded natural language in a prompt is odd but not an attack on its own;
            # many such runs (a JWT, a data URL) are no stronger than one.
            payload = max(payload, found.score, 0.2)
            why = "; ".join(found.reasons) or "decodes to text"
            reasons.append(f"{encoding} payload: {why}")
        if payload:
            weights.append(payload)
        if _DECODE_AND_FOLLOW.compiled.search(text):
            weights.append(_DECODE_AND_FOLLOW.weight)
            reasons.append(_DECODE_AND_FOLLOW.reason)
        return Detection(round(combine(weights), 4), tuple(reasons))

    def score(self, text: str) -> float:
        return self.check(text).score


def encoded_detector() -> EncodedPayloadDetector:
    """The built-in ``encoded`` detector: decoded payloads rescored for overrides and roleplay."""
    return EncodedPayloadDetector([OverrideDetector(), RoleplayDetector()])


register_detector("encoded", encoded_detector)
