"""Reversible redaction: detected values become typed placeholders and come back afterwards.

A :class:`PiiVault` belongs to one request (or one conversation): the same value always gets
the same placeholder (``<PHONE_1>``), so a model can still refer to "the same phone number"
without ever seeing it, and :meth:`PiiVault.restore` puts the values back into the answer.
:class:`StreamRestorer` does that for a streamed answer whose placeholders may arrive split
across chunks (``<PHO`` + ``NE_1>``): it holds back a trailing fragment that could still
become a placeholder and releases it once it cannot.

Other operators (:func:`mask`, :func:`hash_value`, ``drop``) are one-way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ember.guard.spans import Span

Operator = Literal["replace", "mask", "hash", "drop"]

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
# A suffix that may still grow into a placeholder: "<", "<PH", "<PHONE_", "<PHONE_1".
_PARTIAL = re.compile(r"<[A-Z0-9_]*$")


@dataclass
class PiiVault:
    """Value <-> placeholder mapping for one request or conversation."""

    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_placeholder: dict[str, str] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._counters.get(entity_type, 0) + 1
        self._counters[entity_type] = number
        placeholder = f"<{entity_type}_{number}>"
        self._by_value[key] = placeholder
        self._by_placeholder[placeholder] = value
        return placeholder

    def to_mapping(self) -> list[list[str]]:
        """The vault as ``[entity_type, value, placeholder]`` rows, in creation order."""
        return [[kind, value, ph] for (kind, value), ph in self._by_value.items()]

    @classmethod
    def from_mapping(cls, rows: list[list[str]]) -> PiiVault:
        """A vault holding ``to_mapping()``'s rows; new values continue each type's numbering."""
        vault = cls()
        for kind, value, placeholder in rows:
            vault._by_value[(kind, value)] = placeholder
            vault._by_placeholder[placeholder] = value
            number = int(placeholder.rsplit("_", 1)[1].rstrip(">"))
            vault._counters[kind] = max(vault._counters.get(kind, 0), number)
        return vault

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def redact(self, text: str, spans: Iterable[Span]) -> str:
        """``text`` with every span replaced by its placeholder."""
        return apply_operator(text, spans, "replace", vault=self)

    def restore(self, text: str) -> str:
        """Placeholders this vault issued, replaced by their values; others left alone."""

        def value(match: re.Match[str]) -> str:
            return self._by_placeholder.get(match.group(0), match.group(0))

        return _PLACEHOLDER.sub(value, text)

    def stream_restorer(self) -> StreamRestorer:
        return StreamRestorer(self)


class StreamRestorer:
    """Restores placeholders in streamed text, even when one is split across chunks."""

    def __init__(self, vault: PiiVault) -> None:
        self.vault = vault
        self._pending = ""

    def feed(self, text: str) -> str:
        """Text safe to emit now."""
        self._pending += text
        partial = _PARTIAL.search(self._pending)
        cut = partial.start() if partial else len(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self.vault.restore(ready)

    def flush(self) -> str:
        """Whatever is held back, once the stream has ended."""
        out, self._pending = self._pending, ""
        return self.vault.restore(out)


def mask(value: str, *, keep: int = 4, char: str = "*") -> str:
    """``value`` with all but its last ``keep`` alphanumerics masked (separators kept)."""
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    shown = set(alnum[-keep:]) if keep else set()
    return "".join(c if (i in shown or not c.isalnum()) else char for i, c in enumerate(value))


def hash_value(entity_type: str, value: str) -> str:
    digest = hashlib.sha256(f"{entity_type}:{value}".encode()).hexdigest()[:12]
    return f"<{entity_type}:{digest}>"


def apply_operator(
    text: str, spans: Iterable[Span], operator: Operator, *, vault: PiiVault | None = None
) -> str:
    """Apply ``operator`` to every span (non-overlapping, any order) of ``text``."""
    if operator == "replace" and vault is None:
        vault = PiiVault()
    pieces: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < position:
            continue  # overlapping spans: the analyzer resolves them; be safe anyway
        pieces.append(text[position : span.start])
        value = text[span.start : span.end]
        if operator == "replace":
            assert vault is not None
            pieces.append(vault.placeholder(span.type, value))
        elif operator == "mask":
            pieces.append(mask(value))
        elif operator == "hash":
            pieces.append(hash_value(span.type, value))
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)
