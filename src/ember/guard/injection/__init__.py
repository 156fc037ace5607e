"""Prompt-injection and jailbreak detection, one plug-in detector per technique.

    scanner = InjectionScanner()
    verdict = scanner.scan(text, source="document")
    verdict.flagged, verdict.score, verdict.detectors["overrides"].reasons

Detectors: ``overrides`` (instruction-override phrasing, English and Chinese),
``roleplay`` (DAN, developer mode, grandmother tricks), ``encoded`` (base64/hex/ROT13
payloads, decoded and rescored), ``unicode`` (tag characters, zero-width, bidi) and
``classifier`` (the SecureVector Guardian TF-IDF model). Add one with
:func:`register_detector`.
"""

from ember.guard.injection.detector import Detection, InjectionDetector
from ember.guard.injection.registry import (
    DETECTORS,
    InjectionScanner,
    InjectionVerdict,
    register_detector,
)

__all__ = [
    "DETECTORS",
    "Detection",
    "InjectionDetector",
    "InjectionScanner",
    "InjectionVerdict",
    "register_detector",
]
