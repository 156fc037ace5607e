"""SECRET: API keys, tokens, JWTs, private key blocks, and values after key=/password=.

Known key formats score high on shape alone. A value after ``token=``, ``secret:`` and the
like must look random (Shannon entropy), so placeholders such as ``${TOKEN}`` or ``xxxx`` are
not flagged.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

_KEY_WORDS = (
    r"(?:api[_-]?key|access[_-]?key|secret(?:[_-]?key)?|token|password|passwd|pwd"
    r"|密码|口令|密钥|令牌)"
)


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


@register
class SecretRecognizer(Recognizer):
    name = "secret"
    entity_type = "SECRET"
    patterns = (
        Pattern("openai", r"(?<![\w-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}", 0.9),
        Pattern("aws_access_key", r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])", 0.9),
        Pattern("github", r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{40,})", 0.95),
        Pattern("slack", r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}", 0.9),
        Pattern("jwt", r"(?<![\w-])eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{10,}", 0.9),
        Pattern(
            "private_key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]+?"
            r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
            1.0,
        ),
        Pattern(
            "assignment",
            _KEY_WORDS + r"[\"']?\s*(?:[:=：]|is|为|是)\s*[\"']?(?P<v>[^\s\"',;，。]{6,})",
            0.7,
            flags=re.IGNORECASE,
        ),
    )
    context = ("key", "token", "secret", "密钥", "令牌")

    def validate(self, value: str) -> bool | None:
        if value.startswith("-----BEGIN"):
            return True
        if value[0] in "$<{*%[(" or value.lower() in ("password", "changeme", "redacted"):
            return False
        return None if entropy(value) >= 2.5 else False
