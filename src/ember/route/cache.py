"""The response cache: exact (canonical request hash) and semantic (embedding similarity).

Entries live in memory, per tenant and model: a lookup never sees another tenant's answers.
Each entry expires after ``ttl_s``; past ``max_entries`` the least recently used goes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class CachedAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    stored_at: float
    vector: tuple[float, ...] | None = None


def canonical_key(tenant: str | None, model: str, request: dict[str, Any]) -> str:
    text = json.dumps(
        {"tenant": tenant, "model": model, "request": request},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class ResponseCache:
    def __init__(self, *, ttl_s: float, max_entries: int, clock: object = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.entries: OrderedDict[str, tuple[str, CachedAnswer]] = OrderedDict()

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def _fresh(self, answer: CachedAnswer) -> bool:
        return self._now() - answer.stored_at < self.ttl_s

    def get(self, key: str) -> CachedAnswer | None:
        found = self.entries.get(key)
        if found is None:
            return None
        if not self._fresh(found[1]):
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return found[1]

    def nearest(
        self, scope: str, vector: tuple[float, ...], threshold: float
    ) -> CachedAnswer | None:
        """The most similar fresh answer in ``scope`` (tenant + model) at or above
        ``threshold``."""
        best: tuple[float, str, CachedAnswer] | None = None
        for key, (entry_scope, answer) in list(self.entries.items()):
            if entry_scope != scope or answer.vector is None or not self._fresh(answer):
                continue
            score = cosine(vector, answer.vector)
            if score >= threshold and (best is None or score > best[0]):
                best = (score, key, answer)
        if best is None:
            return None
        self.entries.move_to_end(best[1])
        return best[2]

    def put(self, key: str, scope: str, answer: CachedAnswer) -> None:
        self.entries[key] = (scope, answer)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
