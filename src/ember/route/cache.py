"""The response cache: exact (canonical request hash) and semantic (embedding similarity).

Entries live in memory, per tenant and model: a lookup never sees another tenant's answers.
Each entry expires after ``ttl_s``; past ``max_entries`` the least recently used goes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.core.types import FinishReason


@dataclass
class CachedAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    stored_at: float
    vector: tuple[float, ...] | None = None
    finish_reason: FinishReason = "stop"  # the original answer's, replayed with it


def canonical_key(tenant: str | None, model: str, request: dict[str, Any]) -> str:
    text = json.dumps(
        {"tenant": tenant, "model": model, "request": request},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    def __init__(self, *, ttl_s: float, max_entries: int, clock: object = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.entries: OrderedDict[str, tuple[str, CachedAnswer]] = OrderedDict()
        self.vectors: dict[str, dict[str, np.ndarray]] = {}  # scope -> key -> unit vector

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def _fresh(self, answer: CachedAnswer) -> bool:
        return self._now() - answer.stored_at < self.ttl_s

    def get(self, key: str) -> CachedAnswer | None:
        found = self.entries.get(key)
        if found is None:
            return None
        if not self._fresh(found[1]):
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return found[1]

    def nearest(
        self, scope: str, vector: tuple[float, ...], threshold: float
    ) -> CachedAnswer | None:
        """The most similar fresh answer in ``scope`` (tenant + model) at or above
        ``threshold``; one matrix product over the scope's vectors."""
        keys = list(self.vectors.get(scope, ()))
        if not keys:
            return None
        matrix = np.stack([self.vectors[scope][key] for key in keys])
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if not norm:
            return None
        scores = matrix @ (query / norm)
        for index in np.argsort(-scores):
            if float(scores[index]) < threshold:
                return None
            answer = self.get(keys[int(index)])  # drops it when expired
            if answer is not None:
                return answer
        return None

    def put(self, key: str, scope: str, answer: CachedAnswer) -> None:
        self.entries[key] = (scope, answer)
        self.entries.move_to_end(key)
        if answer.vector is not None:
            unit = np.asarray(answer.vector, dtype=np.float32)
            norm = float(np.linalg.norm(unit))
            if norm:
                self.vectors.setdefault(scope, {})[key] = unit / norm
        while len(self.entries) > self.max_entries:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: str) -> None:
        scope, _ = self.entries.pop(key)
        vectors = self.vectors.get(scope)
        if vectors is not None:
            vectors.pop(key, None)
            if not vectors:
                del self.vectors[scope]
