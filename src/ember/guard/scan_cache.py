"""A bounded cache of analysed texts, so a conversation's history is analysed once.

Chat clients resend the whole message list every turn; the guard stage looks each message up
here by a hash of its text (and the half of the analyzer asked for) and analyses only the new
ones. Least recently used entries go first; the cache holds spans, never the text itself
beyond the span values the analyzer already returns.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_ENTRIES = 4096


class ScanCache(Generic[T]):
    """Results (spans, scores) by ``(sha256(text), part)``; thread-safe, ``entries`` at most."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._spans: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str, part: str) -> tuple[str, str]:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), part

    def get_or_compute(self, text: str, part: str, compute: Callable[[str], T]) -> T:
        """The cached result for ``text``, or ``compute(text)`` stored for next time."""
        key = self.key(text, part)
        with self._lock:
            if key in self._spans:
                cached = self._spans[key]
                self._spans.move_to_end(key)
                self.hits += 1
                return cached
            self.misses += 1
        value = compute(text)
        with self._lock:
            self._spans[key] = value
            self._spans.move_to_end(key)
            while len(self._spans) > self.entries:
                self._spans.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._spans)
