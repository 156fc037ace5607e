"""The recognizer registry: recognizers register themselves; a list says which are on.

Adding a recognizer is adding a module that decorates its class with ``@register``: a built-in
one under ``ember.guard.recognizers`` (listed in ``ember.plugins.BUILTIN_MODULES``, whose
order settles ties between equal spans), or a plugin package's; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ember.errors import InvalidRequestError
from ember.guard.recognizer import Recognizer
from ember.plugins import PluginRegistry

R = TypeVar("R", bound=type[Recognizer])


class RecognizerRegistry(PluginRegistry[type[Recognizer]]):
    """Recognizer classes by name: the built-ins in their fixed order, then plugins."""

    def __init__(self, kind: str = "recognizer") -> None:
        super().__init__(kind)

    def register(self, cls: R) -> R:
        self.add(cls.name, cls)
        return cls

    def names(self) -> list[str]:
        return list(self)

    def build(self, enabled: Iterable[str] | None = None) -> list[Recognizer]:
        """Instances of the enabled recognizers (all when ``enabled`` is None or ``["all"]``)."""
        wanted = None if enabled is None else list(enabled)
        names = self.names()
        if wanted is None or wanted == ["all"]:
            return [self[name]() for name in names]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise InvalidRequestError(
                f"Unknown recognizer(s) {', '.join(unknown)}; known: {', '.join(names)}.",
                param="guard_recognizers",
            )
        return [self[name]() for name in names if name in wanted]


default_registry = RecognizerRegistry()
register = default_registry.register
