"""Guarding what the model writes: stop an answer that moderation (or the PII policy) refuses.

:class:`OutputGuard` is an output filter (``feed``/``flush``) that releases generated text a
clause at a time. Before releasing a clause it checks the clause together with the tail of
what was already released (so a phrase split across chunks or clauses is still seen); when
the check refuses, nothing more is released and ``blocked`` is set, which the generation
service turns into ``finish_reason: "content_filter"`` (``incomplete_details.reason`` in the
Responses API). Text is held back at most to the next clause boundary or ``MAX_HOLD``
characters, so streaming stays streaming.

:class:`FilterChain` runs several filters in order (the vault's restorer first, so the guard
judges the text the user would see) and exposes the guard's ``blocked``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ember.core.request_context import OutputFilter

# Where a clause may end: sentence and clause punctuation in both languages, and newlines.
_BOUNDARY = re.compile(r"[.!?;,:\n。！？；，、：](?=\s|$)|[。！？；，、：\n]")
MAX_HOLD = 160  # characters held back when no boundary comes
WINDOW = 400  # characters of released text re-checked with each new clause

Check = Callable[[str], str | None]  # the reason to refuse a text, or None


class OutputGuard:
    """Releases text a clause at a time while ``check`` allows it."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.blocked = False
        self.reason: str | None = None
        self._pending = ""
        self._tail = ""

    def feed(self, text: str) -> str:
        if self.blocked:
            return ""
        self._pending += text
        cut = None
        for match in _BOUNDARY.finditer(self._pending):
            cut = match.end()
        if cut is None:
            if len(self._pending) < MAX_HOLD:
                return ""
            cut = len(self._pending)
        return self._release(cut)

    def flush(self) -> str:
        if self.blocked or not self._pending:
            return ""
        return self._release(len(self._pending))

    def _release(self, cut: int) -> str:
        clause, self._pending = self._pending[:cut], self._pending[cut:]
        reason = self.check(self._tail + clause)
        if reason is not None:
            self.blocked, self.reason, self._pending = True, reason, ""
            return ""
        self._tail = (self._tail + clause)[-WINDOW:]
        return clause


class FilterChain:
    """Output filters applied in order; ``blocked`` when any of them blocked."""

    def __init__(self, filters: Sequence[OutputFilter]) -> None:
        self.filters = list(filters)

    @property
    def blocked(self) -> bool:
        return any(getattr(f, "blocked", False) for f in self.filters)

    @property
    def reason(self) -> str | None:
        return next(
            (getattr(f, "reason", None) for f in self.filters if getattr(f, "blocked", False)), None
        )

    def feed(self, text: str) -> str:
        for output_filter in self.filters:
            text = output_filter.feed(text)
        return text

    def flush(self) -> str:
        text = ""
        for output_filter in self.filters:
            text = output_filter.feed(text) + output_filter.flush()
        return text
