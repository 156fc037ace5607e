"""The recognizer registry: recognizers register themselves; a list says which are on.

Adding a recognizer is adding a module under ``ember.guard.recognizers`` that decorates its
class with ``@register``; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ember.errors import InvalidRequestError
from ember.guard.recognizer import Recognizer

R = TypeVar("R", bound=type[Recognizer])


class RecognizerRegistry:
    """Recognizer classes by name, in registration order."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Recognizer]] = {}

    def register(self, cls: R) -> R:
        if cls.name in self._classes:
            raise ValueError(f"a recognizer named {cls.name!r} is already registered")
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return list(self._classes)

    def build(self, enabled: Iterable[str] | None = None) -> list[Recognizer]:
        """Instances of the enabled recognizers (all when ``enabled`` is None or ``["all"]``)."""
        wanted = None if enabled is None else list(enabled)
        if wanted is None or wanted == ["all"]:
            return [cls() for cls in self._classes.values()]
        unknown = sorted(set(wanted) - set(self._classes))
        if unknown:
            raise InvalidRequestError(
                f"Unknown recognizer(s) {', '.join(unknown)}; known: {', '.join(self._classes)}.",
                param="guard_recognizers",
            )
        return [cls() for name, cls in self._classes.items() if name in wanted]


default_registry = RecognizerRegistry()
register = default_registry.register
